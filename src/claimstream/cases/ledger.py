"""The recovery ledger: money flagged -> confirmed -> deducted / recovered, summed per month.

Each case's `Money` lines (`claimstream.cases.case`) carry an amount, a kind and when; the
ledger sums them per (local month of the line, subject, institution), so a report can say how
much of the fund was flagged, confirmed and got back, by month. Pure: cases in, rows out; the
month is the line's local month in the time zone given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from claimstream.cases.case import MONEY, Case, MoneyLine


@dataclass(slots=True)
class Totals:
    flagged: float = 0.0
    confirmed: float = 0.0
    deducted: float = 0.0
    recovered: float = 0.0

    def add(self, kind: MoneyLine, amount: float) -> None:
        setattr(self, kind, round(getattr(self, kind) + amount, 2))

    def as_dict(self) -> dict[str, float]:
        return {kind: getattr(self, kind) for kind in MONEY}

    @property
    def outstanding(self) -> float:
        """Confirmed and not yet deducted or recovered."""
        return round(self.confirmed - self.deducted - self.recovered, 2)


@dataclass(frozen=True, slots=True, order=True)
class LedgerKey:
    month: str
    subject: str
    institution_id: str


@dataclass(slots=True)
class Ledger:
    rows: dict[LedgerKey, Totals] = field(default_factory=dict)

    def month(self, month: str) -> Totals:
        """All subjects' totals of one month (`YYYY-MM`)."""
        out = Totals()
        for key, totals in self.rows.items():
            if key.month == month:
                for kind in MONEY:
                    out.add(kind, getattr(totals, kind))
        return out

    def by_institution(self, institution_id: str) -> Totals:
        out = Totals()
        for key, totals in self.rows.items():
            if key.institution_id == institution_id:
                for kind in MONEY:
                    out.add(kind, getattr(totals, kind))
        return out


def month_of(moment: str, tz: tzinfo) -> str:
    parsed = datetime.fromisoformat(moment)
    if parsed.tzinfo is None:
        raise ValueError(f"time without a UTC offset: {moment!r}")
    return parsed.astimezone(tz).strftime("%Y-%m")


def ledger(cases: Iterable[Case], tz: tzinfo) -> Ledger:
    """Every case's money lines summed per (month, subject `kind:id`, institution)."""
    out = Ledger()
    for case in cases:
        subject = f"{case.subject.kind}:{case.subject.id}"
        institution = case.institution_id or ""
        for line in case.money:
            key = LedgerKey(month_of(line.at, tz), subject, institution)
            out.rows.setdefault(key, Totals()).add(line.kind, line.amount)
    return out
