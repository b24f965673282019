"""`claimstream broker`: a local Tansu broker with the topics applied, until Ctrl-C or SIGTERM.

For working by hand: start this in one terminal, paste the printed `export` into others, then run
workers, `simulate` or any Kafka client against it. Everything is in memory and gone on exit.
"""

from __future__ import annotations

import argparse

HELP = "Run a local in-memory Kafka-protocol broker (Tansu) with the topics applied."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, help="port on 127.0.0.1 (default: a free one)")
    parser.add_argument("--no-topics", action="store_true", help="do not apply topics/topics.toml")
    parser.add_argument(
        "--partitions",
        type=int,
        metavar="N",
        help="partition count of the co-partitioned topics (default: from the file)",
    )
    parser.add_argument("--file", metavar="F", help="topics file (default: topics/topics.toml)")
    parser.add_argument("--log", metavar="PATH", help="write the broker's own log to PATH")


def run(args: argparse.Namespace) -> int:
    import signal
    import threading

    from claimstream.devtools.localbroker import BrokerStartError, LocalBroker

    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    broker = LocalBroker(args.port, log_path=args.log)
    try:
        try:
            broker.start()
        except BrokerStartError as exc:
            print(f"claimstream broker: {exc}")
            return 2
        if not args.no_topics and not _apply_topics(broker.bootstrap, args):
            return 1
        print(f"broker ready on {broker.bootstrap} (Tansu pid {broker.pid}, memory storage)")
        print(f"  export CLAIMSTREAM_BROKER_URL={broker.url}")
        print("Ctrl-C or SIGTERM stops it.", flush=True)
        while not stop.wait(0.5):
            if not broker.running:
                print("claimstream broker: the broker exited unexpectedly")
                return 1
        print("stopping the broker")
        return 0
    finally:
        broker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _apply_topics(bootstrap: str, args: argparse.Namespace) -> bool:
    from claimstream.kafka.admin import apply_topics_sync
    from claimstream.kafka.topology import TopologyError, load_topology

    try:
        topology = load_topology(args.file, args.partitions)
    except TopologyError as exc:
        print(f"claimstream broker: {exc}")
        return False
    report = apply_topics_sync(bootstrap, topology)
    print(report.format_table())
    return report.in_sync
