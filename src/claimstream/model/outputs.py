"""What the core emits: alerts, settlement commands, dead-letter records.

Ids are deterministic (a hash of what the record is about, never of when it was made), so a
redelivered event or a replay of the same history yields the same ids and downstream writes
can be idempotent.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

from claimstream.model.events import KeyKind
from claimstream.model.ids import key_part
from claimstream.model.rejection import Rejection

Severity = Literal["info", "warning", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "high", "critical")
Action = Literal["FREEZE", "UNFREEZE", "SUSPEND"]
#: One line of a claim an alert is about: (index in the claim's `items`, item code, amount in
#: yuan or None when the event carries no price).
Line = tuple[int, str, float | None]


def stable_id(prefix: str, *parts: str) -> str:
    """A short deterministic id: `prefix-` + 24 hex chars of SHA-256 over the parts."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:24]
    return f"{prefix}-{digest}"


@dataclass(frozen=True, slots=True)
class Subject:
    kind: KeyKind
    id: str


@dataclass(frozen=True, slots=True)
class Alert:
    """One suspected case (`topics/schemas/alert.v1.json`).

    Money and law: `amount` is the violation amount in yuan by the rule's formula
    (`docs/rules.md`; None when the events carry no price), `legal_basis` the regulation the
    rule enforces, `behaviour` the 违规行为 class, `lines` the claim lines concerned. Every
    alert the engine makes has them; an alert published before they existed has none, and
    `to_dict` then writes none, so such a record read back (`sanctions.codec`) round-trips
    unchanged.
    """

    alert_id: str
    rule: str
    rule_version: int
    severity: Severity
    subject: Subject
    patient_id: str | None
    institution_id: str | None
    doctor_id: str | None
    department_id: str | None
    event_ids: tuple[str, ...]
    occurred_at: str
    detected_at: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    amount: float | None = None
    legal_basis: str = ""
    behaviour: str = ""
    lines: tuple[Line, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": "alert.v1",
            "alert_id": self.alert_id,
            "rule": self.rule,
            "rule_version": self.rule_version,
            "severity": self.severity,
            "subject": {"kind": self.subject.kind, "id": self.subject.id},
            "patient_id": self.patient_id,
            "institution_id": self.institution_id,
            "doctor_id": self.doctor_id,
            "department_id": self.department_id,
            "event_ids": list(self.event_ids),
            "occurred_at": self.occurred_at,
            "detected_at": self.detected_at,
            "message": self.message,
            "details": self.details,
        }
        if self.legal_basis or self.behaviour or self.amount is not None or self.lines:
            out["amount"] = self.amount
            out["legal_basis"] = self.legal_basis
            out["behaviour"] = self.behaviour
            out["lines"] = [
                {"index": index, "code": code, "amount": amount}
                for index, code, amount in self.lines
            ]
        return out


@dataclass(frozen=True, slots=True)
class Scope:
    """What a command applies to: a whole institution, doctor or patient, or one drug of it."""

    kind: KeyKind
    id: str
    drug_code: str | None = None

    def key(self) -> str:
        """`kind:id` or `kind:id:drug_code`: the message key and the registry's key suffix.

        Each part goes through `ids.key_part` (`%` and `:` escaped), so two scopes never share
        a key; for ids the contract accepts that changes nothing.
        """
        base = f"{self.kind}:{key_part(self.id)}"
        return f"{base}:{key_part(self.drug_code)}" if self.drug_code else base


@dataclass(frozen=True, slots=True)
class Command:
    command_id: str
    action: Action
    scope: Scope
    effective_from: str
    expires_at: str | None
    reason: str
    rule: str
    alert_ids: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        scope: dict[str, Any] = {"kind": self.scope.kind, "id": self.scope.id}
        if self.scope.drug_code is not None:
            scope["drug_code"] = self.scope.drug_code
        return {
            "schema": "command.v1",
            "command_id": self.command_id,
            "action": self.action,
            "scope": scope,
            "effective_from": self.effective_from,
            "expires_at": self.expires_at,
            "reason": self.reason,
            "rule": self.rule,
            "alert_ids": list(self.alert_ids),
        }


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A refused input with why and where it came from, carrying the raw bytes unchanged."""

    reason: str
    detail: str
    origin: dict[str, Any]  # {"topic", "partition", "offset"} or {"file", "line"}
    raw: bytes

    @classmethod
    def of(cls, rejection: Rejection, raw: bytes, origin: dict[str, Any]) -> DeadLetter:
        return cls(rejection.reason, rejection.detail, origin, raw)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": "dead-letter.v1",
            "reason": self.reason,
            "detail": self.detail,
            "origin": self.origin,
            "raw_b64": base64.b64encode(self.raw).decode("ascii"),
        }
        try:
            out["raw"] = self.raw.decode("utf-8")
        except UnicodeDecodeError:
            out["raw"] = None
        return out
