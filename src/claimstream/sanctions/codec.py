"""Alerts and commands back from their published JSON (`Alert.to_dict`, `Command.to_dict`).

The sanctions engine is fed from topics (alerts, commands, reviews) and the ledger is rebuilt
from the commands topic, so both need the records back as typed objects. A record that does
not have the published shape raises `ValueError` naming the field; callers dead-letter it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from claimstream.core.events import KEY_KINDS, KeyKind
from claimstream.core.outputs import SEVERITIES, Action, Alert, Command, Scope, Subject

ACTIONS: tuple[Action, ...] = ("FREEZE", "UNFREEZE", "SUSPEND")


def to_ts(moment: str) -> float:
    """POSIX seconds of an RFC 3339 time; a naive one is refused (event time needs an offset)."""
    parsed = datetime.fromisoformat(moment)
    if parsed.tzinfo is None:
        raise ValueError(f"time without a UTC offset: {moment!r}")
    return parsed.timestamp()


def alert_from_dict(data: Mapping[str, Any]) -> Alert:
    subject = _mapping(data, "subject")
    severity = _text(data, "severity")
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}")
    occurred_at = _text(data, "occurred_at")
    to_ts(occurred_at)
    details = data.get("details") or {}
    if not isinstance(details, Mapping):
        raise ValueError("details must be an object")
    return Alert(
        alert_id=_text(data, "alert_id"),
        rule=_text(data, "rule"),
        rule_version=int(data.get("rule_version") or 1),
        severity=severity,
        subject=Subject(_kind(subject), _text(subject, "id")),
        patient_id=_optional(data, "patient_id"),
        institution_id=_optional(data, "institution_id"),
        doctor_id=_optional(data, "doctor_id"),
        department_id=_optional(data, "department_id"),
        event_ids=tuple(str(e) for e in data.get("event_ids") or ()),
        occurred_at=occurred_at,
        detected_at=str(data.get("detected_at") or occurred_at),
        message=str(data.get("message") or ""),
        details=dict(details),
    )


def command_from_dict(data: Mapping[str, Any]) -> Command:
    action = _text(data, "action")
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    scope = _mapping(data, "scope")
    effective_from = _text(data, "effective_from")
    to_ts(effective_from)
    expires_at = _optional(data, "expires_at")
    if expires_at is not None:
        to_ts(expires_at)
    return Command(
        command_id=_text(data, "command_id"),
        action=action,
        scope=Scope(_kind(scope), _text(scope, "id"), _optional(scope, "drug_code")),
        effective_from=effective_from,
        expires_at=expires_at,
        reason=str(data.get("reason") or ""),
        rule=str(data.get("rule") or ""),
        alert_ids=tuple(str(a) for a in data.get("alert_ids") or ()),
    )


def _mapping(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name)
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be an object")
    return value


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value


def _optional(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string or null")
    return value


def _kind(scope: Mapping[str, Any]) -> KeyKind:
    kind = scope.get("kind")
    if kind not in KEY_KINDS:
        raise ValueError(f"kind must be one of {', '.join(KEY_KINDS)}, got {kind!r}")
    return cast(KeyKind, kind)
