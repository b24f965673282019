"""docs/cli.md covers what the command line has: every command, the exit codes, the variables."""

from __future__ import annotations

import re
from pathlib import Path

from claimstream.cli import exits
from claimstream.cli.main import COMMANDS
from claimstream.stream.settings import known_variables

DOC = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text(encoding="utf-8")


def test_every_command_has_a_section() -> None:
    headings = [line for line in DOC.splitlines() if line.startswith("### ")]
    named = {name for line in headings for name in re.findall(r"`claimstream (\w+)", line)}
    assert named == set(COMMANDS)


def test_the_exit_code_table_is_the_one_the_code_uses() -> None:
    rows = [int(code) for code in re.findall(r"^\| (\d+) \|", DOC, flags=re.MULTILINE)]
    codes = [exits.OK, exits.FOUND, exits.USAGE, exits.UNREACHABLE, exits.INTERNAL]
    assert rows == [*codes, exits.INTERRUPTED, exits.BROKEN_PIPE]


def test_every_known_variable_is_listed() -> None:
    assert sorted(name for name in known_variables() if f"`{name}`" not in DOC) == []
