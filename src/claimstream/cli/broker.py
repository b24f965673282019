"""`claimstream broker`: a local Tansu broker with the topics applied, until stopped.

For working by hand. Standard output carries only what a shell can source, once the broker is
ready and the topics are applied:

    export CLAIMSTREAM_BROKER_URL=kafka://127.0.0.1:9092
    export CLAIMSTREAM_BROKER_FLAVOR=tansu

and everything meant for people (the topics table, how to stop it) goes to stderr. So

    claimstream broker --detach > broker.env && . broker.env

starts it in the background, returns once it is ready, and leaves a file any other terminal can
source too (`--detach` adds `CLAIMSTREAM_BROKER_PID`: `kill $CLAIMSTREAM_BROKER_PID` stops it);
`eval "$(claimstream broker --detach)"` does the same without the file. In the foreground,
Ctrl-C stops it (exit 130) and SIGTERM too (exit 0).

The port is 9092, the address every command uses when nothing is set, unless something already
listens there (or `--port` says otherwise): then a free one, and the export is what finds it.
Everything is in memory and gone on exit.
"""

from __future__ import annotations

import argparse
import os
import sys

HELP = "run a local in-memory Kafka-protocol broker (Tansu) with the topics applied"
EXAMPLE = (
    "claimstream broker --detach > broker.env && . broker.env\n"
    "         claimstream broker            # foreground; Ctrl-C stops it"
)
DEFAULT_PORT = 9092


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--port",
        type=int,
        help=f"port on 127.0.0.1 (default: {DEFAULT_PORT} when free, else any free one)",
    )
    parser.add_argument(
        "--detach",
        action="store_true",
        help="run in the background: print the export block once ready and return "
        "(adds CLAIMSTREAM_BROKER_PID, the process to kill to stop it)",
    )
    parser.add_argument("--no-topics", action="store_true", help="do not apply topics.toml")
    parser.add_argument(
        "--partitions",
        type=int,
        metavar="N",
        help="partition count of the co-partitioned topics (default: from the file)",
    )
    parser.add_argument(
        "--file",
        metavar="F",
        help="topics file (default: $CLAIMSTREAM_TOPICS_FILE, else topics/topics.toml)",
    )
    parser.add_argument("--log", metavar="PATH", help="write the broker's own log to PATH")
    parser.add_argument("--detached-child", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    if args.detach:
        return _detach(args)
    return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    import signal
    import threading

    from claimstream.cli.exits import INTERRUPTED, CommandError
    from claimstream.devtools.localbroker import BrokerStartError, LocalBroker
    from claimstream.devtools.subproc import port_in_use

    stop = threading.Event()
    received: list[int] = []

    def _on_signal(signum: int, _frame: object) -> None:
        received.append(signum)
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    port = args.port
    if port is None and not port_in_use("127.0.0.1", DEFAULT_PORT):
        port = DEFAULT_PORT
    broker = LocalBroker(port, log_path=args.log)
    try:
        try:
            broker.start()
        except BrokerStartError as exc:
            if args.port is None and port == DEFAULT_PORT:  # taken meanwhile: any free port
                broker = LocalBroker(None, log_path=args.log)
                try:
                    broker.start()
                except BrokerStartError as again:
                    raise CommandError(str(again)) from None
            else:
                raise CommandError(str(exc)) from None
        if not args.no_topics and not _apply_topics(broker.bootstrap, args):
            return 1
        pid = os.getpid()
        extra = {"CLAIMSTREAM_BROKER_PID": str(pid)} if args.detached_child else None
        note = f"# Tansu on {broker.bootstrap}, memory storage; `kill {pid}` stops it\n"
        sys.stdout.write(note + broker.export_block(extra))
        sys.stdout.flush()
        if args.detached_child:
            _detach_streams()
        else:
            _tell(
                f"broker ready on {broker.bootstrap}. Other terminals: paste the export lines "
                "(stdout), or next time `claimstream broker --detach > broker.env && "
                ". broker.env`. Ctrl-C or SIGTERM stops it."
            )
        while not stop.wait(0.5):
            if not broker.running:
                _tell("claimstream broker: the broker exited unexpectedly")
                return 3
        _tell("stopping the broker")
        return INTERRUPTED if received and received[0] == signal.SIGINT else 0
    finally:
        broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _detach(args: argparse.Namespace) -> int:
    """Start `claimstream broker --detached-child` in its own session, relay its export block
    once it is ready (it writes the block, then lets go of its stdout) and return; a child
    that ends without writing it failed, and its exit status (and stderr) are ours."""
    import subprocess

    argv = [sys.executable, "-m", "claimstream", "broker", "--detached-child"]
    for flag, value in (
        ("--port", args.port),
        ("--partitions", args.partitions),
        ("--file", args.file),
        ("--log", args.log),
    ):
        if value is not None:
            argv += [flag, str(value)]
    if args.no_topics:
        argv.append("--no-topics")
    child = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        start_new_session=True,  # not stopped by this terminal's Ctrl-C or hang-up
    )
    assert child.stdout is not None
    try:
        block = child.stdout.read()  # EOF: ready (the child let go of its stdout) or dead
    except KeyboardInterrupt:
        child.terminate()
        child.wait()
        raise
    finally:
        child.stdout.close()
    if not block:  # it wrote nothing, so it never got ready: its exit status is ours
        return child.wait() or 3
    sys.stdout.write(block.decode())
    return 0


def _detach_streams() -> None:
    """The detached child lets go of the pipes it was started with (its parent is waiting
    for their end) and carries on with /dev/null."""
    sys.stdout.flush()
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)


def _tell(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _apply_topics(bootstrap: str, args: argparse.Namespace) -> bool:
    from claimstream.cli.exits import CommandError
    from claimstream.kafka.admin import apply_topics_sync
    from claimstream.kafka.security import KafkaSecurity
    from claimstream.kafka.topology import TopologyError, load_topology

    try:
        topology = load_topology(args.file, args.partitions)
    except TopologyError as exc:
        raise CommandError(str(exc)) from None
    # the local broker is plaintext, whatever the shell's CLAIMSTREAM_KAFKA_* say
    report = apply_topics_sync(bootstrap, topology, security=KafkaSecurity())
    _tell(report.format_table())
    return report.in_sync
