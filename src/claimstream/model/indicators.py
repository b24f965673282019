"""Monthly indicators of an institution (and its departments): the record the peer comparison,
the benchmark an institution is shown and the reports share.

One `InstitutionMonth` is published per institution and local calendar month when that month
closes in event time (its end plus the allowed lateness), so it is final; its id derives from
institution and month, so a redelivered or recomputed one replaces, never doubles. Formulas are
documented in docs/rules.md ("Monthly indicators"); this module only carries the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The indicators compared with the peer group, in display order, with their unit. Every one is
#: "higher is worse" (a cost, a share of costly items, a coding rate), which the peer rule and the
#: benchmark's ranking rely on.
INDICATORS: dict[str, str] = {
    "cost_per_visit": "yuan",  # outpatient and online claims: total amount / visits
    "cost_per_stay": "yuan",  # inpatient claims: total amount / stays
    "drug_share": "ratio",  # drug items' amount / all items' amount
    "exam_lab_share": "ratio",  # exam + lab items' amount / all items' amount
    "materials_share": "ratio",  # material items' amount / all items' amount
    "drg_cost_index": "ratio",  # total amount / DRG standard cost, over stays with a DRG
    "complication_rate": "ratio",  # stays whose DRG code ends in 1 or 3 / stays with a DRG
}

#: The volume each indicator's minimum-volume test counts (visits or stays).
VOLUME_OF: dict[str, str] = {
    "cost_per_visit": "visits",
    "cost_per_stay": "stays",
    "drug_share": "claims",
    "exam_lab_share": "claims",
    "materials_share": "claims",
    "drg_cost_index": "drg_stays",
    "complication_rate": "drg_stays",
}


@dataclass(frozen=True, slots=True)
class Figures:
    """One unit's month: volumes, money, and the indicators (absent when undefined: no visit,
    no stay, no item, no DRG)."""

    visits: int = 0  # outpatient + online claims
    stays: int = 0  # inpatient claims
    claims: int = 0  # visits + stays
    drg_stays: int = 0  # inpatient claims with a DRG code and standard cost
    total_amount: float = 0.0
    fund_amount: float = 0.0
    indicators: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "visits": self.visits,
            "stays": self.stays,
            "claims": self.claims,
            "drg_stays": self.drg_stays,
            "total_amount": self.total_amount,
            "fund_amount": self.fund_amount,
            "indicators": dict(self.indicators),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Figures:
        return cls(
            visits=int(data.get("visits", 0)),
            stays=int(data.get("stays", 0)),
            claims=int(data.get("claims", 0)),
            drg_stays=int(data.get("drg_stays", 0)),
            total_amount=float(data.get("total_amount", 0.0)),
            fund_amount=float(data.get("fund_amount", 0.0)),
            indicators={k: float(v) for k, v in data.get("indicators", {}).items()},
        )

    def volume(self, indicator: str) -> int:
        """The count the indicator's minimum-volume test applies to."""
        value = getattr(self, VOLUME_OF[indicator])
        assert isinstance(value, int)
        return value


@dataclass(frozen=True, slots=True)
class InstitutionMonth:
    """An institution's closed month: its figures, its departments' (where claims carried a
    `department_id`), and the peer group it is compared within ("level:region")."""

    institution_id: str
    peer_group: str
    month: str  # YYYY-MM, local calendar month of event time
    figures: Figures
    departments: dict[str, Figures] = field(default_factory=dict)

    @property
    def record_id(self) -> str:
        return f"{self.institution_id}/{self.month}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "institution_id": self.institution_id,
            "peer_group": self.peer_group,
            "month": self.month,
            "figures": self.figures.to_dict(),
            "departments": {d: f.to_dict() for d, f in sorted(self.departments.items())},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstitutionMonth:
        return cls(
            institution_id=str(data["institution_id"]),
            peer_group=str(data["peer_group"]),
            month=str(data["month"]),
            figures=Figures.from_dict(data["figures"]),
            departments={
                str(d): Figures.from_dict(f) for d, f in data.get("departments", {}).items()
            },
        )


@dataclass(frozen=True, slots=True)
class Distribution:
    """A peer group's values of one indicator in one month."""

    count: int
    mean: float
    median: float
    p80: float  # the 80th percentile; `percentile` gives any other

    @classmethod
    def of(cls, values: list[float]) -> Distribution:
        ordered = sorted(values)
        if not ordered:
            raise ValueError("a distribution needs at least one value")
        return cls(
            count=len(ordered),
            mean=sum(ordered) / len(ordered),
            median=percentile(ordered, 50),
            p80=percentile(ordered, 80),
        )


def percentile(ordered: list[float], q: float) -> float:
    """The q-th percentile (0..100) of sorted values, by linear interpolation between closest
    ranks (numpy's default, Excel's PERCENTILE.INC), so a reader can check it with a spreadsheet."""
    if not ordered:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    position = (len(ordered) - 1) * q / 100
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)
