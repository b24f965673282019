"""`claimstream replay` end to end on files, in process."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from claimstream.cli.main import main
from claimstream.devtools.simulate import Simulator


def write_events(path: Path, count: int, extra: list[bytes] | None = None) -> Path:
    lines = [orjson.dumps(e) for e in Simulator(count, seed=5).events()]
    path.write_bytes(b"\n".join([*lines, *(extra or [])]) + b"\n")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line]


def test_replay_writes_the_three_outputs_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = write_events(tmp_path / "events.jsonl", 6_000, extra=[b"{broken", b'"not an object"'])
    out = {name: tmp_path / f"{name}.jsonl" for name in ("alerts", "commands", "dead")}
    code = main(
        [
            "replay",
            str(events),
            "--alerts",
            str(out["alerts"]),
            "--commands",
            str(out["commands"]),
            "--dead-letter",
            str(out["dead"]),
        ]
    )
    assert code == 0
    alerts, commands, dead = (read_jsonl(p) for p in out.values())
    assert {a["rule"] for a in alerts} >= {"repeat_dispensing", "readmission_24h"}
    assert all(c["action"] == "FREEZE" for c in commands) and commands
    assert [d["reason"] for d in dead] == ["not_json", "not_object"]
    assert dead[0]["origin"] == {"file": str(events), "line": 6_001}
    assert dead[0]["raw"] == "{broken"
    summary = capsys.readouterr().err
    assert "events read   6002" in summary
    assert "dead letters  2 (not_json 1, not_object 1)" in summary


def test_alerts_go_to_stdout_by_default_and_event_clock_makes_runs_identical(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = write_events(tmp_path / "events.jsonl", 3_000)
    outputs = []
    for _ in range(2):
        assert main(["replay", str(events), "--clock", "event", "--quiet"]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert outputs[0].count("\n") >= 3


def test_a_missing_file_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "/nonexistent/events.jsonl"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_a_config_file_changes_thresholds(tmp_path: Path) -> None:
    events = write_events(tmp_path / "events.jsonl", 6_000)
    config = tmp_path / "rules.toml"
    config.write_text("[rules.repeat_dispensing]\nenabled = false\n")
    alerts = tmp_path / "alerts.jsonl"
    assert (
        main(["replay", str(events), "--config", str(config), "--alerts", str(alerts), "-q"]) == 0
    )
    assert "repeat_dispensing" not in {a["rule"] for a in read_jsonl(alerts)}


def _claim_of(doctor: str, at: str, event_id: str) -> dict[str, object]:
    return {
        "event_id": event_id,
        "event_type": "claim",
        "occurred_at": at,
        "patient_id": "P1",
        "institution_id": "H001",
        "doctor_id": doctor,
        "claim_id": f"C-{event_id}",
        "visit_type": "outpatient",
        "total_amount": 80.0,
        "fund_amount": 56.0,
        "items": [],
    }


def test_suspensions_from_a_commands_file_refuse_the_doctors_later_claims(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    lines = [
        _claim_of("DS", "2026-03-01T09:00:00+08:00", "before"),
        _claim_of("DS", "2026-03-01T11:00:00+08:00", "after"),
    ]
    events.write_bytes(b"\n".join(orjson.dumps(e) for e in lines) + b"\n")
    commands = tmp_path / "commands.jsonl"
    suspend = {
        "command_id": "cmd-s1",
        "action": "SUSPEND",
        "scope": {"kind": "doctor", "id": "DS"},
        "effective_from": "2026-03-01T10:00:00+08:00",
        "expires_at": None,
    }
    commands.write_bytes(orjson.dumps(suspend) + b"\n")
    config = tmp_path / "rules.toml"
    config.write_text("[rules.doctor_not_registered]\nenabled = true\ncheck_registration = false\n")
    alerts = tmp_path / "alerts.jsonl"
    argv = ["replay", str(events), "--config", str(config), "--alerts", str(alerts), "-q"]
    assert main([*argv, "--suspensions", str(commands)]) == 0
    refused = [a for a in read_jsonl(alerts) if a["rule"] == "doctor_not_registered"]
    assert [a["event_ids"] for a in refused] == [["after"]]


def test_a_suspensions_file_that_is_not_json_lines_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = write_events(tmp_path / "events.jsonl", 10)
    commands = tmp_path / "commands.jsonl"
    commands.write_text("not json\n")
    assert main(["replay", str(events), "--suspensions", str(commands), "-q"]) == 2
    assert "commands.jsonl:1" in capsys.readouterr().err
