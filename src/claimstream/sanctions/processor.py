"""The sanctions stream's three steps as pure batch processors (no faust, no Kafka, no clock).

The worker (`claimstream.stream.sanctions`) feeds each one `Record`s and publishes what it
returns; tests feed plain lists. Data flow:

    alerts.v1 --RouteProcessor (re-key by alert_id)--> repartition.alert
    cases (a case's decision, `decision_forwards`) --> repartition.alert, repartition.subject
    repartition.alert + actions.v1 --IndexProcessor (table alert-index: alert_id -> alert and
        its latest verdict)--> repartition.subject, one envelope per subject, keyed `kind:id`
    repartition.subject --SubjectProcessor (table state-subject: the `Escalation` state and
        the subject's alerts)--> commands (registry + commands topic), notices (sanctions.v1)

Envelopes on repartition.subject (JSON): `{"type": "alert", "alert": <alert.v1>}`,
`{"type": "review" | "remediation", "action": <action.v1>, "alert": <alert.v1>}`,
`{"type": "unfreeze", "action": <action.v1>}`, and a case's decision:
`{"type": "case_verdict", "alert_id", "action": <case_decide action.v1>, "alert": <alert.v1>}`
per alert (it came to the index on repartition.alert without `alert`) and
`{"type": "case_decision", "alert_ids": [...], "action": <case_decide action.v1>}` for the
case's subject. A case's decision on an alert counts as a reviewer's verdict (confirmed, or
false_positive; `CaseDecision.verdict_for`), by its `at` like any verdict: the later one stands.

A check's feedback (`{"type": "check_feedback"}` on actions.v1, the clinician's answer to a
pre-settlement check) changes no subject: the index step counts it once per action id, per rule
and handling (`Result.overrides`), remembering the id under `~feedback:<action_id>` in its table
for the sanctions horizon, so a redelivery is not counted again.

People's actions are signed (`claimstream.sanctions.signatures`): both steps that take one (the
index from actions.v1 or repartition.alert, the subject from repartition.subject) verify its
signature with `verify` before it changes anything, and forward the record as signed. An
unsigned, unknown-key or badly signed action is dead-lettered (`unsigned_action`,
`unknown_key`, `bad_signature`), so write access to a topic alone lifts no freeze. A signed
action published again later changes nothing either: a verdict older (by `at`) than the one on
record is ignored, and an unfreeze or remediation older than the subject's memory of applied
actions (`manual_retention_days` behind its event time, where a repeat could no longer be
recognised) is dead-lettered `stale_action`.

The action intake (JSON, which reader a record is for, its signature, its parse) and the batch
loop are `claimstream.sanctions.intake`, shared with the cases steps.

Every record is handled inside its own `try`: a record that cannot be used becomes a dead
letter (reason, detail, origin topic/partition/offset, raw bytes) and the batch goes on. Each
key's state is returned once per batch (`writes`), to be written after the outputs. Inputs are
idempotent: an alert already indexed, a verdict equal to the one on record, an action id
already applied change nothing, so a redelivered batch produces nothing new (and what it does
produce again has the same deterministic ids).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from claimstream.model.events import KEY_KINDS
from claimstream.model.outputs import Alert, Command, DeadLetter, Subject
from claimstream.model.records import Record
from claimstream.model.timefmt import DAY
from claimstream.sanctions import state as st
from claimstream.sanctions.actions import (
    CaseDecision,
    CheckFeedback,
    ManualUnfreeze,
    Remediation,
    Verdict,
)
from claimstream.sanctions.codec import (
    action_from_dict,
    alert_from_dict,
    case_decision_from_dict,
    to_ts,
)
from claimstream.sanctions.intake import Json as Json
from claimstream.sanctions.intake import Refused as Refused
from claimstream.sanctions.intake import Verify as Verify
from claimstream.sanctions.intake import (
    each,
    json_object,
    parsed,
    read_action,
    verified,
)
from claimstream.sanctions.intake import frames as frames
from claimstream.sanctions.ladder import Escalation
from claimstream.sanctions.signatures import REFUSED, STALE

log = logging.getLogger(__name__)

ALERTS = "claimstream.alerts.v1"
ACTIONS = "claimstream.actions.v1"
REPARTITION_ALERT = "claimstream.repartition.alert"
REPARTITION_SUBJECT = "claimstream.repartition.subject"
NOTICES = "claimstream.sanctions.v1"

#: dead-letter reasons the sanctions steps add to the core's (`REFUSED`: signatures, replays)
REASONS = ("invalid_alert", "invalid_action", "invalid_envelope", "unknown_alert", *REFUSED)
#: alert-index keys holding a partition's per-rule review counts (alert ids never start so)
PRECISION_PREFIX = "~precision:"
#: alert-index keys remembering a check's feedback already counted (`~feedback:<action_id>`)
FEEDBACK_PREFIX = "~feedback:"
#: what an alert-index key that is no alert id starts with
NOT_AN_ALERT = "~"
#: action types the index leaves alone: case and report actions (`claimstream.cases`), which
#: travel on the same topic and are applied by the cases agent
CASE_ACTION_PREFIX = ("case_", "report_")
#: envelope types of a case's decision: one per alert on repartition.alert, one for the case's
#: subject on repartition.subject (`decision_forwards`)
CASE_VERDICT, CASE_DECISION = "case_verdict", "case_decision"

Load = Callable[[str], Any]


@dataclass(slots=True)
class Result:
    """What one batch (or one tick) produced, in processing order."""

    #: (topic, key, value) to publish before anything else
    forwards: list[tuple[str, str, bytes]] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    #: (key `kind:id`, notice dict) for claimstream.sanctions.v1
    notices: list[tuple[str, Json]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    #: key -> (state, partition): written once each, after the outputs
    writes: dict[str, tuple[Json, int]] = field(default_factory=dict)
    deletes: dict[str, int] = field(default_factory=dict)
    #: (rule, verdict) of every alert whose verdict changed (the reviews counter)
    verdicts: list[tuple[str, str]] = field(default_factory=list)
    #: (rule, handling) of every violation a check's feedback answered (counted once per
    #: feedback action id: `claimstream_check_overrides_total`)
    overrides: list[tuple[str, str]] = field(default_factory=list)


def subject_key(subject: Subject) -> str:
    return f"{subject.kind}:{subject.id}"


def parse_subject_key(key: str) -> Subject:
    kind, sep, id_ = key.partition(":")
    if not sep or not id_ or kind not in KEY_KINDS:
        raise Refused("invalid_envelope", f"key must be kind:id with a kind of {KEY_KINDS}")
    return Subject(kind, id_)


def _alert(data: Any, reason: str = "invalid_alert") -> Alert:
    if not isinstance(data, dict):
        raise Refused(reason, "alert must be an object")
    try:
        return alert_from_dict(data)
    except (ValueError, TypeError) as exc:
        raise Refused(reason, f"not an alert.v1 record: {exc}") from None


def _each(records: Iterable[Record], out: Result, one: Callable[[Record], None]) -> None:
    each(records, out.dead_letters, one)


class RouteProcessor:
    """alerts.v1 (keyed by subject id) -> repartition.alert keyed by alert_id."""

    def process(self, records: Iterable[Record]) -> Result:
        out = Result()

        def one(record: Record) -> None:
            alert = _alert(json_object(record.value, "invalid_alert"))
            assert record.value is not None
            out.forwards.append((REPARTITION_ALERT, alert.alert_id, record.value))

        _each(records, out, one)
        return out


class IndexProcessor:
    """Joins people's actions with the alerts they are about, then fans out to subjects.

    Table `alert-index`: `alert_id -> {"alert": <alert.v1>, "ts": occurred_at seconds,
    "verdict": null|confirmed|false_positive, "verdict_at": its `at` in seconds (absent before
    the first verdict), "remediated": bool}`; plus, per partition p,
    `~precision:p -> {rule: [confirmed, reviewed]}` (alerts whose latest verdict is confirmed,
    alerts reviewed at all). Entries are forgotten `horizon` seconds of event time after the
    alert (the partition's watermark: the latest alert or action time seen there).
    """

    def __init__(
        self, escalation: Escalation, load: Load, horizon: float, *, verify: Verify
    ) -> None:
        self.escalation = escalation
        self.load = load
        self.horizon = horizon
        self.verify = verify
        self.watermarks: dict[int, float] = {}

    def process(self, records: Iterable[Record]) -> Result:
        out = Result()
        states: dict[str, Json | None] = {}

        def get(key: str) -> Json | None:
            if key not in states:
                states[key] = self.load(key)
            return states[key]

        def one(record: Record) -> None:
            if record.topic == REPARTITION_ALERT:
                self._alert(record, get, states, out)
            else:
                self._action(record, get, states, out)

        _each(records, out, one)
        return out

    def _seen(self, partition: int, ts: float) -> None:
        wm = self.watermarks.get(partition)
        if wm is None or ts > wm:
            self.watermarks[partition] = ts

    def _alert(self, record: Record, get: Load, states: dict[str, Any], out: Result) -> None:
        data = json_object(record.value, "invalid_alert")
        if data.get("type") == CASE_VERDICT:
            self._case_verdict(data, record.partition, get, states, out)
            return
        alert = _alert(data)
        ts = to_ts(alert.occurred_at)
        self._seen(record.partition, ts)
        if get(alert.alert_id) is not None:
            return  # already indexed and fanned out (a redelivery or a repeated alert)
        entry = {"alert": data, "ts": ts, "verdict": None, "remediated": False}
        states[alert.alert_id] = entry
        out.writes[alert.alert_id] = (entry, record.partition)
        envelope = orjson.dumps({"type": "alert", "alert": data})
        for subject in self.escalation.subjects(alert):
            out.forwards.append((REPARTITION_SUBJECT, subject_key(subject), envelope))

    def _action(self, record: Record, get: Load, states: dict[str, Any], out: Result) -> None:
        data = read_action(record.value, self.verify, ours=_sanctions_action, refuse_garbage=True)
        if data is None:
            return  # a case action: the cases agent's (claimstream.cases), verified there
        action = parsed(action_from_dict, data, "invalid_action", "an action.v1 record")
        self._seen(record.partition, to_ts(action.at))
        if isinstance(action, CheckFeedback):
            self._feedback(action, record.partition, get, states, out)
            return
        if isinstance(action, ManualUnfreeze):
            key = f"{action.scope.kind}:{action.scope.id}"
            envelope = orjson.dumps({"type": "unfreeze", "action": data})
            out.forwards.append((REPARTITION_SUBJECT, key, envelope))
            return
        entry = _known(get, action.alert_id)
        if isinstance(action, Verdict):
            if not self._verdict(entry, action, record.partition, get, states, out):
                return
            kind = "review"
        else:
            if entry["remediated"]:
                return
            entry["remediated"] = True
            kind = "remediation"
        out.writes[action.alert_id] = (entry, record.partition)
        self._fan_out(entry, {"type": kind, "action": data, "alert": entry["alert"]}, out)

    def _case_verdict(
        self, envelope: Json, partition: int, get: Load, states: dict[str, Any], out: Result
    ) -> None:
        """A case's decision on one of its alerts (`decision_forwards`): counted and sent to
        the alert's subjects as a reviewer's verdict would be, the decision's signed record
        with it (verified here, and again by the subjects)."""
        decision, data = _decision(envelope, self.verify)
        alert_id = envelope.get("alert_id")
        verdict = decision.as_verdict(alert_id) if isinstance(alert_id, str) else None
        if verdict is None:
            raise Refused("invalid_envelope", "the decision gives this alert no verdict")
        self._seen(partition, to_ts(decision.at))
        entry = _known(get, verdict.alert_id)
        if not self._verdict(entry, verdict, partition, get, states, out):
            return
        entry["case_id"] = decision.case_id
        out.writes[verdict.alert_id] = (entry, partition)
        body = {"type": CASE_VERDICT, "alert_id": verdict.alert_id, "action": data}
        self._fan_out(entry, body | {"alert": entry["alert"]}, out)

    def _verdict(
        self,
        entry: Json,
        verdict: Verdict,
        partition: int,
        get: Load,
        states: dict[str, Any],
        out: Result,
    ) -> bool:
        """Record a verdict on the alert of `entry` and count it; False when it changes
        nothing (the verdict on record already, or older than it)."""
        previous = entry["verdict"]
        if previous == verdict.verdict:
            return False  # the verdict on record already: nothing changes
        at = to_ts(verdict.at)
        if entry.get("verdict_at") is not None and at < entry["verdict_at"]:
            return False  # older than the verdict on record (a redelivery or a replay)
        rule = str(entry["alert"].get("rule", ""))
        self._count(partition, rule, previous, verdict.verdict, get, states, out)
        entry["verdict"] = verdict.verdict
        entry["verdict_at"] = at
        out.verdicts.append((rule, verdict.verdict))
        return True

    def _fan_out(self, entry: Json, envelope: Json, out: Result) -> None:
        raw = orjson.dumps(envelope)
        for subject in self.escalation.subjects(_alert(entry["alert"])):
            out.forwards.append((REPARTITION_SUBJECT, subject_key(subject), raw))

    def _feedback(
        self, action: CheckFeedback, partition: int, get: Load, states: dict[str, Any], out: Result
    ) -> None:
        """Count a check's feedback once: its id is remembered for the horizon."""
        key = f"{FEEDBACK_PREFIX}{action.action_id}"
        if get(key) is not None:
            return  # counted already (a redelivery, or the same answer published twice)
        entry = {"ts": to_ts(action.at), "check_id": action.check_id}
        states[key] = entry
        out.writes[key] = (entry, partition)
        out.overrides.extend((h.rule, h.handling) for h in action.handlings)

    def _count(
        self,
        partition: int,
        rule: str,
        previous: str | None,
        verdict: str,
        get: Load,
        states: dict[str, Any],
        out: Result,
    ) -> None:
        key = f"{PRECISION_PREFIX}{partition}"
        counts = get(key)
        if counts is None:
            counts = states[key] = {}
        row = counts.setdefault(rule, [0, 0])
        row[:] = count_verdict(row, previous, verdict)
        out.writes[key] = (counts, partition)

    def sweep(self, keys: Iterable[str], partition_of: Callable[[str], int]) -> dict[str, int]:
        """Alert entries older than the horizon behind their partition's watermark."""
        deletes: dict[str, int] = {}
        for key in keys:
            if key.startswith(PRECISION_PREFIX):
                continue
            partition = partition_of(key)
            wm = self.watermarks.get(partition)
            if wm is None:
                continue
            entry = self.load(key)
            if entry is not None and entry["ts"] <= wm - self.horizon:
                deletes[key] = partition
        return deletes


def count_verdict(row: list[int], previous: str | None, verdict: str) -> list[int]:
    """`[confirmed, reviewed]` after an alert's verdict went from `previous` to `verdict`."""
    confirmed, reviewed = row
    if previous is None:
        reviewed += 1
    elif previous == "confirmed":
        confirmed -= 1
    if verdict == "confirmed":
        confirmed += 1
    return [confirmed, reviewed]


def precision(counts: Iterable[Json | None]) -> dict[str, tuple[int, int]]:
    """Per rule `(confirmed, reviewed)` summed over partitions' `~precision:p` states."""
    total: dict[str, tuple[int, int]] = {}
    for state in counts:
        for rule, (confirmed, reviewed) in (state or {}).items():
            c, r = total.get(rule, (0, 0))
            total[rule] = (c + confirmed, r + reviewed)
    return total


# -- per subject ---------------------------------------------------------------------------------
#
# A state-subject value: {"e": <Escalation state>, "al": {alert_id: <alert.v1> + "status"
# (open|confirmed|false_positive) + "remediated"}}. "al" holds every alert naming the subject
# (any severity) for as long as the ladder keeps the subject's violations, newest
# `max_alerts`, for the API.


def new_subject_state(subject: Subject) -> Json:
    return {"e": st.new_state(subject), "al": {}}


def subject_is_empty(state: Json) -> bool:
    return st.is_empty(state["e"]) and not state["al"]


class SubjectProcessor:
    def __init__(
        self, escalation: Escalation, load: Load, max_alerts: int = 1000, *, verify: Verify
    ) -> None:
        self.escalation = escalation
        self.load = load
        self.max_alerts = max_alerts
        self.verify = verify
        #: latest input time seen per partition of repartition.subject
        self.watermarks: dict[int, float] = {}

    def process(self, records: Iterable[Record]) -> Result:
        out = Result()
        states: dict[str, Json] = {}

        def one(record: Record) -> None:
            key = (record.key or b"").decode("utf-8", "replace")
            subject = parse_subject_key(key)
            envelope = json_object(record.value, "invalid_envelope")
            state = states.get(key)
            if state is None:
                state = self.load(key) or new_subject_state(subject)
                states[key] = state
            ts = self._apply(state, envelope, key, out)
            wm = self.watermarks.get(record.partition)
            if wm is None or ts > wm:
                self.watermarks[record.partition] = ts
            self._settle(key, state, record.partition, out)

        _each(records, out, one)
        return out

    def _apply(self, state: Json, envelope: Json, key: str, out: Result) -> float:
        esc = self.escalation
        kind = envelope.get("type")
        e = state["e"]
        if kind == "unfreeze":
            action = _action(envelope, ManualUnfreeze, self.verify)
            ts = to_ts(action.at)
            self._fresh(e, action.at)
            decisions = esc.on_unfreeze(e, action, ts)
        elif kind == CASE_DECISION:
            decision, _ = _decision(envelope, self.verify)
            ids = envelope.get("alert_ids")
            if not isinstance(ids, list) or not all(isinstance(a, str) for a in ids):
                raise Refused("invalid_envelope", "alert_ids must be a list of alert ids")
            ts = to_ts(decision.at)
            self._fresh(e, decision.at)
            decisions = esc.on_case_decision(e, decision, tuple(ids), ts)
        elif kind in ("alert", "review", "remediation", CASE_VERDICT):
            alert = _alert(envelope.get("alert"), "invalid_envelope")
            if kind == CASE_VERDICT:
                decision, _ = _decision(envelope, self.verify)
                verdict = decision.as_verdict(alert.alert_id)
                if verdict is None:
                    raise Refused("invalid_envelope", "the decision gives this alert no verdict")
                ts = to_ts(verdict.at)
                decisions = esc.on_verdict(e, alert, verdict, ts)
                held = state["al"].get(alert.alert_id)
                if held is not None:
                    held["status"] = verdict.verdict
            elif kind == "alert":
                ts = to_ts(alert.occurred_at)
                decisions = esc.on_alert(e, alert, ts)
                self._hold(state, envelope["alert"], ts)
            elif kind == "review":
                verdict = _action(envelope, Verdict, self.verify)
                ts = to_ts(verdict.at)
                decisions = esc.on_verdict(e, alert, verdict, ts)
                held = state["al"].get(alert.alert_id)
                if held is not None:
                    held["status"] = verdict.verdict
            else:
                remediation = _action(envelope, Remediation, self.verify)
                ts = to_ts(remediation.at)
                self._fresh(e, remediation.at)
                decisions = esc.on_remediation(e, remediation, ts)
                held = state["al"].get(alert.alert_id)
                if held is not None:
                    held["remediated"] = True
        else:
            raise Refused(
                "invalid_envelope",
                "type must be alert, review, remediation, unfreeze, case_verdict or "
                f"case_decision, got {kind!r}",
            )
        self._decided(key, decisions, out)
        return ts

    def _fresh(self, e: Json, at: str) -> None:
        """Refuse a manual action the subject could no longer recognise as a repeat: its
        applied action ids are kept `manual_retention_days` behind its event time."""
        keep = self.escalation.settings.manual_retention_days * DAY
        if e["wm"] is not None and to_ts(at) < e["wm"] - keep:
            raise Refused(
                STALE,
                f"the action takes effect at {at}, more than {keep / DAY:g} days before the "
                "subject's event time: too old to tell from a replay",
            )

    def _hold(self, state: Json, alert: Json, ts: float) -> None:
        held: dict[str, Json] = state["al"]
        alert_id = alert["alert_id"]
        if alert_id in held:
            return
        kind = state["e"]["kind"]
        if ts <= state["e"]["wm"] - self.escalation.keep_seconds(kind):
            return
        held[alert_id] = {**alert, "status": "open", "remediated": False}
        if len(held) > self.max_alerts:
            oldest = min(held, key=lambda a: (to_ts(held[a]["occurred_at"]), a))
            del held[oldest]

    @staticmethod
    def _decided(key: str, decisions: Iterable[Any], out: Result) -> None:
        for decision in decisions:
            if isinstance(decision, Command):
                out.commands.append(decision)
            else:
                out.notices.append((key, decision.to_dict()))

    def _settle(self, key: str, state: Json, partition: int, out: Result) -> None:
        """Forget the API's alerts that aged out; write the state, or delete it when empty."""
        e = state["e"]
        if e["wm"] is not None:
            cutoff = e["wm"] - self.escalation.keep_seconds(e["kind"])
            held: dict[str, Json] = state["al"]
            for alert_id in [a for a, v in held.items() if to_ts(v["occurred_at"]) <= cutoff]:
                del held[alert_id]
        if subject_is_empty(state):
            out.writes.pop(key, None)
            out.deletes[key] = partition
        else:
            out.deletes.pop(key, None)
            out.writes[key] = (state, partition)

    def tick(self, keys: Iterable[str], now: float, partition_of: Callable[[str], int]) -> Result:
        """Advance `keys` to event time `now`: freezes expire (UNFREEZE), old alerts age out,
        grades rise. A state that only moved its clock is not written."""
        out = Result()
        for key in keys:
            try:
                state = self.load(key)
                if state is None:
                    continue
                e = state["e"]
                if e["wm"] is not None and now <= e["wm"]:
                    continue
                before = orjson.dumps(state)
                clocks = _clocks(e)
                decisions = self.escalation.tick(e, now)
                self._decided(key, decisions, out)
                moved = _clocks(e)
                _set_clocks(e, clocks)
                unchanged = not decisions and orjson.dumps(state) == before
                _set_clocks(e, moved)
                if unchanged and not self._ages(state):
                    continue  # only the clock moved: not worth a changelog record
                self._settle(key, state, partition_of(key), out)
            except Exception as exc:  # noqa: BLE001  (one broken state must not stop the others)
                # the partition, not the key: a key is a subject's id
                log.error(
                    "sanctions tick failed for a subject of partition %d\n%s",
                    partition_of(key),
                    frames(exc),
                )
        return out

    def _ages(self, state: Json) -> bool:
        e = state["e"]
        cutoff = e["wm"] - self.escalation.keep_seconds(e["kind"])
        return any(to_ts(v["occurred_at"]) <= cutoff for v in state["al"].values())


def _clocks(e: Json) -> tuple[Any, Any]:
    """The parts of an escalation state that move with every tick: its event time and an
    institution's `graded_to` (the 12-month cutoff of the last grade look)."""
    return e["wm"], e["g"][2] if "g" in e else None


def _set_clocks(e: Json, clocks: tuple[Any, Any]) -> None:
    e["wm"] = clocks[0]
    if "g" in e:
        e["g"][2] = clocks[1]


def _sanctions_action(data: Json) -> bool:
    """Whether an action record is the sanctions' (not a case action, the cases agent's)."""
    return not str(data.get("type", "")).startswith(CASE_ACTION_PREFIX)


def _known(get: Load, alert_id: str) -> Json:
    entry: Json | None = get(alert_id)
    if entry is None:
        raise Refused(
            "unknown_alert",
            f"alert {alert_id} is not known here (never seen, older than the sanctions horizon, "
            "or the action was not keyed by its alert_id)",
        )
    return entry


def _decision(envelope: Json, verify: Verify) -> tuple[CaseDecision, Json]:
    """The verified case decision an envelope carries, and its signed record."""
    data = envelope.get("action")
    if not isinstance(data, dict):
        raise Refused("invalid_envelope", "action must be an object")
    verified(verify, data)
    decision = parsed(case_decision_from_dict, data, "invalid_envelope", "a case_decide record")
    return decision, data


def decision_forwards(
    action: Json, subject: Subject, alert_ids: Iterable[str]
) -> list[tuple[str, str, bytes]]:
    """What a case's decision sends the sanctions (the cases step publishes it once, when the
    decision is applied): to each of the case's alerts that the decision gives a verdict, a
    `case_verdict` on repartition.alert keyed by the alert (the index counts it for precision
    and passes it to the alert's subjects as a review); to the case's subject a
    `case_decision` on repartition.subject (its step on the ladder). Each carries the signed
    `case_decide` record `action`; the alert ids and the subject come from the case."""
    decision = case_decision_from_dict(action)
    ids = list(alert_ids)
    out: list[tuple[str, str, bytes]] = []
    for alert_id in ids:
        if decision.verdict_for(alert_id) is not None:
            body = {"type": CASE_VERDICT, "alert_id": alert_id, "action": action}
            out.append((REPARTITION_ALERT, alert_id, orjson.dumps(body)))
    if decision.outcome != "not_confirmed":  # else its alerts' verdicts say it all
        body = {"type": CASE_DECISION, "alert_ids": ids, "action": action}
        out.append((REPARTITION_SUBJECT, subject_key(subject), orjson.dumps(body)))
    return out


def _action(envelope: Json, expected: type[Any], verify: Verify) -> Any:
    data = envelope.get("action")
    if not isinstance(data, dict):
        raise Refused("invalid_envelope", "action must be an object")
    verified(verify, data)
    try:
        action = action_from_dict(data)
    except (ValueError, TypeError) as exc:
        raise Refused("invalid_envelope", f"not an action.v1 record: {exc}") from None
    if not isinstance(action, expected):
        raise Refused(
            "invalid_envelope", f"envelope type does not match action {data.get('type')!r}"
        )
    return action
