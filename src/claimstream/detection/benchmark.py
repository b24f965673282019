"""The benchmark an institution is shown (issue #15, 亮家底): its month beside its peers'.

From a peer group's `InstitutionMonth` records (`claimstream.model.indicators`), `benchmark`
computes, for one institution and one month:

* each indicator of `INDICATORS`: the institution's value and volume, the peer group's count,
  mean, median and 80th percentile that month (`Distribution`, the institution included, as
  PEPPER's state percentiles include the hospital), its **rank** (1 = the highest value, i.e.
  the worst: every indicator is "higher is worse"; ties share the better rank, `1 2 2 4`), its
  **position** (the percentile rank, PERCENTRANK.INC: the share of the other values that are
  lower, 0..100, so `percentile(values, position) == value`; none with fewer than 2 values),
  how far it is above the mean (`vs_mean` = (value - mean) / mean) and whether it is above
  the 80th percentile (PEPPER's review threshold), and the group's values of that month,
  sorted and anonymous (the distribution chart marks the institution within them);
* the trend of the last `TREND_MONTHS` calendar months ending with the month: the
  institution's value and the group's distribution each month (None where not held);
* the departments' figures for the month.

A record whose indicator is absent (undefined that month: no stay, no DRG) has no value and
takes no part in that indicator's distribution. Records are taken once per `record_id` (the
last one given wins: a recomputed month replaces, never doubles). The records of the
institution are those in the group's list: an institution that changed group shows its
months in this group only.

Pure: no I/O, no clock. `MonthsSource` is what the worker's route and the CLI ask for the
records (the peer-group agent's table, or `MemoryMonths` over a list: tests, `--from FILE`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from claimstream.model.indicators import (
    INDICATORS,
    Distribution,
    Figures,
    InstitutionMonth,
)

#: months of history a benchmark shows, the month itself included
TREND_MONTHS = 12
#: the percentile the peer rule and PEPPER treat as the review threshold
REVIEW_PERCENTILE = 80
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


class BenchmarkError(LookupError):
    """The benchmark cannot be given: the sentence says why."""


class UnknownInstitution(BenchmarkError):
    """No record of the institution is held."""


class UnknownMonth(BenchmarkError):
    """The institution has no closed month of that name held."""


class BadMonth(ValueError):
    """A month that is not `YYYY-MM`."""


def parse_month(text: str) -> tuple[int, int]:
    """(year, month) of `YYYY-MM`; `BadMonth` otherwise."""
    match = _MONTH.match(text)
    if match is None:
        raise BadMonth(f"month must be YYYY-MM (e.g. 2026-03), got {text!r}")
    return int(match.group(1)), int(match.group(2))


def months_ending(month: str, count: int = TREND_MONTHS) -> list[str]:
    """The `count` calendar months ending with `month`, oldest first."""
    year, number = parse_month(month)
    index = year * 12 + number - 1
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - count + 1, index + 1)]


class MonthsSource(Protocol):
    """Where the benchmark's records come from (the peer-group agent's table in a worker)."""

    def peer_group(self, institution_id: str) -> str | None:
        """The peer group the institution is compared within (None: no record of it held)."""

    def months(self, peer_group: str) -> list[InstitutionMonth]:
        """Every record held of the group: each member's closed months."""


@dataclass(slots=True)
class MemoryMonths:
    """A `MonthsSource` over records in memory: the tests' and `--from FILE`'s. An
    institution's peer group is the one of its latest month."""

    records: dict[str, InstitutionMonth] = field(default_factory=dict)

    @classmethod
    def of(cls, records: Iterable[InstitutionMonth]) -> MemoryMonths:
        source = cls()
        for record in records:
            source.add(record)
        return source

    def add(self, record: InstitutionMonth) -> None:
        self.records[record.record_id] = record  # a redelivered month replaces

    def peer_group(self, institution_id: str) -> str | None:
        own = [r for r in self.records.values() if r.institution_id == institution_id]
        return max(own, key=lambda r: r.month).peer_group if own else None

    def months(self, peer_group: str) -> list[InstitutionMonth]:
        return [r for r in self.records.values() if r.peer_group == peer_group]


@dataclass(frozen=True, slots=True)
class TrendPoint:
    month: str
    value: float | None
    peers: Distribution | None

    def to_dict(self) -> dict[str, Any]:
        return {"month": self.month, "value": self.value, "peers": _distribution(self.peers)}


