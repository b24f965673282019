"""`claimstream` entry point.

Each sub-command lives in its own module exposing `HELP` (one line), `EXAMPLE` (shown under
`--help`), `add_arguments(parser)` and `run(args) -> int`. Those modules import heavy
dependencies (faust, aiokafka, redis) inside `run`, so building the parser stays cheap and
`claimstream replay` never pays for faust.

`main` applies the exit-code table of `claimstream.cli.exits` to every command: a
`CommandError` is one line on stderr with its code, Ctrl-C is 130, a closed stdout (`| head`)
is 141 without a traceback, anything unexpected is 70 with one line and then the traceback.
Before any command runs, a `CLAIMSTREAM_*` variable that is not a setting stops it (exit 2),
naming the variable and its closest known spelling.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from types import ModuleType

from claimstream import __version__
from claimstream.cli import exits

#: sub-command name -> module implementing it (in the order `--help` lists them).
COMMANDS: dict[str, str] = {
    "broker": "claimstream.cli.broker",
    "topics": "claimstream.cli.topics",
    "worker": "claimstream.cli.worker",
    "produce": "claimstream.cli.produce",
    "validate": "claimstream.cli.validate",
    "replay": "claimstream.cli.replay",
    "simulate": "claimstream.cli.simulate",
    "demo": "claimstream.cli.demo",
    "alerts": "claimstream.cli.alerts",
    "unfreeze": "claimstream.cli.unfreeze",
    "cases": "claimstream.cli.cases",
    "reports": "claimstream.cli.reports",
    "freezes": "claimstream.cli.freezes",
    "check": "claimstream.cli.check",
    "rules": "claimstream.cli.rules",
    "reference": "claimstream.cli.reference",
    "audit": "claimstream.cli.audit",
    "institutions": "claimstream.cli.institutions",
}

EPILOG = """\
exit status: 0 done (nothing wrong found), 1 found what it checks for, 2 usage or input \
error, 3 a service (broker, Redis, worker API) unreachable, 70 internal error, 130 interrupted, \
141 stdout closed early. Every command: docs/cli.md.

example: claimstream broker --detach > broker.env && . broker.env && claimstream topics list"""


class HelpFormatter(argparse.HelpFormatter):
    """Wraps descriptions but keeps the examples' lines as written (copy-pasteable), and shows
    each option's default unless its help already says it (or there is none to show)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        import textwrap

        return "\n".join(
            indent + line  # an example stays one line, to copy and paste
            if line.startswith(("example", " "))
            else textwrap.fill(line, width, initial_indent=indent, subsequent_indent=indent)
            for line in text.splitlines()
        )

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            text
            and action.option_strings  # positionals: their help says what they are
            and "default" not in text
            and default not in (None, False, argparse.SUPPRESS, [], "")
        ):
            text += " (default: %(default)s)"
        return text


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
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"claimstream {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = _load(module_name)
        if module is None:
            continue
        example = getattr(module, "EXAMPLE", None)
        cmd = sub.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            epilog=f"example: {example}" if example else None,
        )
        module.add_arguments(cmd)
        cmd.set_defaults(_run=module.run)
    for each in parsers(parser):  # sub-sub-parsers are made by the modules: one style for all
        each.formatter_class = HelpFormatter
    return parser


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """`parser` and every sub-command parser under it, depth first."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases repeat a parser
                yield from parsers(child)


def command_name(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """`alerts review`, `topics apply`, `worker`: the sub-commands chosen in `args`."""
    names: list[str] = []
    current = parser
    while True:
        chosen = None
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                value = getattr(args, action.dest, None)
                if value in action.choices:
                    chosen = (value, action.choices[value])
        if chosen is None:
            return " ".join(names)
        names.append(chosen[0])
        current = chosen[1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # bad arguments: argparse exits 2 itself
    run = getattr(args, "_run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return exits.USAGE
    name = command_name(parser, args)
    try:
        _check_environment()
        code = int(run(args))
        sys.stdout.flush()  # a closed pipe shows here, while we can still exit quietly
        return code
    except exits.CommandError as exc:
        _say(name, str(exc))
        return exc.code
    except KeyboardInterrupt:
        return exits.INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return exits.BROKEN_PIPE
    except ConnectionError as exc:  # a client gave up after the command's own checks passed
        from claimstream.kafka.url import BrokerUnreachable

        if isinstance(exc, BrokerUnreachable):
            _say(name, str(exits.broker_unreachable(exc)))
        else:
            _say(name, f"a service stopped answering: {type(exc).__name__}: {exc}")
        return exits.UNREACHABLE
    except Exception as exc:  # noqa: BLE001 - the table's row 70: say so, then the traceback
        return _internal(name, exc)


def _check_environment() -> None:
    """Exit 2 when a `CLAIMSTREAM_*` variable is not one we read (cheap when there is none)."""
    if not any(key.startswith("CLAIMSTREAM_") for key in os.environ):
        return
    from claimstream.model.config import ConfigError
    from claimstream.stream.settings import check_variables

    try:
        check_variables(os.environ)
    except ConfigError as exc:
        raise exits.CommandError(str(exc)) from None


def _say(name: str, message: str) -> None:
    with contextlib.suppress(BrokenPipeError, ValueError):  # stderr gone too: nothing to tell
        print(f"claimstream {name}: {message}", file=sys.stderr, flush=True)


def _internal(name: str, exc: BaseException) -> int:
    _say(
        name,
        f"internal error (a bug, please report it with the traceback below): "
        f"{type(exc).__name__}: {exc}",
    )
    traceback.print_exception(exc, file=sys.stderr)
    return exits.INTERNAL


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot raise again (the
    recipe of the `signal` module's documentation, "Note on SIGPIPE")."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):  # stdout replaced by something without a fd
        pass


if __name__ == "__main__":
    sys.exit(main())
