"""`claimstream rules add|remove|diff` without a broker: what is refused before any publish,
and `diff` against a configuration file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest

from claimstream.cli.main import main
from claimstream.cli.rules import _print_config
from claimstream.detection.config import DetectionConfig
from claimstream.testing import dispense
from tests.cli.support import closed_port, write_lines
from tests.rules._catalogue import claim

HIGH_COST = """
[custom_rules.high_cost_claims]
template = "window_count"
key = "patient"
event_types = ["claim"]
filter = "event.total_amount > 1000.0 && event.institution_id in lists.hospitals"
window_days = 7
min_count = 3

[custom_lists]
hospitals = ["H1"]
"""


def rules_file(tmp_path: Path, text: str = HIGH_COST) -> Path:
    file = tmp_path / "custom.toml"
    file.write_text(text, encoding="utf-8")
    return file


def history(tmp_path: Path) -> Path:
    events = [claim(f"c{i}", i * 12.0, total=1500.0) for i in range(4)]
    events += [claim(f"q{i}", i * 12.0, total=1500.0, patient_id="P2", inst="H9") for i in range(4)]
    return write_lines(tmp_path / "history.jsonl", [ev.raw for ev in events])


def base(tmp_path: Path) -> Path:
    """The defaults, as a configuration file."""
    file = tmp_path / "base.json"
    file.write_text("{}", encoding="utf-8")
    return file


def test_diff_counts_the_alerts_a_new_rule_adds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["rules", "diff", str(rules_file(tmp_path)), "--events", str(history(tmp_path))]
    assert main([*argv, "--base", str(base(tmp_path))]) == 1
    out = capsys.readouterr().out
    assert "high_cost_claims        1        0" in out


def test_diff_json_prints_each_added_alert(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["rules", "diff", str(rules_file(tmp_path)), "--events", str(history(tmp_path))]
    assert main([*argv, "--base", str(base(tmp_path)), "--json"]) == 1
    (line,) = capsys.readouterr().out.splitlines()
    alert = orjson.loads(line)
    assert (alert["change"], alert["rule"], alert["subject"]["id"]) == (
        "added",
        "high_cost_claims",
        "P1",
    )


def test_diff_shows_the_alerts_a_changed_rule_removes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = tmp_path / "old.json"
    old.write_text(
        orjson.dumps(
            {
                "custom_rules": {
                    "high_cost_claims": {
                        "template": "window_count",
                        "event_types": ["claim"],
                        "filter": "event.total_amount > 1000.0",
                        "window_days": 7,
                        "min_count": 3,
                    }
                }
            }
        ).decode(),
        encoding="utf-8",
    )
    argv = ["rules", "diff", str(rules_file(tmp_path)), "--events", str(history(tmp_path))]
    assert main([*argv, "--base", str(old)]) == 1
    assert "high_cost_claims        0        1" in capsys.readouterr().out


def test_diff_of_a_change_that_alerts_nothing_new_is_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = HIGH_COST.replace("min_count = 3", "min_count = 30")
    argv = ["rules", "diff", str(rules_file(tmp_path, text)), "--events", str(history(tmp_path))]
    assert main([*argv, "--base", str(base(tmp_path))]) == 0
    assert "no alert added or removed" in capsys.readouterr().out


def test_add_refuses_a_file_holding_other_settings_without_asking_the_broker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = rules_file(tmp_path, HIGH_COST + "\n[rules.duplicate_exam]\nwindow_days = 3\n")
    assert main(["rules", "add", str(file), "--bootstrap", closed_port()]) == 2
    err = capsys.readouterr().err
    assert "refused, nothing published" in err
    assert "holds rules" in err


def test_add_refuses_a_missing_file_without_asking_the_broker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nothing.toml"
    assert main(["rules", "add", str(missing), "--bootstrap", closed_port()]) == 2
    assert "no such file" in capsys.readouterr().err


def test_diff_refuses_an_invalid_rule_naming_the_rule_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = HIGH_COST.replace("> 1000.0", "> 1000")
    argv = ["rules", "diff", str(rules_file(tmp_path, text)), "--events", str(history(tmp_path))]
    assert main([*argv, "--base", str(base(tmp_path))]) == 2
    assert "custom_rules.high_cost_claims.filter: at 1:20" in capsys.readouterr().err


MISSED_REFILL = """
[custom_rules.missed_refill_90d]
template = "absence"
event_types = ["dispense"]
filter_a = "event.chronic"
filter_b = "true"
join = "a.drug_code == b.drug_code"
within_days = 90
"""


def test_diff_counts_the_findings_of_an_absence_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refilled = [dispense("r1", 0, patient_id="P2"), dispense("r2", 60 * 24, patient_id="P2")]
    events = [dispense("d1", 0), *refilled]
    events += [dispense(f"x{i}", (92 + i) * 24, drug="AMOX", chronic=False, days=5) for i in (0, 1)]
    file = write_lines(tmp_path / "history.jsonl", [ev.raw for ev in events])
    argv = ["rules", "diff", str(rules_file(tmp_path, MISSED_REFILL)), "--events", str(file)]
    assert main([*argv, "--base", str(base(tmp_path)), "--json"]) == 1
    added = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(a["rule"], a["event_ids"]) for a in added] == [("missed_refill_90d", ["d1"])]


def test_rules_list_shows_a_pair_rule_s_filters_join_and_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = DetectionConfig.default().with_custom(tomllib.loads(MISSED_REFILL)["custom_rules"])
    _print_config(
        SimpleNamespace(config=config, changed_by="", changed_at="", reason=""),
        from_topic=False,
        topic="t",
        as_json=False,
    )
    out = capsys.readouterr().out
    assert "absence" in out
    assert "90d join=a.drug_code == b.drug_code filter_a: event.chronic filter_b: true" in out
