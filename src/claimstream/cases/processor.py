"""The casework stream's two steps as pure batch processors (no faust, no Kafka, no clock).

    alerts.v1 --GroupProcessor (table case-groups: subject `kind:id` -> its current case)-->
        repartition.case, keyed by case id: {"type": "alert", "case_id", "alert": <alert.v1>}
    repartition.case + actions.v1 --CaseProcessor (table cases: case id -> the case)-->
        notices on claimstream.cases.v1 (case-notice.v1), keyed by case id; a decision's
        verdicts and step to repartition.alert and repartition.subject (the sanctions)

Records that are not alerts or actions at all are left to the sanctions steps, which read the
same topics and dead-letter them (once); this step dead-letters only what is its own: a case
action that cannot be used, a bad envelope on repartition.case.

The group step decides which case an alert opens or joins (`claimstream.cases.case.group`:
same subject within `group_days`); an alert below `min_severity` opens nothing. The case step
opens the case on its first alert, links the alerts that follow (their amounts flagged), and
applies people's case actions from the actions topic (the other action types are the
sanctions'; it leaves them alone). An alert for a case closed meanwhile opens a successor case
(`successor_id`): the closed case remembers it and sends later alerts there.

A decision (`case_decide`), once applied, is sent on to the sanctions
(`claimstream.sanctions.processor.decision_forwards`): a verdict per linked alert on
repartition.alert and the decision for the case's subject on repartition.subject.

People's actions are read by the intake the sanctions use (`claimstream.sanctions.intake`:
JSON, whose they are, signature, parse) and verified (`verify`, `ActionVerifier.check`) before
they change anything: unsigned, unknown-key or badly signed ones are dead-lettered with their
reason, as the sanctions do. A transition the procedure refuses (`Refusal`) changes nothing
and is published as a `refused` notice, with its reason, for whoever sent it. Everything is
idempotent: an alert already linked, an action id already in the case's history change
nothing, so a redelivered batch produces nothing new.

`tick(keys, now)` gives each case found overdue at event time `now` its one `overdue` notice
and counts the overdue cases per step (the gauge `claimstream_cases_overdue{step}`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from claimstream.cases.actions import (
    CaseAction,
    DecideCase,
    case_action_from_dict,
    is_case_action,
)
from claimstream.cases.case import (
    SYSTEM,
    TIMED_STEPS,
    Case,
    Procedure,
    Refusal,
    Unchanged,
    case_from_dict,
    case_to_dict,
    group,
    successor_id,
    ts_of,
)
from claimstream.cases.report_actions import link_report
from claimstream.model.outputs import SEVERITIES, Alert, DeadLetter, stable_id
from claimstream.model.records import Record
from claimstream.model.timefmt import iso
from claimstream.sanctions.codec import alert_from_dict
from claimstream.sanctions.intake import Json as Json
from claimstream.sanctions.intake import Refused as Refused
from claimstream.sanctions.intake import Verify as Verify
from claimstream.sanctions.intake import each, json_object, parsed, read_action
from claimstream.sanctions.processor import decision_forwards

ALERTS = "claimstream.alerts.v1"
ACTIONS = "claimstream.actions.v1"
REPARTITION_CASE = "claimstream.repartition.case"
CASE_NOTICES = "claimstream.cases.v1"
#: the tables: subject `kind:id` -> its grouping record; case id -> the case
CASE_GROUPS = "case-groups"
CASES = "cases"

Load = Callable[[str], Any]
#: a batch's read of a case (its state as the batch changed it) and its write
Get = Callable[[str], Case | None]
Put = Callable[[Case, int], None]


@dataclass(slots=True)
class CaseResult:
    #: (topic, key, value) to publish before the state is written
    forwards: list[tuple[str, str, bytes]] = field(default_factory=list)
    #: (case id, case-notice.v1)
    notices: list[tuple[str, Json]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    #: key -> (state, partition)
    writes: dict[str, tuple[Json, int]] = field(default_factory=dict)
    #: (action type, outcome: applied | refused | repeated) of every case action read
    actions: list[tuple[str, str]] = field(default_factory=list)
    #: (money kind, amount) of every money line added
    money: list[tuple[str, float]] = field(default_factory=list)
    #: step -> cases overdue (set by `tick`)
    overdue: dict[str, int] = field(default_factory=dict)


def _each(records: Iterable[Record], out: CaseResult, one: Callable[[Record], None]) -> None:
    each(records, out.dead_letters, one)


def _alert_or_none(raw: bytes | None) -> tuple[Json, Alert] | None:
    try:
        data = json_object(raw, "invalid_alert")
        return data, alert_from_dict(data)
    except (Refused, ValueError, KeyError, TypeError):
        return None


class GroupProcessor:
    """alerts.v1 -> repartition.case: which case each alert goes to (table case-groups)."""

    def __init__(self, load: Load, *, group_days: int, min_severity: str = "warning") -> None:
        if min_severity not in SEVERITIES:
            raise ValueError(f"min_severity must be one of {', '.join(SEVERITIES)}")
        self.load = load
        self.group_days = group_days
        self.min_rank = SEVERITIES.index(min_severity)

    def process(self, records: Iterable[Record]) -> CaseResult:
        out = CaseResult()
        states: dict[str, Json | None] = {}

        def one(record: Record) -> None:
            found = _alert_or_none(record.value)
            if found is None:
                return  # the sanctions' route step dead-letters what is not an alert
            data, alert = found
            if SEVERITIES.index(alert.severity) < self.min_rank:
                return
            key = f"{alert.subject.kind}:{alert.subject.id}"
            if key not in states:
                states[key] = self.load(key)
            before = states[key]
            case_id, state, _ = group(
                before, alert.subject, alert.alert_id, ts_of(alert.occurred_at), self.group_days
            )
            if state != before:
                states[key] = state
                out.writes[key] = (state, record.partition)
            envelope = {"type": "alert", "case_id": case_id, "alert": data}
            out.forwards.append((REPARTITION_CASE, case_id, orjson.dumps(envelope)))

        _each(records, out, one)
        return out


def stale_groups(items: Iterable[tuple[str, Json]], now: float, group_days: int) -> list[str]:
    """Grouping records no alert can join any more: their case's first alert is more than twice
    the grouping days before event time `now` (an alert that late opens a new case anyway)."""
    horizon = now - 2 * group_days * 86400
    return [key for key, state in items if float(state.get("first", now)) < horizon]


def notice(case_id: str, case: Case | None, event: str, at: str, **extra: Any) -> Json:
    """A case-notice.v1 record (topics/schemas/case-notice.v1.json); `case` None when the
    case does not exist (a refused action about an unknown case)."""
    body: Json = {
        "schema": "case-notice.v1",
        "notice_id": stable_id("cnt", case_id, event, at, str(extra.get("action_id", ""))),
        "case_id": case_id,
        "event": event,
        "step": None if case is None else case.step,
        "due": None if case is None or case.due is None else iso(case.due),
        "at": at,
    }
    return body | {k: v for k, v in extra.items() if v is not None}


class CaseProcessor:
    """repartition.case + actions.v1 -> the cases (table cases) and their notices."""

    def __init__(self, procedure: Procedure, load: Load, *, verify: Verify) -> None:
        self.procedure = procedure
        self.load = load
        self.verify = verify

    def process(self, records: Iterable[Record]) -> CaseResult:
        out = CaseResult()
        cases: dict[str, Case | None] = {}

        def get(case_id: str) -> Case | None:
            if case_id not in cases:
                raw = self.load(case_id)
                cases[case_id] = None if raw is None else case_from_dict(raw)
            return cases[case_id]

        changed: dict[str, int] = {}

        def put(case: Case, partition: int) -> None:
            cases[case.case_id] = case
            changed[case.case_id] = partition

        def one(record: Record) -> None:
            if record.topic == ACTIONS:
                self._action(record, get, put, out)
            else:
                self._alert(record, get, put, out)

        _each(records, out, one)
        for case_id, partition in changed.items():  # each changed case encoded once per batch
            case = cases[case_id]
            if case is not None:
                out.writes[case_id] = (case_to_dict(case), partition)
        return out

    def _alert(self, record: Record, get: Get, put: Put, out: CaseResult) -> None:
        envelope = json_object(record.value, "invalid_envelope")
        if envelope.get("type") == "report":  # an accepted report (claimstream.cases.reports)
            self._report(envelope, record, get, put, out)
            return
        case_id, data = envelope.get("case_id"), envelope.get("alert")
        if envelope.get("type") != "alert" or not isinstance(case_id, str) or not case_id:
            raise Refused("invalid_envelope", "expected {type: alert, case_id, alert}")
        if not isinstance(data, dict):
            raise Refused("invalid_envelope", "alert must be an object")
        try:
            alert = alert_from_dict(data)
        except (ValueError, KeyError, TypeError) as exc:
            raise Refused("invalid_alert", f"not an alert.v1 record: {exc}") from None
        case = get(case_id)
        proc = self.procedure
        if case is not None and case.step == "closed":
            successor = case.successor or successor_id(case_id, alert.alert_id)
            if case.successor is None:
                put(replace(case, successor=successor), record.partition)
            forward = {"type": "alert", "case_id": successor, "alert": data}
            out.forwards.append((REPARTITION_CASE, successor, orjson.dumps(forward)))
            return
        opened = case is None
        if case is None:
            case = proc.open(
                case_id,
                alert.subject,
                alert.occurred_at,
                SYSTEM,
                action_id=stable_id("act", "case_open", case_id),
                institution_id=alert.institution_id,
                note=f"opened by an alert of {alert.rule}",
            )
            out.notices.append(
                (case_id, notice(case_id, case, "opened", alert.occurred_at, by=SYSTEM))
            )
        linked = proc.add_alert(case, alert.alert_id, alert.amount, alert.occurred_at, alert.rule)
        if linked is case and not opened:
            return  # already linked: a redelivery
        put(linked, record.partition)
        if linked.alert_count > case.alert_count:
            if alert.amount:
                out.money.append(("flagged", alert.amount))
            out.notices.append(
                (
                    case_id,
                    notice(case_id, linked, "alert", alert.occurred_at, alert_id=alert.alert_id),
                )
            )

    def _report(self, envelope: Json, record: Record, get: Get, put: Put, out: CaseResult) -> None:
        case_id = envelope.get("case_id")
        if not isinstance(case_id, str) or not case_id:
            raise Refused("invalid_envelope", "expected {type: report, case_id, report_id, ...}")
        before = get(case_id)
        try:
            result, opened = link_report(self.procedure, before, envelope)
        except (ValueError, KeyError, TypeError) as exc:
            raise Refused("invalid_envelope", f"not a report link: {exc}") from None
        at, action_id = str(envelope["at"]), str(envelope["action_id"])
        if isinstance(result, Unchanged):
            return
        if isinstance(result, Refusal):
            out.notices.append((case_id, notice(
                case_id, before, "refused", at, action_id=action_id, type="report_accept",
                by=str(envelope["by"]), reason=result.reason, detail=result.detail,
            )))  # fmt: skip
            return
        put(result, record.partition)
        if opened:
            out.notices.append(
                (case_id, notice(case_id, result, "opened", at, by=result.opened_by))
            )
        out.notices.append((case_id, notice(
            case_id, result, "report", at, action_id=action_id, report_id=envelope["report_id"],
            by=str(envelope["by"]),
        )))  # fmt: skip

    def _action(self, record: Record, get: Get, put: Put, out: CaseResult) -> None:
        # not an action at all, or a review, unfreeze, remediation or check feedback: the
        # sanctions' (their index step dead-letters what is not an action)
        data = read_action(record.value, self.verify, ours=is_case_action, refuse_garbage=False)
        if data is None:
            return
        action: CaseAction = parsed(case_action_from_dict, data, "invalid_action", "a case action")
        kind = str(data["type"])
        case_id = action.case_id
        before = get(case_id)
        result = self.procedure.apply(before, action)
        if isinstance(result, Unchanged):
            out.actions.append((kind, "repeated"))
            return
        if isinstance(result, Refusal):
            out.actions.append((kind, "refused"))
            out.notices.append(
                (
                    case_id,
                    notice(
                        case_id,
                        before,
                        "refused",
                        action.at,
                        action_id=action.action_id,
                        type=kind,
                        by=action.by,
                        reason=result.reason,
                        detail=result.detail,
                    ),
                )
            )
            return
        out.actions.append((kind, "applied"))
        put(result, record.partition)
        if isinstance(action, DecideCase):
            # to the sanctions: the alerts' verdicts (precision, points, grade, the ladder's
            # counts) and the subject's step on the ladder; once, as the decision is applied
            # once (a redelivery is `Unchanged` above; one after a crash before the case was
            # written is sent again and changes nothing there either)
            out.forwards += decision_forwards(data, result.subject, result.alert_ids)
        for line in result.money[len(before.money) if before is not None else 0 :]:
            out.money.append((line.kind, line.amount))
        event = {
            "case_open": "opened",
            "case_advance": "advanced",
            "case_assign": "assigned",
            "case_decide": "decided",
            "case_recover": "money",
        }[kind]
        out.notices.append(
            (
                case_id,
                notice(case_id, result, event, action.at, action_id=action.action_id, by=action.by),
            )
        )

    def tick(
        self, keys: Iterable[str], now: float, partition_of: Callable[[str], int]
    ) -> CaseResult:
        """Overdue notices (once per case and step) and the overdue count per step, at `now`."""
        out = CaseResult(overdue=dict.fromkeys(TIMED_STEPS, 0))
        for key in keys:
            raw = self.load(key)
            if raw is None:
                continue
            case = case_from_dict(raw)
            step = self.procedure.overdue(case, now)
            if step is None:
                continue
            out.overdue[step] += 1
            marked, first = self.procedure.notify_overdue(case, now)
            if first is not None:
                out.writes[key] = (case_to_dict(marked), partition_of(key))
                at = iso(case.due) if case.due is not None else iso(now)
                out.notices.append((key, notice(key, marked, "overdue", at)))
        return out
