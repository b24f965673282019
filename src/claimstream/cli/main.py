"""`claimstream` entry point.

Each sub-command lives in its own module exposing `HELP`, `add_arguments(parser)` and
`run(args) -> int`. Those modules import heavy dependencies (faust, aiokafka, redis) inside
`run`, so building the parser stays cheap and `claimstream replay` never pays for faust.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from claimstream import __version__

#: sub-command name -> module implementing it (in the order `--help` lists them).
COMMANDS: dict[str, str] = {
    "replay": "claimstream.cli.replay",
    "simulate": "claimstream.cli.simulate",
    "broker": "claimstream.cli.broker",
    "topics": "claimstream.cli.topics",
    "worker": "claimstream.cli.worker",
    "demo": "claimstream.cli.demo",
    "freezes": "claimstream.cli.freezes",
    "rules": "claimstream.cli.rules",
    "audit": "claimstream.cli.audit",
    "alerts": "claimstream.cli.alerts",
    "unfreeze": "claimstream.cli.unfreeze",
}


def _load(module_name: str) -> ModuleType | None:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:  # not built yet; any other missing module is a real error
            return None
        raise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="claimstream",
        description="Real-time fund-abuse detection for medical-insurance settlement events.",
    )
    parser.add_argument("--version", action="version", version=f"claimstream {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = _load(module_name)
        if module is None:
            continue
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run = getattr(args, "_run", None)
    if run is None:
        parser.print_help()
        return 2
    try:
        return int(run(args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
