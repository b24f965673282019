"""`claimstream validate`: every line through the worker's decoder, refusals by line."""

from __future__ import annotations

import io
from pathlib import Path

import orjson
import pytest

from claimstream.cli.main import main
from tests.cli.support import simulated, write_lines


def test_a_file_of_simulated_events_is_all_valid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = write_lines(tmp_path / "events.jsonl", simulated(300))
    assert main(["validate", str(events)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"{events}: 300 lines, all valid events\n"


def test_each_refused_line_is_named_with_its_number_and_dead_letter_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = simulated(2)
    naive = {**good[0], "occurred_at": "2026-03-01T08:00:00"}
    no_patient = {k: v for k, v in good[1].items() if k != "patient_id"}
    events = write_lines(
        tmp_path / "events.jsonl",
        [good[0], b"{oops", naive, b"[1]", no_patient, {**good[1], "event_type": "x"}, b"\xff"],
    )
    assert main(["validate", str(events)]) == 1
    out, err = capsys.readouterr()
    assert [line.split(": ", 2)[:2] for line in out.splitlines()] == [
        [f"{events}:2", "not_json"],
        [f"{events}:3", "naive_timestamp"],
        [f"{events}:4", "not_object"],
        [f"{events}:5", "missing_field"],
        [f"{events}:6", "unknown_event_type"],
        [f"{events}:7", "not_utf8"],
    ]
    assert "required field 'patient_id' is missing" in out
    assert err.startswith(f"{events}: 7 lines, 1 valid events, 6 refused (missing_field 1, ")


def test_blank_lines_are_skipped_and_numbers_are_the_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(orjson.dumps(simulated(1)[0]) + b"\n\n   \n{bad\n")
    assert main(["validate", str(events)]) == 1
    assert capsys.readouterr().out.startswith(f"{events}:4: not_json: ")


def test_json_reports_counts_reasons_and_every_refusal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = write_lines(tmp_path / "e.jsonl", [*simulated(3), b"{", b"{"])
    assert main(["validate", str(events), "--json"]) == 1
    report = orjson.loads(capsys.readouterr().out)
    assert report["lines"] == 5 and report["valid"] == 3 and report["refused"] == 2
    assert report["reasons"] == {"not_json": 2}
    assert [r["line"] for r in report["refusals"]] == [4, 5]


def test_stdin_is_read_with_a_dash(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = b"".join(orjson.dumps(e) + b"\n" for e in simulated(4)) + b"nope\n"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    assert main(["validate", "-"]) == 1
    assert capsys.readouterr().out.startswith("<stdin>:5: not_json: ")


def test_a_directory_is_an_unreadable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"claimstream validate: cannot read {tmp_path}: Is a directory\n"
    )


def test_an_empty_file_is_valid(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert main(["validate", str(empty)]) == 0
