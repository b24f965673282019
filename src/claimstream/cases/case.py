"""The case (疑点案件): its steps, deadlines, money and decision, as pure transitions.

A case goes first_review -> re_review -> appeal -> investigation -> decision -> closed
(初审 -> 复审 -> 申诉 -> 调查核实 -> 处理). Each step has a time limit in working days
(`CaseSettings.step_days`, default 15 each, a city's example), counted on the holiday calendar
(`claimstream.cases.calendar`) from the time the step began: its due time is the end of the
n-th working day after that day. A step is *overdue* when event-time "now" has reached its due
time and the case is still in it (`overdue`).

Every change is a pure function `Procedure.apply(case, action) -> Case | Refusal`: a refusal
carries a reason (one of `REFUSALS`) and a sentence, and leaves the case as it was. Actions are
idempotent by id (an action already in the case's history changes nothing, `Unchanged`).

* `case_advance`: to the next step, or with `to` to a later one (skipped steps are recorded);
  `closed` only once decided; refused on a closed case or backwards (`closed`, `not_later`,
  `undecided`).
* `case_assign`: any step but closed.
* `case_decide`: only in the decision step (`wrong_step`); confirmed and partly_confirmed need a
  nature and an amount > 0 (`invalid`), not_confirmed neither; only a partly confirmed one may
  name the alerts it confirms (`confirmed_alerts`), and only alerts linked to the case
  (`invalid`); a decision once taken stands (`decided`): a new one needs a new case. What
  the decision does to the alerts' verdicts and the subject's ladder is the sanctions'
  (docs/sanctions.md).
* `case_recover`: money deducted or recovered, once a confirmed or partly confirmed decision
  exists (`undecided`), never more than confirmed in total (`over_confirmed`).
* alerts (`add_alert`): linked to the case with their amount as *flagged* money; an alert
  already linked changes nothing. `group` decides which case an alert opens or joins.

Money: every amount is a `Money` line (kind flagged / confirmed / deducted / recovered, amount,
who, when, reference), so the ledger can sum them per month (`claimstream.cases.ledger`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, cast

from claimstream.cases.actions import (
    STEPS,
    AdvanceCase,
    AssignCase,
    CaseAction,
    DecideCase,
    Nature,
    OpenCase,
    Outcome,
    RecordRecovery,
    Step,
)
from claimstream.cases.calendar import WorkingCalendar
from claimstream.model.events import KEY_KINDS, KeyKind
from claimstream.model.outputs import Subject, stable_id

MoneyLine = Literal["flagged", "confirmed", "deducted", "recovered"]
MONEY: tuple[MoneyLine, ...] = ("flagged", "confirmed", "deducted", "recovered")
#: why an action was refused
REFUSALS = (
    "unknown_case",
    "closed",
    "not_later",
    "undecided",
    "wrong_step",
    "decided",
    "invalid",
    "over_confirmed",
)
#: who opens a case from alerts
SYSTEM = "system"
#: steps that have a deadline (closed has none)
TIMED_STEPS: tuple[Step, ...] = STEPS[:-1]


@dataclass(frozen=True, slots=True)
class CaseSettings:
    """How cases are run. `step_days`: working days each step may take; `group_days`: an alert
    joins its subject's case when within this many days of the case's first alert, else it
    opens a new one; `max_alerts`: alerts a case links (its state stays bounded); later ones
    are only counted (`unlinked_alerts`), their amounts not flagged."""

    step_days: Mapping[str, int] = field(default_factory=lambda: dict.fromkeys(TIMED_STEPS, 15))
    group_days: int = 30
    max_alerts: int = 1000

    def validate(self) -> None:
        for step in TIMED_STEPS:
            days = self.step_days.get(step)
            if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 3660:
                raise ValueError(f"step_days.{step} must be a whole number from 1 to 3660")
        unknown = set(self.step_days) - set(TIMED_STEPS)
        if unknown:
            raise ValueError(f"step_days names unknown steps: {', '.join(sorted(unknown))}")
        if self.group_days < 0:
            raise ValueError("group_days must be >= 0")
        if self.max_alerts < 1:
            raise ValueError("max_alerts must be >= 1")


@dataclass(frozen=True, slots=True)
class Money:
    kind: MoneyLine
    amount: float
    by: str
    at: str
    reference: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    nature: Nature | None
    confirmed_amount: float
    by: str
    at: str
    note: str = ""
    #: partly_confirmed only: the linked alerts it confirms (none named: it says of no alert)
    confirmed_alerts: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the case's timeline."""

    action_id: str
    type: str
    by: str
    at: str
    step: Step
    note: str = ""


