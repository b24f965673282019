from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from claimstream.cases.calendar import SpecialDay, WorkingCalendar, load_calendar, parse_calendar
from claimstream.model.config import ConfigError

SH = ZoneInfo("Asia/Shanghai")
CAL = load_calendar(None, SH)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_the_shipped_calendar_covers_2026():
    assert CAL.covers == frozenset({2026})


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        ("2026-03-02T10:00:00+08:00", 1, date(2026, 3, 3)),  # Monday -> Tuesday
        ("2026-03-06T10:00:00+08:00", 1, date(2026, 3, 9)),  # Friday -> Monday
        ("2026-03-07T10:00:00+08:00", 1, date(2026, 3, 9)),  # Saturday -> Monday
        (
            "2026-03-02T10:00:00+08:00",
            15,
            date(2026, 3, 23),
        ),  # three weeks, the start day not counted
        ("2026-03-02T10:00:00+08:00", 0, date(2026, 3, 2)),
    ],
)
def test_working_days_skip_weekends(start, n, expected):
    assert CAL.add_working_days(at(start), n) == expected


def test_a_national_day_week_is_skipped():
    # 2026-09-30 (Wed) + 1 working day: Oct 1-7 off (Oct 3-4 a weekend), Oct 8 (Thu) works
    assert CAL.add_working_days(at("2026-09-30T09:00:00+08:00"), 1) == date(2026, 10, 8)


def test_an_adjusted_weekend_workday_counts():
    # Friday 2026-02-13 + 1: Saturday 2026-02-14 is a 调休 working day
    assert CAL.add_working_days(at("2026-02-13T09:00:00+08:00"), 1) == date(2026, 2, 14)


def test_the_spring_festival_is_skipped_and_its_adjusted_saturday_counted():
    # Saturday 14 Feb works; 16-20 and 23 Feb off; 24 (Tue) .. 27 (Fri) work, Sat 28 works
    assert CAL.add_working_days(at("2026-02-14T09:00:00+08:00"), 1) == date(2026, 2, 24)
    assert CAL.add_working_days(at("2026-02-14T09:00:00+08:00"), 5) == date(2026, 2, 28)


def test_the_local_day_is_taken_in_the_calendars_time_zone():
    # 2026-03-06 17:00 UTC is Saturday 01:00 in Shanghai: +1 working day is Monday 9 March
    assert CAL.add_working_days(at("2026-03-06T17:00:00+00:00"), 1) == date(2026, 3, 9)


def test_the_deadline_is_the_local_midnight_ending_the_day():
    due = CAL.deadline(at("2026-03-02T10:00:00+08:00"), 1)
    assert due == at("2026-03-04T00:00:00+08:00").timestamp()


def test_years_the_file_does_not_name_count_weekdays_only():
    # 2027-01-01 is a Friday: no holiday known, so it is a working day
    assert CAL.add_working_days(at("2026-12-31T09:00:00+08:00"), 1) == date(2027, 1, 1)


def test_working_days_between_counts_after_the_first_day():
    assert (
        CAL.working_days_between(at("2026-03-06T09:00:00+08:00"), at("2026-03-10T09:00:00+08:00"))
        == 2
    )


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError, match="offset"):
        CAL.add_working_days(datetime(2026, 3, 2), 1)


def test_a_calendar_file_replaces_the_default(tmp_path):
    path = tmp_path / "cal.csv"
    path.write_text("date,kind,name\n2026-03-03,holiday,local\n", "utf-8")
    cal = load_calendar(path, SH)
    assert cal.add_working_days(at("2026-03-02T10:00:00+08:00"), 1) == date(2026, 3, 4)


def test_a_day_listed_both_ways_is_refused():
    with pytest.raises(ConfigError, match="holiday and workday"):
        parse_calendar("2026-03-03,holiday,a\n2026-03-03,workday,b\n", "cal.csv")


@pytest.mark.parametrize("line", ["2026-13-01,holiday,x", "2026-03-03,day-off,x", "2026-03-03"])
def test_a_bad_line_names_the_file(line):
    with pytest.raises(ConfigError, match=r"cal\.csv: row 1"):
        parse_calendar(line + "\n", "cal.csv")


def test_a_missing_file_is_a_configuration_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_calendar(tmp_path / "nope.csv", SH)


def test_a_calendar_built_in_code_works_alike():
    cal = WorkingCalendar.of([SpecialDay(date(2026, 3, 7), "workday")], SH)
    assert cal.is_working_day(date(2026, 3, 7))
