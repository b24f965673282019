"""What a supervisor or reviewer does to a case, as people's actions on `claimstream.actions.v1`.

Five kinds, added to `action.v1` beside review, unfreeze, remediation and check_feedback (the
schema grew additively: new `type` values and fields), keyed by the case id, signed like the
others (`claimstream.sanctions.signatures`):

* `case_open`: open a case by hand for a subject (the case id is derived from the subject,
  who and when);
* `case_advance`: move the case to its next step (or, with `to`, to a later one, skipping
  steps that did not happen: an appeal the subject did not lodge);
* `case_assign`: give the case an owner;
* `case_decide`: the decision (confirmed / partly_confirmed / not_confirmed, and for a
  confirmed one intentional fraud or operational error, with the confirmed amount; a partly
  confirmed one may name the alerts it confirms, `confirmed_alerts`). The sanctions read it
  too (`claimstream.sanctions.actions.CaseDecision`, where outcomes and natures are defined);
* `case_recover`: money deducted from a settlement or recovered (追回), with a reference.

Each action's id is derived from what it says (`stable_id`), so a redelivery is recognised
and changes nothing. `case_action_from_dict` reads a record back (ValueError naming the field);
`is_case_action(record)` tells the sanctions steps to leave a record to the cases agent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from claimstream.model.events import KEY_KINDS, KeyKind
from claimstream.model.outputs import Subject, stable_id
from claimstream.sanctions.actions import NATURES as NATURES
from claimstream.sanctions.actions import OUTCOMES as OUTCOMES
from claimstream.sanctions.actions import Nature as Nature
from claimstream.sanctions.actions import Outcome as Outcome

Step = Literal["first_review", "re_review", "appeal", "investigation", "decision", "closed"]
#: 初审 -> 复审 -> 申诉 -> 调查核实 -> 处理 -> closed
STEPS: tuple[Step, ...] = (
    "first_review",
    "re_review",
    "appeal",
    "investigation",
    "decision",
    "closed",
)
MoneyKind = Literal["deducted", "recovered"]
MONEY_KINDS: tuple[MoneyKind, ...] = ("deducted", "recovered")
CASE_TYPES = ("case_open", "case_advance", "case_assign", "case_decide", "case_recover")
#: the largest amount one action may carry (yuan): a bound against typing errors
MAX_AMOUNT = 1e12


@dataclass(frozen=True, slots=True)
class OpenCase:
    subject: Subject
    by: str
    at: str
    note: str = ""
    institution_id: str | None = None

    @property
    def case_id(self) -> str:
        return stable_id("case", "manual", self.subject.kind, self.subject.id, self.by, self.at)

    @property
    def action_id(self) -> str:
        return stable_id("act", "case_open", self.case_id)


@dataclass(frozen=True, slots=True)
class AdvanceCase:
    case_id: str
    by: str
    at: str
    to: Step | None = None
    note: str = ""

    @property
    def action_id(self) -> str:
        return stable_id("act", "case_advance", self.case_id, self.to or "", self.by, self.at)


@dataclass(frozen=True, slots=True)
class AssignCase:
    case_id: str
    owner: str
    by: str
    at: str

    @property
    def action_id(self) -> str:
        return stable_id("act", "case_assign", self.case_id, self.owner, self.by, self.at)


@dataclass(frozen=True, slots=True)
class DecideCase:
    case_id: str
    outcome: Outcome
    nature: Nature | None
    confirmed_amount: float
    by: str
    at: str
    note: str = ""
    #: partly_confirmed only: the case's alerts it confirms (the others are not confirmed)
    confirmed_alerts: tuple[str, ...] = ()

    @property
    def action_id(self) -> str:
        return stable_id(
            "act",
            "case_decide",
            self.case_id,
            self.outcome,
            self.nature or "",
            repr(self.confirmed_amount),
            self.by,
            self.at,
            *self.confirmed_alerts,  # none: the id decisions had before they could name any
        )


@dataclass(frozen=True, slots=True)
class RecordRecovery:
    case_id: str
    kind: MoneyKind
    amount: float
    by: str
    at: str
    reference: str = ""
    note: str = ""

    @property
    def action_id(self) -> str:
        return stable_id(
            "act", "case_recover", self.case_id, self.kind, repr(self.amount), self.by, self.at,
            self.reference,
        )  # fmt: skip


CaseAction = OpenCase | AdvanceCase | AssignCase | DecideCase | RecordRecovery
CASE_ACTION_CLASSES = (OpenCase, AdvanceCase, AssignCase, DecideCase, RecordRecovery)


def is_case_action(record: Mapping[str, Any]) -> bool:
    """Whether an action.v1 record is a case action (the sanctions steps leave it alone)."""
    return record.get("type") in CASE_TYPES


def case_id_of(action: CaseAction) -> str:
    return action.case_id


def case_action_to_dict(action: CaseAction) -> dict[str, Any]:
    """The `action.v1` record of a case action (topics/schemas/action.v1.json)."""
    out: dict[str, Any] = {"schema": "action.v1", "action_id": action.action_id}
    if isinstance(action, OpenCase):
        out |= {"type": "case_open", "case_id": action.case_id}
        out |= {"subject": {"kind": action.subject.kind, "id": action.subject.id}}
        if action.institution_id:
            out["institution_id"] = action.institution_id
        out["note"] = action.note
    elif isinstance(action, AdvanceCase):
        out |= {"type": "case_advance", "case_id": action.case_id, "note": action.note}
        if action.to is not None:
            out["to"] = action.to
    elif isinstance(action, AssignCase):
        out |= {"type": "case_assign", "case_id": action.case_id, "owner": action.owner}
    elif isinstance(action, DecideCase):
        out |= {"type": "case_decide", "case_id": action.case_id, "outcome": action.outcome}
        out |= {"nature": action.nature, "confirmed_amount": action.confirmed_amount}
        if action.confirmed_alerts:
            out["confirmed_alerts"] = list(action.confirmed_alerts)
        out["note"] = action.note
    else:
        out |= {"type": "case_recover", "case_id": action.case_id, "money": action.kind}
        out |= {"amount": action.amount, "reference": action.reference, "note": action.note}
    out |= {"by": action.by, "at": action.at}
    return out


def case_action_from_dict(data: Mapping[str, Any]) -> CaseAction:
    """A case action back from its record; ValueError names what is wrong. The action id is
    recomputed, never read (and a manual case's id must match its subject, who and when)."""
    kind = data.get("type")
    by, at = _text(data, "by"), _text(data, "at")
    _aware(at)
    note = _note(data)
    if kind == "case_open":
        subject = data.get("subject")
        if not isinstance(subject, Mapping):
            raise ValueError("subject must be an object {kind, id}")
        subject_kind = subject.get("kind")
        if subject_kind not in KEY_KINDS:
            raise ValueError(f"subject.kind must be one of {', '.join(KEY_KINDS)}")
        opened = OpenCase(
            Subject(cast(KeyKind, subject_kind), _text(subject, "id")),
            by,
            at,
            note,
            _optional(data, "institution_id"),
        )
        if data.get("case_id") not in (None, opened.case_id):
            raise ValueError("case_id does not match the subject, by and at it is derived from")
        return opened
    case_id = _text(data, "case_id")
    if kind == "case_advance":
        to = data.get("to")
        if to is not None and to not in STEPS:
            raise ValueError(f"to must be one of {', '.join(STEPS)}, got {to!r}")
        return AdvanceCase(case_id, by, at, cast(Step | None, to), note)
    if kind == "case_assign":
        return AssignCase(case_id, _text(data, "owner"), by, at)
    if kind == "case_decide":
        outcome = data.get("outcome")
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
        nature = data.get("nature")
        if nature is not None and nature not in NATURES:
            raise ValueError(f"nature must be one of {', '.join(NATURES)} or null, got {nature!r}")
        amount = amount_of(data.get("confirmed_amount", 0), "confirmed_amount", zero=True)
        named = data.get("confirmed_alerts") or []
        if not isinstance(named, list) or not all(isinstance(a, str) and a for a in named):
            raise ValueError("confirmed_alerts must be a list of alert ids")
        if len(set(named)) != len(named):
            raise ValueError("confirmed_alerts names an alert twice")
        return DecideCase(case_id, outcome, nature, amount, by, at, note, tuple(named))
    if kind == "case_recover":
        money = data.get("money")
        if money not in MONEY_KINDS:
            raise ValueError(f"money must be one of {', '.join(MONEY_KINDS)}, got {money!r}")
        amount = amount_of(data.get("amount"), "amount")
        reference = data.get("reference") or ""
        if not isinstance(reference, str):
            raise ValueError("reference must be a string")
        return RecordRecovery(case_id, money, amount, by, at, reference, note)
    raise ValueError(f"type must be one of {', '.join(CASE_TYPES)}, got {kind!r}")


def amount_of(value: object, name: str, *, zero: bool = False) -> float:
    """A money amount (yuan, > 0, or >= 0 when `zero`), refused when absurd."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    amount = float(value)
    if not math.isfinite(amount) or amount < 0 or (amount == 0 and not zero):
        raise ValueError(f"{name} must be {'>= 0' if zero else '> 0'}, got {value!r}")
    if amount > MAX_AMOUNT:
        raise ValueError(f"{name} is over {MAX_AMOUNT:g}: refused as a likely typing error")
    return round(amount, 2)


def _aware(moment: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(moment)
    except ValueError:
        raise ValueError(f"at must be an RFC 3339 time, got {moment!r}") from None
    if parsed.tzinfo is None:
        raise ValueError(f"at needs a UTC offset, got {moment!r}")
    return parsed


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    return value.strip()


def _optional(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value


def _note(data: Mapping[str, Any]) -> str:
    value = data.get("note")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError("note must be a string")
    return value