@dataclass(frozen=True, slots=True)
class Case:
    case_id: str
    subject: Subject
    opened_at: str
    opened_by: str
    step: Step
    step_started_at: str
    #: POSIX time the current step is due (None once closed)
    due: float | None
    institution_id: str | None = None
    owner: str = ""
    alert_ids: tuple[str, ...] = ()
    alert_count: int = 0
    report_ids: tuple[str, ...] = ()
    money: tuple[Money, ...] = ()
    decision: Decision | None = None
    history: tuple[Entry, ...] = ()
    #: steps whose overdue notice has been given (once each)
    notified: tuple[str, ...] = ()
    #: the case an alert for this closed case went to instead
    successor: str | None = None
    #: alerts that came once `max_alerts` were linked: counted only (at least this many)
    unlinked_alerts: int = 0

    def total(self, kind: MoneyLine) -> float:
        return round(sum(m.amount for m in self.money if m.kind == kind), 2)

    def totals(self) -> dict[str, float]:
        return {kind: self.total(kind) for kind in MONEY}

    def applied(self, action_id: str) -> bool:
        return any(e.action_id == action_id for e in self.history)


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Unchanged:
    """An action already applied (a redelivery): nothing to do."""

    case: Case


def ts_of(moment: str) -> float:
    parsed = datetime.fromisoformat(moment)
    if parsed.tzinfo is None:
        raise ValueError(f"time without a UTC offset: {moment!r}")
    return parsed.timestamp()


