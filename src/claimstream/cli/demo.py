"""`claimstream demo`: broker, topics, worker and a simulated stream, all local (see `demo`)."""

from __future__ import annotations

import argparse
import os

HELP = "run the whole pipeline locally on a simulated stream and show alerts live"
EXAMPLE = "claimstream demo --events 3000 --keep-running"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--events", type=int, default=6000, help="simulated events")
    parser.add_argument("--rate", type=float, default=1500.0, help="events per second")
    parser.add_argument("--partitions", type=int, default=4, help="partitions per topic")
    parser.add_argument("--seed", type=int, default=7, help="random seed of the simulation")
    parser.add_argument(
        "--lateness-hours",
        type=float,
        default=1.0,
        help="allowed lateness (default 1 h, the worker's default)",
    )
    parser.add_argument(
        "--keep-running", action="store_true", help="keep broker and worker up until Ctrl-C"
    )


def run(args: argparse.Namespace) -> int:
    from claimstream.devtools.demo import DemoOptions, run_demo

    return run_demo(
        DemoOptions(
            events=args.events,
            rate=args.rate,
            partitions=args.partitions,
            seed=args.seed,
            lateness_hours=args.lateness_hours,
            keep_running=args.keep_running,
            redis_url=os.environ.get("CLAIMSTREAM_REDIS_URL") or None,
        )
    )
