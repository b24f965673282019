"""`claimstream check FILE` against a scripted worker on loopback: what it prints, its exit codes
(the live workers: tests/integration/test_check_api.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from claimstream.cli.main import main
from tests.cli.support import closed_port, write_lines
from tests.client.scripted import scripted

EVENT = {"event_id": "e1", "event_type": "dispense", "patient_id": "P1"}


def answer(decision: str, event_id: str = "e1", **more: Any) -> dict[str, Any]:
    violations = []
    if decision != "pass":
        violations = [
            {"rule": "repeat_dispensing", "rule_name": "重复开药", "severity": "high",
             "amount": 1259.2, "legal_basis": "", "behaviour": "", "message": "",
             "event_ids": [event_id], "lines": [], "alert_id": "alr-1", "decision": decision}
        ]  # fmt: skip
    return {
        "check_id": f"chk-{event_id}",
        "decision": decision,
        "violations": violations,
        "freezes": [],
        "rule_version": 1,
        "evaluated_at": "2026-12-04T10:00:00+08:00",
        "events": [{"event_id": event_id, "outcome": "checked"}],
        **more,
    }


@pytest.fixture
def events(tmp_path: Path) -> Path:
    return write_lines(tmp_path / "claims.jsonl", [EVENT, b"", {**EVENT, "event_id": "e2"}])


def test_0_when_every_line_passes_and_each_line_is_sent_as_it_is(
    events: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAIMSTREAM_CLIENT_TOKEN", "cs_his")
    with scripted((200, answer("pass"), {}), (200, answer("pass", "e2"), {})) as worker:
        assert main(["check", str(events), "--worker", worker.url]) == 0
    assert [orjson.loads(s.body)["event_id"] for s in worker.seen] == ["e1", "e2"]
    assert worker.seen[0].headers["Authorization"] == "Bearer cs_his"
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{events}:1 e1 pass", f"{events}:3 e2 pass"]
    assert "2 lines checked: pass 2" in err


def test_1_when_a_line_does_not_pass_or_is_refused(
    events: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = {"error": "patient_id is missing", "reason": "missing_field", "index": 0}
    with scripted((200, answer("hold"), {}), (400, refused, {})) as worker:
        assert main(["check", str(events), "--worker", worker.url]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{events}:1 e1 hold  repeat_dispensing 重复开药 ¥1,259.20",
        f"{events}:3: refused: missing_field: patient_id is missing",
    ]
    assert "hold 1, refused 1" in err


def test_json_prints_each_answer(events: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with scripted((200, answer("reject"), {}), (200, answer("warn", "e2"), {})) as worker:
        assert main(["check", str(events), "--worker", worker.url, "--json"]) == 1
    lines = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(x["line"], x["decision"]) for x in lines] == [(1, "reject"), (3, "warn")]


def test_2_when_the_file_cannot_be_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "missing.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_2_when_the_worker_refuses_the_token(
    events: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with scripted((401, {"error": "this call needs Authorization: Bearer <token>"}, {})) as worker:
        assert main(["check", str(events), "--worker", worker.url]) == 2
    assert "CLAIMSTREAM_CLIENT_TOKEN" in capsys.readouterr().err


def test_3_when_the_worker_does_not_answer(
    events: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["check", str(events), "--worker", f"http://{closed_port()}", "--retries", "0"]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "did not answer the check of line 1" in err and len(err.splitlines()) == 1


def test_3_when_the_worker_stays_unavailable(
    events: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    busy = (503, {"error": "table recovery has not finished"}, {"Retry-After": "0"})
    with scripted(busy, busy) as worker:
        argv = ["check", str(events), "--worker", worker.url, "--retries", "1"]
        assert main(argv) == 3
    assert "table recovery has not finished" in capsys.readouterr().err


def test_3_when_the_worker_fails_with_an_error_of_its_own(
    events: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with scripted((500, {"error": "internal error"}, {})) as worker:
        assert main(["check", str(events), "--worker", worker.url]) == 3
    assert f"the worker at {worker.url} failed to answer: HTTP 500" in capsys.readouterr().err
