"""Sanction settings from the environment: CLAIMSTREAM_SANCTIONS__<PART>__<SETTING>."""

from __future__ import annotations

import pytest

from claimstream.model.config import ConfigError
from claimstream.sanctions import SanctionSettings
from claimstream.stream.settings import Settings

P = "CLAIMSTREAM_SANCTIONS__"


def test_defaults_are_the_issue_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.sanctions == SanctionSettings()
    assert settings.sanctions_tick_interval == 10.0
    assert settings.sanctions_tick_delay == 60.0
    assert settings.sanctions_alerts_per_subject == 1000


def test_each_part_is_set_by_its_variable() -> None:
    settings = Settings.from_env(
        {
            f"{P}LADDER__REPEAT_WINDOW_DAYS": "14",
            f"{P}LADDER__SUSPEND_AFTER_FREEZES": "4",
            f"{P}LADDER__SUSPEND_ON_CRITICAL": "false",
            f"{P}LADDER__KINDS": "institution,doctor",
            f"{P}LADDER__MIN_SEVERITY": "high",
            f"{P}POINTS__SUSPEND_AT": "10",
            f"{P}GRADE__A_MIN": "92.5",
            f"{P}MANUAL_RETENTION_DAYS": "7",
            "CLAIMSTREAM_SANCTIONS_TICK_INTERVAL": "2",
            "CLAIMSTREAM_SANCTIONS_TICK_DELAY": "5",
            "CLAIMSTREAM_SANCTIONS_ALERTS_PER_SUBJECT": "50",
        }
    )
    s = settings.sanctions
    assert s.ladder.repeat_window_days == 14.0
    assert s.ladder.suspend_after_freezes == 4
    assert s.ladder.suspend_on_critical is False
    assert s.ladder.kinds == ("institution", "doctor")
    assert s.ladder.min_severity == "high"
    assert s.points.suspend_at == 10
    assert s.grade.a_min == 92.5
    assert s.manual_retention_days == 7.0
    assert settings.sanctions_tick_interval == 2.0
    assert settings.sanctions_tick_delay == 5.0
    assert settings.sanctions_alerts_per_subject == 50


def test_the_time_zone_follows_the_detection_unless_set() -> None:
    assert Settings.from_env({"CLAIMSTREAM_TIMEZONE": "UTC"}).sanctions.timezone == "UTC"
    env = {"CLAIMSTREAM_TIMEZONE": "UTC", f"{P}TIMEZONE": "Asia/Urumqi"}
    assert Settings.from_env(env).sanctions.timezone == "Asia/Urumqi"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (f"{P}LADDER__REPEAT_WINDOW_DAYS", "a month", "must be a number"),
        (f"{P}LADDER__REPEAT_WINDOW_DAYS", "-1", "repeat_window_days"),
        (f"{P}POINTS__SUSPEND_AT", "1.5", "whole number"),
        (f"{P}LADDER__SUSPEND_ON_CRITICAL", "maybe", "true or false"),
        (f"{P}LADDER__NO_SUCH", "1", "no setting 'no_such'"),
        (f"{P}LADDERS__LOOKBACK_DAYS", "1", "expected"),
        (f"{P}LADDER", "1", "expected"),
        (f"{P}LADDER__KINDS", "institution,hospital", "kinds"),
        (f"{P}GRADE__B_MIN", "95", "grade bounds"),
        (f"{P}TIMEZONE", "Mars/Olympus", "time zone"),
        (f"{P}LADDER__INTENTIONAL_FRAUD", "revoke", "intentional_fraud must be one of step"),
    ],
)
def test_a_bad_value_is_refused_naming_it(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        Settings.from_env({name: value, f"{P}LADDER__LOOKBACK_DAYS": "60"})
    assert name in str(raised.value)


def test_a_fraud_decision_may_be_set_to_suspend_at_once() -> None:
    env = {f"{P}LADDER__INTENTIONAL_FRAUD": "suspend"}
    assert Settings.from_env(env).sanctions.ladder.intentional_fraud == "suspend"


def test_settings_valid_alone_but_not_together_name_every_variable() -> None:
    env = {f"{P}GRADE__A_MIN": "80", f"{P}GRADE__B_MIN": "85"}
    with pytest.raises(ConfigError, match="grade bounds") as raised:
        Settings.from_env(env)
    assert all(name in str(raised.value) for name in env)