class Procedure:
    """The transitions, given the settings and the working-day calendar."""

    def __init__(self, settings: CaseSettings, calendar: WorkingCalendar) -> None:
        settings.validate()
        self.settings = settings
        self.calendar = calendar

    def due(self, step: Step, started_at: str) -> float | None:
        if step == "closed":
            return None
        return self.calendar.deadline(ts_of(started_at), self.settings.step_days[step])

    # -- opening -------------------------------------------------------------------------------

    def open(
        self,
        case_id: str,
        subject: Subject,
        at: str,
        by: str,
        *,
        action_id: str,
        institution_id: str | None = None,
        note: str = "",
    ) -> Case:
        entry = Entry(action_id, "case_open", by, at, "first_review", note)
        return Case(
            case_id=case_id,
            subject=subject,
            opened_at=at,
            opened_by=by,
            step="first_review",
            step_started_at=at,
            due=self.due("first_review", at),
            institution_id=institution_id,
            history=(entry,),
        )

    def add_alert(
        self, case: Case, alert_id: str, amount: float | None, at: str, rule: str = ""
    ) -> Case:
        """Link an alert (its amount flagged); an alert already linked changes nothing."""
        if alert_id in case.alert_ids:
            return case
        ids = case.alert_ids
        if len(ids) >= self.settings.max_alerts:
            # full: not linked, no money flagged, only counted (a redelivery counts again)
            return replace(case, unlinked_alerts=case.unlinked_alerts + 1)
        ids = (*ids, alert_id)
        money = case.money
        if amount:
            money = (*money, Money("flagged", round(amount, 2), SYSTEM, at, alert_id))
        # no timeline entry: the alert ids and their flagged money lines (with when) say it,
        # and a case's state stays small (a timeline line per alert tripled it)
        return replace(case, alert_ids=ids, alert_count=case.alert_count + 1, money=money)

    # -- people's actions ------------------------------------------------------------------------

    def apply(self, case: Case | None, action: CaseAction) -> Case | Refusal | Unchanged:
        if isinstance(action, OpenCase):
            if case is not None:
                return Unchanged(case)
            return self.open(
                action.case_id,
                action.subject,
                action.at,
                action.by,
                action_id=action.action_id,
                institution_id=action.institution_id,
                note=action.note,
            )
        if case is None:
            return Refusal("unknown_case", f"no case {action.case_id}")
        if case.applied(action.action_id):
            return Unchanged(case)
        if isinstance(action, AdvanceCase):
            return self._advance(case, action)
        if isinstance(action, AssignCase):
            if case.step == "closed":
                return Refusal("closed", "the case is closed")
            entry = Entry(action.action_id, "case_assign", action.by, action.at, case.step,
                          f"owner: {action.owner}")  # fmt: skip
            return replace(case, owner=action.owner, history=(*case.history, entry))
        if isinstance(action, DecideCase):
            return self._decide(case, action)
        return self._recover(case, action)

    def _advance(self, case: Case, action: AdvanceCase) -> Case | Refusal:
        if case.step == "closed":
            return Refusal("closed", "the case is closed")
        here = STEPS.index(case.step)
        target: Step = action.to if action.to is not None else STEPS[here + 1]
        if STEPS.index(target) <= here:
            return Refusal("not_later", f"the case is at {case.step}; {target} is not a later step")
        if target == "closed" and case.decision is None:
            return Refusal("undecided", "a case is closed only once decided (case_decide)")
        skipped = STEPS[here + 1 : STEPS.index(target)]
        if "decision" in skipped:
            return Refusal("undecided", "the decision step cannot be skipped")
        note = action.note
        if skipped:
            note = f"skipped {', '.join(skipped)}" + (f"; {note}" if note else "")
        entry = Entry(action.action_id, "case_advance", action.by, action.at, target, note)
        return replace(
            case,
            step=target,
            step_started_at=action.at,
            due=self.due(target, action.at),
            history=(*case.history, entry),
        )

    def _decide(self, case: Case, action: DecideCase) -> Case | Refusal:
        if case.step == "closed":
            return Refusal("closed", "the case is closed")
        if case.decision is not None:
            return Refusal("decided", "the case is decided already")
        if case.step != "decision":
            return Refusal(
                "wrong_step", f"a decision is taken at the decision step, not {case.step}"
            )
        confirmed = action.outcome != "not_confirmed"
        if confirmed and (action.nature is None or action.confirmed_amount <= 0):
            return Refusal("invalid", f"{action.outcome} needs a nature and an amount > 0")
        if not confirmed and (action.nature is not None or action.confirmed_amount != 0):
            return Refusal("invalid", "not_confirmed takes no nature and no amount")
        named = action.confirmed_alerts
        if named and action.outcome != "partly_confirmed":
            return Refusal("invalid", "only a partly_confirmed decision names its confirmed alerts")
        if set(named) - set(case.alert_ids):
            return Refusal("invalid", "confirmed_alerts names an alert the case does not link")
        decision = Decision(
            action.outcome, action.nature, action.confirmed_amount, action.by, action.at,
            action.note, named,
        )  # fmt: skip
        money = case.money
        if confirmed:
            money = (*money, Money("confirmed", action.confirmed_amount, action.by, action.at))
        what = action.outcome + (f" ({action.nature})" if action.nature else "")
        entry = Entry(action.action_id, "case_decide", action.by, action.at, case.step, what)
        return replace(case, decision=decision, money=money, history=(*case.history, entry))

    def _recover(self, case: Case, action: RecordRecovery) -> Case | Refusal:
        decision = case.decision
        if decision is None or decision.outcome == "not_confirmed":
            return Refusal("undecided", "money is recovered only on a confirmed decision")
        done = case.total("deducted") + case.total("recovered")
        if done + action.amount > case.total("confirmed") + 0.005:
            return Refusal(
                "over_confirmed",
                f"{done:.2f} already deducted or recovered; {action.amount:.2f} more would "
                f"exceed the {case.total('confirmed'):.2f} confirmed",
            )
        line = Money(action.kind, action.amount, action.by, action.at, action.reference)
        entry = Entry(action.action_id, "case_recover", action.by, action.at, case.step,
                      f"{action.kind} {action.amount:.2f}")  # fmt: skip
        return replace(case, money=(*case.money, line), history=(*case.history, entry))

    # -- time ------------------------------------------------------------------------------------

    @staticmethod
    def overdue(case: Case, now: float) -> Step | None:
        """The step that is overdue at event time `now`, or None."""
        if case.due is None or case.step == "closed" or now < case.due:
            return None
        return case.step

    def notify_overdue(self, case: Case, now: float) -> tuple[Case, Step | None]:
        """The case marked as notified for its overdue step, and that step, the first time
        it is found overdue; else (case, None)."""
        step = self.overdue(case, now)
        if step is None or step in case.notified:
            return case, None
        return replace(case, notified=(*case.notified, step)), step


# -- grouping alerts into cases ------------------------------------------------------------------


