"""The exit-code table (docs/cli.md, `claimstream.cli.exits`), one row at a time, on real
commands. Rows 3 for every command that talks to a service: tests/cli/test_unreachable.py;
130 on a real Ctrl-C: tests/integration/test_cli_broker.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from claimstream.cli import exits
from claimstream.cli.main import main
from tests.cli.support import claimstream, closed_port, simulated, write_lines


def test_0_a_check_that_finds_nothing_wrong(tmp_path: Path) -> None:
    events = write_lines(tmp_path / "events.jsonl", simulated(50))
    assert main(["validate", str(events)]) == exits.OK == 0


def test_1_a_check_that_finds_what_it_checks_for(tmp_path: Path) -> None:
    events = write_lines(tmp_path / "events.jsonl", [*simulated(5), b"{not json"])
    assert main(["validate", str(events)]) == exits.FOUND == 1


def test_2_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["validate"])  # FILE missing
    assert exit_.value.code == exits.USAGE == 2


def test_2_a_missing_file_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.jsonl"
    assert main(["validate", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err == f"claimstream validate: cannot read {missing}: No such file or directory\n"


def test_2_a_misspelt_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLAIMSTREAM_REDIS_ULR", "redis://127.0.0.1:6379/0")
    assert main(["topics", "list"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("claimstream topics list: CLAIMSTREAM_REDIS_ULR (did you mean ")
    assert "CLAIMSTREAM_REDIS_URL?" in err


def test_3_an_unreachable_broker(capsys: pytest.CaptureFixture[str]) -> None:
    where = closed_port()
    assert main(["topics", "apply", "--bootstrap", where]) == exits.UNREACHABLE == 3
    assert f"cannot reach the broker at {where}" in capsys.readouterr().err


def test_70_an_internal_error_is_one_line_then_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(raw: object) -> object:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("claimstream.detection.decode.decode_event", broken)
    events = write_lines(tmp_path / "events.jsonl", simulated(3))
    assert main(["validate", str(events)]) == exits.INTERNAL == 70
    first, *rest = capsys.readouterr().err.splitlines()
    assert first == (
        "claimstream validate: internal error (a bug, please report it with the traceback "
        "below): ZeroDivisionError: a bug"
    )
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "ZeroDivisionError: a bug"


def test_130_an_interrupted_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(raw: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr("claimstream.detection.decode.decode_event", interrupted)
    events = write_lines(tmp_path / "events.jsonl", simulated(3))
    assert main(["validate", str(events)]) == exits.INTERRUPTED == 130
    assert "Traceback" not in capsys.readouterr().err


def test_141_stdout_closed_early_prints_nothing_more() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # `| head` that has already gone: every write fails with EPIPE
    try:
        process = claimstream("topics", "list", stdout=write_end, stderr=subprocess.PIPE)
    finally:
        os.close(write_end)
    _, err = process.communicate(timeout=60)
    assert process.returncode == exits.BROKEN_PIPE == 141
    assert err == b""
