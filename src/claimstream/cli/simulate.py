"""`claimstream simulate`: write a realistic synthetic event stream as JSON lines."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

HELP = "generate a synthetic stream of settlement events with injected abuse cases"
EXAMPLE = "claimstream simulate 5000 -o events.jsonl && claimstream produce events.jsonl"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("count", type=int, help="number of events to generate")
    parser.add_argument("-o", "--out", metavar="FILE", help="output file (default: stdout)")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    parser.add_argument(
        "--patients", type=int, help="size of the patient population (default: from the count)"
    )
    parser.add_argument(
        "--start",
        type=datetime.fromisoformat,
        help="event time of the first event, ISO-8601 with offset (default 2026-03-01T08:00+08:00)",
    )
    parser.add_argument("--no-inject", action="store_true", help="benign events only")
    parser.add_argument(
        "--days", type=float, default=30.0, help="event time the stream spans (default 30)"
    )
    parser.add_argument(
        "--drifting",
        type=int,
        default=0,
        metavar="N",
        help="claims declare their institution's grade and N tertiary hospitals (at most 3) "
        "bill 1.8 times their peers every month: peer outliers (issue #15)",
    )


def run(args: argparse.Namespace) -> int:
    import orjson

    from claimstream.devtools.simulate import Simulator

    if args.count < 0:
        print("claimstream simulate: count must not be negative", file=sys.stderr)
        return 2
    if args.days <= 0 or not 0 <= args.drifting <= 3:
        print("claimstream simulate: --days must be positive, --drifting 0..3", file=sys.stderr)
        return 2
    if args.start is not None and args.start.tzinfo is None:
        print("claimstream simulate: --start needs a UTC offset", file=sys.stderr)
        return 2
    sim = Simulator(
        args.count,
        seed=args.seed,
        start=args.start,
        patients=args.patients,
        inject=not args.no_inject,
        span_days=args.days,
        drifting=args.drifting,
    )
    try:
        out = open(args.out, "wb") if args.out else sys.stdout.buffer  # noqa: SIM115
    except OSError as exc:
        print(f"claimstream simulate: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        for event in sim.events():
            out.write(orjson.dumps(event))
            out.write(b"\n")
    finally:
        if args.out:
            out.close()
    injected = {rule: len(patients) for rule, patients in sim.injected.items()}
    print(f"{args.count} events written; injected cases: {injected}", file=sys.stderr)
    return 0
