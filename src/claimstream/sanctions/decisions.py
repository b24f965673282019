"""What the sanctions engine decides besides settlement commands.

Settlement commands are `claimstream.model.outputs.Command` (FREEZE, UNFREEZE, SUSPEND), the
same records the rules emit, so the registry and the commands topic need nothing new. The
other decisions are notices for people and dashboards: a warning to a subject, a change of an
institution's credit grade, a change of a doctor's points. Every id is deterministic (a hash
of what the decision is about, never of when it was computed), so a replay or redelivery
produces the same ids and downstream writes can deduplicate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from claimstream.model.outputs import Command, Subject


@dataclass(frozen=True, slots=True)
class WarningIssued:
    """The first rung: the subject is told, nothing is frozen."""

    warning_id: str
    subject: Subject
    alert_ids: tuple[str, ...]
    occurred_at: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "warning.v1",
            "warning_id": self.warning_id,
            "subject": {"kind": self.subject.kind, "id": self.subject.id},
            "alert_ids": list(self.alert_ids),
            "occurred_at": self.occurred_at,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class GradeChange:
    """An institution's credit grade moved (published only when the letter changes)."""

    change_id: str
    institution_id: str
    old: str
    new: str
    score: float
    occurred_at: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "grade-change.v1",
            "change_id": self.change_id,
            "institution_id": self.institution_id,
            "old": self.old,
            "new": self.new,
            "score": self.score,
            "occurred_at": self.occurred_at,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class PointsChange:
    """A doctor's points for one calendar year moved by `delta` to `total`."""

    change_id: str
    doctor_id: str
    year: int
    delta: int
    total: int
    alert_id: str
    occurred_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "doctor-points.v1",
            "change_id": self.change_id,
            "doctor_id": self.doctor_id,
            "year": self.year,
            "delta": self.delta,
            "total": self.total,
            "alert_id": self.alert_id,
            "occurred_at": self.occurred_at,
        }


Decision = Command | WarningIssued | GradeChange | PointsChange