@dataclass(frozen=True, slots=True)
class IndicatorBenchmark:
    """One indicator of the month beside the peer group's."""

    indicator: str
    unit: str
    value: float | None
    volume: int
    peers: Distribution | None
    rank: int | None
    position: float | None
    values: tuple[float, ...]
    trend: tuple[TrendPoint, ...]

    @property
    def vs_mean(self) -> float | None:
        """(value - mean) / mean: 0.46 is 46 % above the peer mean."""
        if self.value is None or self.peers is None or self.peers.mean == 0:
            return None
        return (self.value - self.peers.mean) / self.peers.mean

    @property
    def above_p80(self) -> bool | None:
        if self.value is None or self.peers is None:
            return None
        return self.value > self.peers.p80

    def to_dict(self) -> dict[str, Any]:
        return {
            "indicator": self.indicator,
            "unit": self.unit,
            "value": self.value,
            "volume": self.volume,
            "peers": _distribution(self.peers),
            "rank": self.rank,
            "ranked": len(self.values),
            "position": self.position,
            "vs_mean": self.vs_mean,
            "above_p80": self.above_p80,
            "values": list(self.values),
            "trend": [point.to_dict() for point in self.trend],
        }


@dataclass(frozen=True, slots=True)
class Benchmark:
    """An institution's month beside its peer group's."""

    institution_id: str
    peer_group: str
    month: str
    members: int  # institutions of the group with a record this month
    figures: Figures
    indicators: tuple[IndicatorBenchmark, ...]
    departments: dict[str, Figures]

    def indicator(self, name: str) -> IndicatorBenchmark:
        return next(i for i in self.indicators if i.indicator == name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "institution_id": self.institution_id,
            "peer_group": self.peer_group,
            "month": self.month,
            "members": self.members,
            "trend_months": months_ending(self.month),
            "figures": self.figures.to_dict(),
            "indicators": [i.to_dict() for i in self.indicators],
            "departments": [
                {"department_id": d, **f.to_dict()} for d, f in sorted(self.departments.items())
            ],
        }


def benchmark(institution_id: str, month: str, records: Iterable[InstitutionMonth]) -> Benchmark:
    """The benchmark of `institution_id` in `month` from its peer group's `records`;
    `BadMonth`, `UnknownInstitution` or `UnknownMonth` when it cannot be given."""
    parse_month(month)
    held: dict[str, InstitutionMonth] = {}
    for each in records:
        held[each.record_id] = each
    own = {r.month: r for r in held.values() if r.institution_id == institution_id}
    if not own:
        raise UnknownInstitution(f"no month of institution {institution_id} is held")
    record = own.get(month)
    if record is None:
        first, last = min(own), max(own)
        raise UnknownMonth(
            f"institution {institution_id} has no closed month {month} held "
            f"(its months held: {len(own)}, {first} to {last})"
        )
    group = record.peer_group
    by_month: dict[str, list[InstitutionMonth]] = {}
    for r in held.values():
        if r.peer_group == group:
            by_month.setdefault(r.month, []).append(r)
    trend_months = months_ending(month)
    indicators = []
    for name, unit in INDICATORS.items():
        value = record.figures.indicators.get(name)
        ordered = _values(by_month.get(month, []), name)
        trend = tuple(
            TrendPoint(
                m,
                own[m].figures.indicators.get(name) if m in own else None,
                _of(_values(by_month.get(m, []), name)),
            )
            for m in trend_months
        )
        indicators.append(
            IndicatorBenchmark(
                indicator=name,
                unit=unit,
                value=value,
                volume=record.figures.volume(name),
                peers=_of(ordered),
                rank=None if value is None else 1 + sum(v > value for v in ordered),
                position=None if value is None else position(ordered, value),
                values=tuple(ordered),
                trend=trend,
            )
        )
    return Benchmark(
        institution_id=institution_id,
        peer_group=group,
        month=month,
        members=len(by_month[month]),
        figures=record.figures,
        indicators=tuple(indicators),
        departments=dict(record.departments),
    )


def from_source(source: MonthsSource, institution_id: str, month: str | None) -> Benchmark:
    """The benchmark from a `MonthsSource`; `month` None: the institution's latest month."""
    if month is not None:
        parse_month(month)
    group = source.peer_group(institution_id)
    if group is None:
        raise UnknownInstitution(f"no month of institution {institution_id} is held")
    records = source.months(group)
    if month is None:
        own = [r.month for r in records if r.institution_id == institution_id]
        if not own:
            raise UnknownInstitution(f"no month of institution {institution_id} is held")
        month = max(own)
    return benchmark(institution_id, month, records)


def position(ordered: list[float], value: float) -> float | None:
    """The percentile rank of `value` among sorted values (PERCENTRANK.INC, 0..100): how many
    are lower, over how many others there are. None with fewer than 2 values."""
    if len(ordered) < 2:
        return None
    lower = sum(v < value for v in ordered)
    return 100.0 * lower / (len(ordered) - 1)


def _values(records: list[InstitutionMonth], name: str) -> list[float]:
    return sorted(r.figures.indicators[name] for r in records if name in r.figures.indicators)


def _of(ordered: list[float]) -> Distribution | None:
    return Distribution.of(ordered) if ordered else None


def _distribution(peers: Distribution | None) -> dict[str, Any] | None:
    if peers is None:
        return None
    return {"count": peers.count, "mean": peers.mean, "median": peers.median, "p80": peers.p80}