def group(
    state: Mapping[str, Any] | None, subject: Subject, alert_id: str, at: float, days: int
) -> tuple[str, dict[str, Any], bool]:
    """Which case an alert of `subject` at event time `at` goes to.

    `state` is the subject's grouping record (None at first): the current case and its first
    alert's time. The alert joins that case when within `days` days of that time (either side,
    so arrival order does not matter), else it opens a new case whose id is derived from the
    subject and the alert. Returns (case id, the new record, opened?)."""
    if state is not None and abs(at - float(state["first"])) <= days * 86400:
        return str(state["case_id"]), dict(state), False
    case_id = stable_id("case", subject.kind, subject.id, alert_id)
    return case_id, {"case_id": case_id, "first": at}, True


def successor_id(case_id: str, alert_id: str) -> str:
    """The case an alert for a closed case opens instead."""
    return stable_id("case", "after", case_id, alert_id)


# -- JSON (the table's state) -------------------------------------------------------------------


def case_to_dict(case: Case) -> dict[str, Any]:
    return {
        "case_id": case.case_id,
        "subject": {"kind": case.subject.kind, "id": case.subject.id},
        "institution_id": case.institution_id,
        "opened_at": case.opened_at,
        "opened_by": case.opened_by,
        "step": case.step,
        "step_started_at": case.step_started_at,
        "due": case.due,
        "owner": case.owner,
        "alert_ids": list(case.alert_ids),
        "alert_count": case.alert_count,
        "report_ids": list(case.report_ids),
        "money": [
            {"kind": m.kind, "amount": m.amount, "by": m.by, "at": m.at, "reference": m.reference}
            for m in case.money
        ],
        "decision": None
        if case.decision is None
        else {
            "outcome": case.decision.outcome,
            "nature": case.decision.nature,
            "confirmed_amount": case.decision.confirmed_amount,
            "by": case.decision.by,
            "at": case.decision.at,
            "note": case.decision.note,
            "confirmed_alerts": list(case.decision.confirmed_alerts),
        },
        "history": [
            {
                "action_id": e.action_id,
                "type": e.type,
                "by": e.by,
                "at": e.at,
                "step": e.step,
                "note": e.note,
            }
            for e in case.history
        ],
        "notified": list(case.notified),
        "successor": case.successor,
        "unlinked_alerts": case.unlinked_alerts,
    }


def case_from_dict(data: Mapping[str, Any]) -> Case:
    subject = data["subject"]
    kind = subject["kind"]
    if kind not in KEY_KINDS:
        raise ValueError(f"unknown subject kind {kind!r}")
    decision = data.get("decision")
    return Case(
        case_id=data["case_id"],
        subject=Subject(cast(KeyKind, kind), subject["id"]),
        opened_at=data["opened_at"],
        opened_by=data["opened_by"],
        step=data["step"],
        step_started_at=data["step_started_at"],
        due=data.get("due"),
        institution_id=data.get("institution_id"),
        owner=data.get("owner") or "",
        alert_ids=tuple(data.get("alert_ids") or ()),
        alert_count=int(data.get("alert_count") or 0),
        report_ids=tuple(data.get("report_ids") or ()),
        money=tuple(Money(**m) for m in data.get("money") or ()),
        decision=None if not decision else _decision(decision),
        history=tuple(Entry(**e) for e in data.get("history") or ()),
        notified=tuple(data.get("notified") or ()),
        successor=data.get("successor"),
        unlinked_alerts=int(data.get("unlinked_alerts") or 0),
    )


def _decision(data: Mapping[str, Any]) -> Decision:
    """A decision back from the table (one stored before decisions named alerts has none)."""
    return Decision(**{**data, "confirmed_alerts": tuple(data.get("confirmed_alerts") or ())})


def summary(case: Case, now: float | None) -> dict[str, Any]:
    """What a list of cases shows of one: no history, money as totals."""
    return {
        "case_id": case.case_id,
        "subject": {"kind": case.subject.kind, "id": case.subject.id},
        "institution_id": case.institution_id,
        "step": case.step,
        "due": case.due,
        "overdue": now is not None and Procedure.overdue(case, now) is not None,
        "owner": case.owner,
        "alerts": case.alert_count,
        "totals": case.totals(),
        "decision": None if case.decision is None else case.decision.outcome,
        "opened_at": case.opened_at,
    }
