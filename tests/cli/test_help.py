"""`--help` of every command and sub-command: a description, an example, the defaults."""

from __future__ import annotations

import argparse

import pytest

from claimstream.cli.main import COMMANDS, build_parser, parsers


def leaves() -> list[argparse.ArgumentParser]:
    """Every parser that runs something (no sub-commands of its own)."""
    out = []
    for parser in parsers(build_parser()):
        if not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions):
            out.append(parser)
    return out


LEAVES = {parser.prog: parser for parser in leaves()}


def test_every_command_is_in_the_parser() -> None:
    progs = {" ".join(prog.split()[:2]) for prog in LEAVES}
    assert progs == {f"claimstream {name}" for name in COMMANDS}


@pytest.mark.parametrize("prog", sorted(LEAVES))
def test_help_has_a_description_and_an_example(prog: str) -> None:
    text = LEAVES[prog].format_help()
    description = LEAVES[prog].description
    assert description and len(description) > 20, prog
    assert "\nexample: claimstream " in text, text


@pytest.mark.parametrize("prog", sorted(LEAVES))
def test_help_shows_every_default(prog: str) -> None:
    parser = LEAVES[prog]
    text = " ".join(parser.format_help().split())  # unwrap argparse's line breaks
    for action in parser._actions:
        if not action.option_strings or action.help in (None, argparse.SUPPRESS):
            continue
        if action.default in (None, False, argparse.SUPPRESS, [], ""):
            continue
        shown = " ".join(parser._get_formatter()._expand_help(action).split())
        assert "default" in shown, f"{prog} {action.option_strings[0]}: {shown}"
        assert shown in text


def test_a_default_is_appended_once() -> None:
    text = LEAVES["claimstream produce"].format_help()
    assert "(default: 30.0)" in " ".join(text.split())
    assert text.count("default: 30.0") == 1


def test_the_top_level_help_names_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--help"])
    assert exit_.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "3 a service (broker, Redis, worker API) unreachable" in out
    assert "docs/cli.md" in out
