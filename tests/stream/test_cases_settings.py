"""The casework settings: step days, the grouping, the calendar file, read from the environment."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from claimstream.model.config import ConfigError
from claimstream.stream.cases import parse_step_days, procedure_from
from claimstream.stream.settings import Settings

SH = ZoneInfo("Asia/Shanghai")


def test_one_number_sets_every_step():
    assert set(parse_step_days("10").values()) == {10}


def test_named_steps_change_only_themselves():
    days = parse_step_days("first_review=10,appeal=20")
    assert (days["first_review"], days["appeal"], days["decision"]) == (10, 20, 15)


@pytest.mark.parametrize("text", ["review=3", "first_review=x", "ten"])
def test_bad_step_days_name_the_variable(text):
    with pytest.raises(ConfigError, match="CLAIMSTREAM_CASES_STEP_DAYS"):
        parse_step_days(text)


def test_zero_days_are_refused_naming_the_variable():
    with pytest.raises(ConfigError, match="CLAIMSTREAM_CASES_STEP_DAYS"):
        procedure_from(step_days="0", group_days=30, calendar_file=None, tz=SH)


def test_a_calendar_file_is_read_from_its_setting(tmp_path: Path):
    path = tmp_path / "cal.csv"
    path.write_text("2027-01-01,holiday,New Year\n", "utf-8")
    procedure = procedure_from(step_days="15", group_days=30, calendar_file=str(path), tz=SH)
    assert procedure.calendar.covers == frozenset({2027})


def test_the_settings_come_from_the_environment():
    settings = Settings.from_env(
        {"CLAIMSTREAM_CASES_GROUP_DAYS": "7", "CLAIMSTREAM_CASES_STEP_DAYS": "appeal=5",
         "CLAIMSTREAM_CASES_CALENDAR_FILE": "", "CLAIMSTREAM_CASES_MIN_SEVERITY": "high"}
    )  # fmt: skip
    assert (settings.cases_group_days, settings.cases_step_days) == (7, "appeal=5")
    assert (settings.cases_calendar_file, settings.cases_min_severity) == (None, "high")


def test_an_unknown_minimum_severity_is_refused():
    with pytest.raises(ConfigError, match="CLAIMSTREAM_CASES_MIN_SEVERITY"):
        Settings.from_env({"CLAIMSTREAM_CASES_MIN_SEVERITY": "severe"})
