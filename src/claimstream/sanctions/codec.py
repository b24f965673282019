"""Alerts and commands back from their published JSON (`Alert.to_dict`, `Command.to_dict`).

The sanctions engine is fed from topics (alerts, commands, reviews) and the ledger is rebuilt
from the commands topic, so both need the records back as typed objects. A record that does
not have the published shape raises `ValueError` naming the field; callers dead-letter it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from claimstream.model.events import KEY_KINDS, KeyKind
from claimstream.model.outputs import SEVERITIES, Action, Alert, Command, Line, Scope, Subject
from claimstream.sanctions.actions import (
    HANDLINGS,
    NATURES,
    OUTCOMES,
    VERDICTS,
    CaseDecision,
    CheckFeedback,
    Handling,
    ManualUnfreeze,
    Remediation,
    Verdict,
)

PersonAction = Verdict | ManualUnfreeze | Remediation | CheckFeedback

ACTIONS: tuple[Action, ...] = ("FREEZE", "UNFREEZE", "SUSPEND")


def to_ts(moment: str) -> float:
    """POSIX seconds of an RFC 3339 time; a naive one is refused (event time needs an offset)."""
    parsed = datetime.fromisoformat(moment)
    if parsed.tzinfo is None:
        raise ValueError(f"time without a UTC offset: {moment!r}")
    return parsed.timestamp()


def alert_from_dict(data: Mapping[str, Any]) -> Alert:
    """An alert back from its record; `amount`, `legal_basis`, `behaviour` and `lines` may be
    absent (alerts published before they existed have none)."""
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
        amount=_amount(data.get("amount"), "amount"),
        legal_basis=_optional(data, "legal_basis") or "",
        behaviour=_optional(data, "behaviour") or "",
        lines=_lines(data.get("lines")),
    )


def _amount(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number or null")
    return float(value)


def _lines(value: Any) -> tuple[Line, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError("lines must be a list")
    lines: list[Line] = []
    for n, line in enumerate(value):
        if not isinstance(line, Mapping):
            raise ValueError(f"lines[{n}] must be an object")
        index = line.get("index")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"lines[{n}].index must be a whole number >= 0")
        code = line.get("code")
        if not isinstance(code, str) or not code:
            raise ValueError(f"lines[{n}].code must be a non-empty string")
        lines.append((index, code, _amount(line.get("amount"), f"lines[{n}].amount")))
    return tuple(lines)


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


def action_to_dict(action: PersonAction) -> dict[str, Any]:
    """The `action.v1` record of a person's action (topics/schemas/action.v1.json)."""
    out: dict[str, Any] = {"schema": "action.v1", "action_id": action.action_id}
    if isinstance(action, Verdict):
        out |= {"type": "review", "alert_id": action.alert_id, "verdict": action.verdict}
        out |= {"note": action.note}
    elif isinstance(action, ManualUnfreeze):
        scope: dict[str, str] = {"kind": action.scope.kind, "id": action.scope.id}
        if action.scope.drug_code:
            scope["drug_code"] = action.scope.drug_code
        out |= {"type": "unfreeze", "scope": scope, "ground": action.ground}
        out |= {"reason": action.reason}
    elif isinstance(action, CheckFeedback):
        out |= {"type": "check_feedback", "check_id": action.check_id}
        out |= {"violations": [_handling_to_dict(h) for h in action.handlings]}
    else:
        out |= {"type": "remediation", "alert_id": action.alert_id}
        out |= {"institution_id": action.institution_id, "note": action.note}
    out |= {"by": action.by, "at": action.at}
    return out


def _handling_to_dict(handling: Handling) -> dict[str, Any]:
    out: dict[str, Any] = {"rule": handling.rule}
    if handling.alert_id is not None:
        out["alert_id"] = handling.alert_id
    return out | {"handling": handling.handling, "reason": handling.reason}


def action_key(action: PersonAction) -> str:
    """The actions topic key: the alert a review or remediation is about, an unfreeze's scope,
    the check a check's feedback answers."""
    if isinstance(action, ManualUnfreeze):
        return action.scope.key()
    if isinstance(action, CheckFeedback):
        return action.check_id
    return action.alert_id


def action_from_dict(data: Mapping[str, Any]) -> PersonAction:
    """A person's action back from its `action.v1` record; `ValueError` names what is wrong.

    The `action_id` is recomputed from the fields, never trusted from the record.
    """
    kind = data.get("type")
    by = _text(data, "by")
    at = _text(data, "at")
    to_ts(at)
    if kind == "review":
        verdict = data.get("verdict")
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
        return Verdict(_text(data, "alert_id"), verdict, by, at, str(data.get("note") or ""))
    if kind == "unfreeze":
        scope = _mapping(data, "scope")
        ground = data.get("ground", "reviewer")
        if ground not in ("appeal", "reviewer"):
            raise ValueError(f"ground must be appeal or reviewer, got {ground!r}")
        return ManualUnfreeze(
            Scope(_kind(scope), _text(scope, "id"), _optional(scope, "drug_code")),
            _text(data, "reason"),
            by,
            at,
            ground,
        )
    if kind == "remediation":
        return Remediation(
            _text(data, "alert_id"),
            _text(data, "institution_id"),
            by,
            at,
            str(data.get("note") or ""),
        )
    if kind == "check_feedback":
        violations = data.get("violations")
        if not isinstance(violations, list) or not violations:
            raise ValueError("violations must be a non-empty list")
        handlings = tuple(_handling(v) for v in violations)
        return CheckFeedback(_text(data, "check_id"), handlings, by, at)
    raise ValueError(f"type must be review, unfreeze, remediation or check_feedback, got {kind!r}")


def case_decision_from_dict(data: Mapping[str, Any]) -> CaseDecision:
    """What the sanctions read of a `case_decide` action record (`claimstream.cases.actions`
    reads the whole of it); `ValueError` names what is wrong."""
    if data.get("type") != "case_decide":
        raise ValueError(f"type must be case_decide, got {data.get('type')!r}")
    by, at = _text(data, "by"), _text(data, "at")
    to_ts(at)
    outcome = data.get("outcome")
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    nature = data.get("nature")
    if nature is not None and nature not in NATURES:
        raise ValueError(f"nature must be one of {', '.join(NATURES)} or null, got {nature!r}")
    named = data.get("confirmed_alerts") or []
    if not isinstance(named, list) or not all(isinstance(a, str) and a for a in named):
        raise ValueError("confirmed_alerts must be a list of alert ids")
    if named and outcome != "partly_confirmed":
        raise ValueError("only a partly_confirmed decision names its confirmed alerts")
    return CaseDecision(_text(data, "case_id"), outcome, nature, by, at, tuple(named))


def _handling(data: Any) -> Handling:
    if not isinstance(data, Mapping):
        raise ValueError("each violation must be an object")
    handling = data.get("handling")
    if handling not in HANDLINGS:
        raise ValueError(f"handling must be one of {', '.join(HANDLINGS)}, got {handling!r}")
    return Handling(
        _text(data, "rule"),
        handling,
        str(data.get("reason") or ""),
        _optional(data, "alert_id"),
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
