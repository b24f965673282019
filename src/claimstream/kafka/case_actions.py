"""Case actions from user input: what `claimstream cases ...` and `POST /v1/cases...` share.

Each builder validates untrusted input and returns a `claimstream.cases.actions` action, or
raises `ValueError` saying what is wrong (the CLI exits 2, the API answers 400), so both refuse
the same bad input with the same words before anything is published. Publishing is
`claimstream.kafka.actions` (`publish_action`, `encode_action`), which signs and keys a case
action by its case id like any other person's action.
"""

from __future__ import annotations

from datetime import tzinfo

from claimstream.cases.actions import (
    MONEY_KINDS,
    NATURES,
    OUTCOMES,
    STEPS,
    AdvanceCase,
    AssignCase,
    DecideCase,
    OpenCase,
    RecordRecovery,
    amount_of,
)
from claimstream.kafka.actions import normalize_at, parse_scope
from claimstream.model.ids import id_problem
from claimstream.model.outputs import Subject

__all__ = [
    "advance_from_input",
    "assign_from_input",
    "decide_from_input",
    "open_from_input",
    "recover_from_input",
]


def _required(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    return value.strip()


def _text(value: object, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value.strip()


def _case_id(value: object) -> str:
    case_id = _required(value, "case_id")
    if (problem := id_problem("case_id", case_id)) is not None:
        raise ValueError(problem)
    return case_id


def _number(value: object, name: str, *, zero: bool = False) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{name} must be a number, got {value!r}") from None
    return amount_of(value, name, zero=zero)


def open_from_input(
    subject: object,
    by: object,
    *,
    institution_id: object = None,
    note: object = None,
    at: str | None = None,
    tz: tzinfo,
) -> OpenCase:
    """A case opened by hand for `subject` (`KIND:ID`)."""
    scope = parse_scope(subject)
    if scope.drug_code:
        raise ValueError("a case is opened for KIND:ID, not for one drug of it")
    institution = _text(institution_id, "institution_id") or None
    if institution is None and scope.kind == "institution":
        institution = scope.id
    return OpenCase(
        Subject(scope.kind, scope.id),
        _required(by, "by"),
        normalize_at(at, tz),
        _text(note, "note"),
        institution,
    )


def advance_from_input(
    case_id: object,
    by: object,
    *,
    to: object = None,
    note: object = None,
    at: str | None = None,
    tz: tzinfo,
) -> AdvanceCase:
    """The case to its next step, or to `to` (a later step)."""
    if to is not None and to not in STEPS:
        raise ValueError(f"to must be one of {', '.join(STEPS)}, got {to!r}")
    return AdvanceCase(
        _case_id(case_id),
        _required(by, "by"),
        normalize_at(at, tz),
        to,
        _text(note, "note"),
    )


def assign_from_input(
    case_id: object, owner: object, by: object, *, at: str | None = None, tz: tzinfo
) -> AssignCase:
    return AssignCase(
        _case_id(case_id), _required(owner, "owner"), _required(by, "by"), normalize_at(at, tz)
    )


def decide_from_input(
    case_id: object,
    outcome: object,
    by: object,
    *,
    nature: object = None,
    confirmed_amount: object = 0,
    note: object = None,
    confirmed_alerts: object = None,
    at: str | None = None,
    tz: tzinfo,
) -> DecideCase:
    """The decision; a confirmed or partly confirmed one needs its nature and amount, and a
    partly confirmed one may name the alerts it confirms (`confirmed_alerts`, alert ids; the
    case's other alerts are then found false positive). Whether the case links them is for
    the case to say (the API's 409, the cases agent's `refused` notice)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    if nature is not None and nature not in NATURES:
        raise ValueError(f"nature must be one of {', '.join(NATURES)}, got {nature!r}")
    amount = _number(
        confirmed_amount if confirmed_amount is not None else 0, "confirmed_amount", zero=True
    )
    if outcome != "not_confirmed" and (nature is None or amount <= 0):
        raise ValueError(f"{outcome} needs a nature ({', '.join(NATURES)}) and an amount > 0")
    if outcome == "not_confirmed" and (nature is not None or amount != 0):
        raise ValueError("not_confirmed takes no nature and no amount")
    named = _alert_ids(confirmed_alerts, "confirmed_alerts")
    if named and outcome != "partly_confirmed":
        raise ValueError(
            f"confirmed_alerts goes only with a partly_confirmed decision (a {outcome} one "
            "gives every alert of the case its verdict)"
        )
    return DecideCase(
        _case_id(case_id),
        outcome,
        nature,
        amount,
        _required(by, "by"),
        normalize_at(at, tz),
        _text(note, "note"),
        named,
    )


def _alert_ids(value: object, name: str) -> tuple[str, ...]:
    """A list of distinct alert ids (None: none)."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple) or not all(isinstance(a, str) for a in value):
        raise ValueError(f"{name} must be a list of alert ids")
    for alert_id in value:
        if not alert_id.strip():
            raise ValueError(f"{name} holds an empty alert id")
        if (problem := id_problem(name, alert_id)) is not None:
            raise ValueError(f"{problem} (got {alert_id!r})")
    if len(set(value)) != len(value):
        twice = next(a for a in value if value.count(a) > 1)
        raise ValueError(f"{name} names the alert {twice} twice")
    return tuple(value)


def recover_from_input(
    case_id: object,
    money: object,
    amount: object,
    by: object,
    *,
    reference: object = None,
    note: object = None,
    at: str | None = None,
    tz: tzinfo,
) -> RecordRecovery:
    """Money deducted from a settlement or recovered, against a reference."""
    if money not in MONEY_KINDS:
        raise ValueError(f"money must be one of {', '.join(MONEY_KINDS)}, got {money!r}")
    return RecordRecovery(
        _case_id(case_id),
        money,
        _number(amount, "amount"),
        _required(by, "by"),
        normalize_at(at, tz),
        _text(reference, "reference"),
        _text(note, "note"),
    )
