"""Working days: the holiday calendar a case's deadlines are counted in.

Deadlines of the casework procedure are stated in working days (工作日): weekdays, less the
public holidays, plus the weekend days that are worked instead (调休). The calendar is a CSV
file, one line per exception to "Monday to Friday":

    date,kind,name
    2026-02-16,holiday,春节 Spring Festival
    2026-02-14,workday,春节调休 Spring Festival (adjusted)

(`#` lines are comments). A default for 2026 ships as `claimstream/cases/data/holidays-2026.csv`
(illustrative: to be checked against the State Council's notice); `load_calendar(path)` reads
another one (`CLAIMSTREAM_CASES_CALENDAR_FILE`). Years the file does not mention count
weekdays only: `WorkingCalendar.covers` says which years it knows, so a start-up line can warn.

Counting: `add_working_days(start, n)` is the n-th working day *after* the local day of
`start` (the day a step starts does not count, as with the legal "within n working days"), and
`deadline(start, n)` is the end of that day (the next local midnight), as a POSIX time. Local
days are in the calendar's time zone. Pure: no clock, no environment; a file is read only by
`load_calendar`.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from importlib import resources
from pathlib import Path
from typing import Literal

from claimstream.model.config import ConfigError

DayKind = Literal["holiday", "workday"]
DAY_KINDS: tuple[DayKind, ...] = ("holiday", "workday")
DEFAULT_CALENDAR = "holidays-2026.csv"
#: no procedure counts more working days than this (a bound on the loops, not a rule)
MAX_WORKING_DAYS = 3660


@dataclass(frozen=True, slots=True)
class SpecialDay:
    """One line of the calendar file: a weekday off, or a weekend day worked."""

    day: date
    kind: DayKind
    name: str = ""


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    """Which local days are working days, in time zone `tz`."""

    tz: tzinfo
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()

    @classmethod
    def of(cls, days: Iterable[SpecialDay], tz: tzinfo) -> WorkingCalendar:
        days = list(days)
        return cls(
            tz,
            frozenset(d.day for d in days if d.kind == "holiday"),
            frozenset(d.day for d in days if d.kind == "workday"),
        )

    @property
    def covers(self) -> frozenset[int]:
        """The years the calendar names any day of."""
        return frozenset(d.year for d in self.holidays | self.workdays)

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def local_day(self, moment: datetime | float) -> date:
        """The local date (in `tz`) of an aware datetime or a POSIX time."""
        if isinstance(moment, datetime):
            if moment.tzinfo is None:
                raise ValueError("a time without a UTC offset cannot be placed on a local day")
            return moment.astimezone(self.tz).date()
        return datetime.fromtimestamp(moment, self.tz).date()

    def add_working_days(self, start: datetime | float, n: int) -> date:
        """The n-th working day after the local day of `start` (n >= 1; n == 0: that day)."""
        if n < 0 or n > MAX_WORKING_DAYS:
            raise ValueError(f"working days must be between 0 and {MAX_WORKING_DAYS}, got {n}")
        day = self.local_day(start)
        left = n
        while left > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                left -= 1
        return day

    def end_of(self, day: date) -> float:
        """The POSIX time of the local midnight that ends `day`."""
        following = day + timedelta(days=1)
        midnight = datetime(following.year, following.month, following.day, tzinfo=self.tz)
        return midnight.timestamp()

    def deadline(self, start: datetime | float, n: int) -> float:
        """The end (next local midnight) of the n-th working day after `start`'s local day."""
        return self.end_of(self.add_working_days(start, n))

    def working_days_between(self, start: datetime | float, end: datetime | float) -> int:
        """Working days after `start`'s local day up to and including `end`'s (0 if earlier)."""
        first, last = self.local_day(start), self.local_day(end)
        count, day = 0, first
        while day < last:
            day += timedelta(days=1)
            if self.is_working_day(day):
                count += 1
        return count


def parse_calendar(text: str, where: str) -> list[SpecialDay]:
    """The lines of a calendar file; `ConfigError` names the file and line."""
    rows = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    reader = csv.reader(io.StringIO("\n".join(rows)))
    days: list[SpecialDay] = []
    seen: dict[date, DayKind] = {}
    header = True
    for number, row in enumerate(reader, start=1):
        if not row or not any(cell.strip() for cell in row):
            continue
        cells = [cell.strip() for cell in row]
        if header:
            header = False
            if cells[:2] == ["date", "kind"]:
                continue
        if len(cells) < 2:
            raise ConfigError(f"{where}: row {number}: needs date,kind[,name]")
        try:
            day = date.fromisoformat(cells[0])
        except ValueError:
            raise ConfigError(
                f"{where}: row {number}: {cells[0]!r} is not a YYYY-MM-DD date"
            ) from None
        kind = cells[1]
        if kind not in DAY_KINDS:
            raise ConfigError(
                f"{where}: row {number}: kind must be holiday or workday, got {kind!r}"
            )
        if seen.get(day, kind) != kind:
            raise ConfigError(f"{where}: row {number}: {day} is listed as holiday and workday")
        seen[day] = kind
        days.append(SpecialDay(day, kind, cells[2] if len(cells) > 2 else ""))
    return days


def load_calendar(path: str | Path | None, tz: tzinfo = UTC) -> WorkingCalendar:
    """The calendar in the file at `path`, or the shipped default when `path` is None."""
    if path is None:
        text = resources.files("claimstream.cases").joinpath("data", DEFAULT_CALENDAR)
        return WorkingCalendar.of(parse_calendar(text.read_text("utf-8"), DEFAULT_CALENDAR), tz)
    try:
        data = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the holiday calendar {path}: {exc}") from None
    return WorkingCalendar.of(parse_calendar(data, str(path)), tz)
