"""Responsibility roll-up (医疗机构-科室-医生): an institution's departments and doctors ranked.

Given alerts (from the alerts topic or a store of them), the institution's departments are
ranked by alert count, then suspicious amount, then id; under each department its doctors the
same way; and the institution's doctors also as one list across departments. Every row carries
its evidence alert ids in event-time order, so a supervisor can go from the ranking to the
cases. Alerts are counted once by id; alerts a reviewer found false positive can be left out
with `exclude`. An alert without a department or doctor is listed under `None` ("unknown").
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from claimstream.model.outputs import Alert
from claimstream.sanctions.codec import to_ts
from claimstream.sanctions.settings import LadderSettings
from claimstream.sanctions.subjects import amount_of

AMOUNT_FIELDS = LadderSettings().amount_fields


@dataclass(frozen=True, slots=True)
class Ranked:
    id: str | None
    alerts: int
    amount: float
    alert_ids: tuple[str, ...]
    doctors: tuple[Ranked, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "alerts": self.alerts,
            "amount": round(self.amount, 2),
            "alert_ids": list(self.alert_ids),
        }
        if self.doctors:
            out["doctors"] = [d.to_dict() for d in self.doctors]
        return out


@dataclass(frozen=True, slots=True)
class Rollup:
    institution_id: str
    alerts: int
    amount: float
    departments: tuple[Ranked, ...]
    doctors: tuple[Ranked, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "institution_id": self.institution_id,
            "alerts": self.alerts,
            "amount": round(self.amount, 2),
            "departments": [d.to_dict() for d in self.departments],
            "doctors": [d.to_dict() for d in self.doctors],
        }


@dataclass(slots=True)
class _Tally:
    alerts: list[tuple[float, str]] = field(default_factory=list)
    amount: float = 0.0

    def add(self, ts: float, alert_id: str, amount: float) -> None:
        self.alerts.append((ts, alert_id))
        self.amount += amount


def rollup(
    alerts: Iterable[Alert],
    institution_id: str,
    *,
    exclude: Collection[str] = (),
    amount_fields: tuple[str, ...] = AMOUNT_FIELDS,
) -> Rollup:
    seen: set[str] = set()
    total = _Tally()
    departments: dict[str | None, _Tally] = {}
    doctors: dict[str | None, _Tally] = {}
    by_department: dict[str | None, dict[str | None, _Tally]] = {}
    for alert in alerts:
        if alert.institution_id != institution_id or alert.alert_id in seen:
            continue
        seen.add(alert.alert_id)
        if alert.alert_id in exclude:
            continue
        ts, amount = to_ts(alert.occurred_at), amount_of(alert, amount_fields)
        dept, doctor = alert.department_id, alert.doctor_id
        for tally in (
            total,
            departments.setdefault(dept, _Tally()),
            doctors.setdefault(doctor, _Tally()),
            by_department.setdefault(dept, {}).setdefault(doctor, _Tally()),
        ):
            tally.add(ts, alert.alert_id, amount)
    ranked_departments = _rank(
        {dept: (tally, _rank(by_department[dept])) for dept, tally in departments.items()}
    )
    return Rollup(
        institution_id=institution_id,
        alerts=len(total.alerts),
        amount=total.amount,
        departments=ranked_departments,
        doctors=_rank(doctors),
    )


def _rank(
    tallies: dict[str | None, _Tally] | dict[str | None, tuple[_Tally, tuple[Ranked, ...]]],
) -> tuple[Ranked, ...]:
    rows = []
    for key, value in tallies.items():
        tally, nested = value if isinstance(value, tuple) else (value, ())
        ids = tuple(alert_id for _, alert_id in sorted(tally.alerts))
        rows.append(Ranked(key, len(ids), tally.amount, ids, nested))
    rows.sort(key=lambda r: (-r.alerts, -r.amount, r.id is None, r.id or ""))
    return tuple(rows)
