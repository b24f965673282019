"""Builders for the sanctions tests: alerts on a day timeline, verdicts, and decision summaries.

Days count from `D0` (2026-03-02 08:00 Asia/Shanghai, a Monday), so a test reads as a calendar.
A summary turns a decision into a short tuple, so a table can state what each step must give.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from claimstream.model.outputs import Alert, Command, Scope, Severity, Subject, stable_id
from claimstream.sanctions import (
    Decision,
    GradeChange,
    ManualUnfreeze,
    PointsChange,
    Verdict,
    WarningIssued,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
D0 = datetime(2026, 3, 2, 8, 0, tzinfo=SHANGHAI)


def at(day: float) -> str:
    return (D0 + timedelta(days=day)).isoformat()


def ts(day: float) -> float:
    return (D0 + timedelta(days=day)).timestamp()


def alert(
    name: str,
    day: float,
    *,
    severity: Severity = "high",
    rule: str = "repeat_dispensing",
    patient: str | None = "P1",
    institution: str | None = "H1",
    doctor: str | None = "D1",
    department: str | None = "K1",
    amount: float | None = None,
) -> Alert:
    subject = Subject("patient", patient) if patient else Subject("institution", institution or "")
    return Alert(
        alert_id=stable_id("alr", name),
        rule=rule,
        rule_version=1,
        severity=severity,
        subject=subject,
        patient_id=patient,
        institution_id=institution,
        doctor_id=doctor,
        department_id=department,
        event_ids=(f"e-{name}",),
        occurred_at=at(day),
        detected_at=at(day),
        message=f"test alert {name}",
        details={} if amount is None else {"suspicious_amount": amount},
    )


def verdict(target: Alert, kind: str, day: float, by: str = "li.reviewer") -> Verdict:
    return Verdict(target.alert_id, kind, by, at(day))  # type: ignore[arg-type]


def unfreeze(kind: str, id_: str, day: float, ground: str = "appeal") -> ManualUnfreeze:
    return ManualUnfreeze(
        Scope(kind, id_),  # type: ignore[arg-type]
        reason="appeal upheld",
        by="wang.supervisor",
        at=at(day),
        ground=ground,  # type: ignore[arg-type]
    )


def summary(decision: Decision) -> tuple[Any, ...]:
    if isinstance(decision, Command):
        return (decision.action, decision.rule)
    if isinstance(decision, WarningIssued):
        return ("WARN",)
    if isinstance(decision, GradeChange):
        return ("GRADE", decision.old, decision.new)
    if isinstance(decision, PointsChange):
        return ("POINTS", decision.delta, decision.total)
    raise AssertionError(decision)


def summaries(decisions: list[Decision]) -> list[tuple[Any, ...]]:
    return [summary(d) for d in decisions]
