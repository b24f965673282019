"""`claimstream replay`: run the detection core over a JSON-lines file."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from claimstream.reference.suspensions import Suspensions

HELP = "run the detection rules over a JSON-lines file of events (backtest, audit, debugging)"
EXAMPLE = "claimstream replay events.jsonl --clock event --alerts alerts.jsonl"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("events", help="JSON-lines file of events, one per line ('-' for stdin)")
    parser.add_argument("--alerts", metavar="FILE", help="write alerts here (default: stdout)")
    parser.add_argument("--commands", metavar="FILE", help="write settlement commands here")
    parser.add_argument("--dead-letter", metavar="FILE", help="write refused inputs here")
    parser.add_argument(
        "--shadow-alerts", metavar="FILE", help="write alerts of rules in shadow mode here"
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="detection configuration (TOML or JSON, the shape `claimstream rules list` shows)",
    )
    parser.add_argument(
        "--clock",
        choices=("wall", "event"),
        default="wall",
        help="stamp detected_at with the wall clock or the event time, which makes two runs "
        "diffable",
    )
    parser.add_argument(
        "--suspensions",
        metavar="FILE",
        help="settlement commands (command.v1 JSON lines, e.g. `alerts`' or the sanctions "
        "ladder's output): the doctors' SUSPENDs and UNFREEZEs in it are in force for "
        "doctor_not_registered, as the worker reads them from the commands topic",
    )
    parser.add_argument(
        "--indicators",
        metavar="FILE",
        help="write each institution's closed months (InstitutionMonth JSON lines, the "
        "figures the peer comparison and `institutions benchmark` read) here",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")


def run(args: argparse.Namespace) -> int:
    from claimstream.cli.progress import Progress
    from claimstream.detection.config import DetectionConfig
    from claimstream.detection.replay import ReplaySinks, jsonl_writer, replay
    from claimstream.model.config import ConfigError

    try:
        config = (
            DetectionConfig.from_file(args.config) if args.config else DetectionConfig.default()
        )
    except (ConfigError, OSError) as exc:
        print(f"claimstream replay: bad --config: {exc}", file=sys.stderr)
        return 2
    suspensions = None
    if args.suspensions is not None:
        try:
            suspensions = _suspensions(Path(args.suspensions))
        except (OSError, ValueError) as exc:
            print(f"claimstream replay: bad --suspensions: {exc}", file=sys.stderr)
            return 2
    if args.events != "-" and not Path(args.events).is_file():
        print(f"claimstream replay: no such file: {args.events}", file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:

        def sink(path: str | None, default: BinaryIO | None) -> BinaryIO | None:
            if path is None:
                return default
            if path == "-":
                return sys.stdout.buffer
            return stack.enter_context(open(path, "wb"))

        alerts = sink(args.alerts, sys.stdout.buffer)
        writers = ReplaySinks()
        if alerts is not None:
            writers.alerts = jsonl_writer(alerts)
        for name, path in (
            ("commands", args.commands),
            ("dead_letters", args.dead_letter),
            ("shadow_alerts", args.shadow_alerts),
            ("records", args.indicators),
        ):
            stream = sink(path, None)
            if stream is not None:
                setattr(writers, name, jsonl_writer(stream))

        if args.events == "-":
            source: BinaryIO = sys.stdin.buffer
            total = None
        else:
            source = stack.enter_context(open(args.events, "rb"))
            total = os.path.getsize(args.events)
        bar = Progress(total)
        lines = _CountingLines(source)
        summary = replay(
            lines,
            writers,
            config=config,
            clock=args.clock,
            source=args.events,
            progress=lambda n: bar.update(lines.consumed, n) if bar.enabled else None,
            partitions=_input_partitions(),
            suspensions=suspensions,
        )
        bar.close()
    if not args.quiet:
        print(summary.render(), file=sys.stderr)
    return 0


def _suspensions(path: Path) -> Suspensions:
    """The doctors' suspensions of a JSON-lines file of commands (ValueError naming the line
    that is not a JSON object)."""
    import orjson

    from claimstream.reference.suspensions import Suspensions

    commands = []
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                command = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc})") from None
            if not isinstance(command, dict):
                raise ValueError(f"{path}:{number}: not a JSON object")
            commands.append(command)
    return Suspensions.from_commands(commands)


def _input_partitions() -> int:
    """The input topics' partition count the worker has (topics.toml, or
    CLAIMSTREAM_PARTITIONS): event time is judged per input partition, as in the worker.
    Without a topics.toml (an installed package), topics.toml's default."""
    from claimstream.detection.align import DEFAULT_PARTITIONS
    from claimstream.kafka.topology import TopologyError, load_topology

    override = os.environ.get("CLAIMSTREAM_PARTITIONS", "").strip()
    if override.isdigit() and int(override) > 0:
        return int(override)
    try:
        return load_topology().by_role("input")[0].partitions
    except (TopologyError, IndexError):
        return DEFAULT_PARTITIONS


class _CountingLines(Iterator[bytes]):
    """Iterates a binary file by line and counts bytes consumed, for the progress bar."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self.consumed = 0

    def __iter__(self) -> _CountingLines:
        return self

    def __next__(self) -> bytes:
        line = self._source.readline()
        if not line:
            raise StopIteration
        self.consumed += len(line)
        return line
