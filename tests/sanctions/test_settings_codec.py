"""Sanction settings from a file's shape, and alerts/commands back from their JSON."""

from __future__ import annotations

import pytest

from claimstream.model.config import ConfigError
from claimstream.sanctions import SanctionSettings
from claimstream.sanctions.codec import alert_from_dict, command_from_dict
from claimstream.testing import dispense, run


def test_defaults_are_the_issues() -> None:
    settings = SanctionSettings()
    ladder = settings.ladder
    assert (ladder.repeat_window_days, ladder.suspend_window_days) == (30, 90)
    assert ladder.suspend_after_freezes == 3 and ladder.suspend_on_critical
    assert ladder.immediate_rules == (
        "readmission_24h",
        "split_hospitalization",
        "trace_code_reuse",
    )
    assert settings.points.suspend_at == 12
    assert settings.grade.horizon_days == 365 and settings.timezone == "Asia/Shanghai"


def test_from_dict_overlays_the_defaults() -> None:
    settings = SanctionSettings.from_dict(
        {
            "ladder": {"repeat_window_days": 14, "immediate_rules": ["readmission_24h"]},
            "points": {"high": 4},
            "grade": {"suspend_on_d": False},
            "timezone": "Asia/Urumqi",
        }
    )
    assert settings.ladder.repeat_window_days == 14.0
    assert settings.ladder.immediate_rules == ("readmission_24h",)
    assert settings.points.high == 4 and settings.points.warning == 2
    assert settings.grade.suspend_on_d is False
    assert settings.tz.key == "Asia/Urumqi"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"ladder": {"nope": 1}}, "no setting 'nope'"),
        ({"ladder": {"repeat_window_days": -1}}, "greater than 0"),
        ({"ladder": {"kinds": ["clinic"]}}, "kinds must be among"),
        ({"points": {"high": 2.5}}, "whole number"),
        ({"points": {"high": "five"}}, "must be a number"),
        ({"grade": {"a_min": 50}}, "grade bounds"),
        ({"grade": {"remediation_factor": 2}}, "between 0 and 1"),
        ({"grade": {"suspend_on_d": "yes"}}, "true or false"),
        ({"timezone": "Mars/Base"}, "unknown time zone"),
        ({"fines": {}}, "unknown sanctions setting"),
        ({"ladder": 3}, "must be a table"),
    ],
)
def test_from_dict_refuses_bad_settings(data: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SanctionSettings.from_dict(data)


def test_alerts_and_commands_come_back_from_their_json() -> None:
    result = run([dispense("a", 0, inst="H1"), dispense("b", 48, inst="H2")])
    (alert,), (command,) = result.alerts, result.commands
    assert alert_from_dict(alert.to_dict()) == alert
    assert command_from_dict(command.to_dict()) == command
    assert command.scope.drug_code == "INS"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"action": "BAN"}, "unknown action"),
        ({"scope": {"kind": "clinic", "id": "x"}}, "kind must be one of"),
        ({"effective_from": "2026-03-01T08:00:00"}, "without a UTC offset"),
        ({"command_id": ""}, "non-empty string"),
    ],
)
def test_a_bad_command_is_refused_with_the_field(change: dict, message: str) -> None:
    result = run([dispense("a", 0, inst="H1"), dispense("b", 48, inst="H2")])
    with pytest.raises(ValueError, match=message):
        command_from_dict({**result.commands[0].to_dict(), **change})
