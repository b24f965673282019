"""The pre-settlement check (事前/事中, the national platform's 3101/3102): the stream's own step,
on a copy of one patient's state, before the money moves.

`read_request` turns a request body into events through the stream's decoder (`decode_event`),
refusing what the stream would dead-letter with the same reason codes; `evaluate` runs
`Engine.step` for the patient kind on a deep copy of the patient's state as the stream stores
it (or a fresh state for a patient never seen), event after event, so a list of one patient's
events is judged as the stream would judge it had they been published in that order; `decide`
turns the violations and the freezes in force into the answer's decision.

What a check evaluates, and why:

* every enabled **patient-keyed** rule, stateless ones included (all of claimstream's stateless
  rules are patient-keyed), in `enforce` mode. A rule in `shadow` mode is being tried out: its
  findings reach no settlement system, so they are no violations of a check either;
* **not** the doctor- and institution-keyed rules (`doctor_consultation_rate`,
  `institution_cost_jump`, `diagnosis_cluster`). Their state lives on the workers owning the
  doctor's and the institution's partitions of the repartition topics, and reaches their rules
  only through the event-time alignment of docs/time.md, which releases an event about the
  allowed lateness (1 h by default) after it happened: a synchronous answer from them would
  judge a claim against state that is up to an hour behind, in an order the stream will not
  use, and would add a second worker's round trip (and its failure) to every check. They judge
  patterns over many patients and months (a doctor's rate per hour, an institution's monthly
  average, a cluster of diagnoses), not the claim in front of the clinician, and issue no
  command a settlement system acts on. What they lead to does reach the check: a FREEZE or
  SUSPEND of the doctor or institution is in the freeze registry, and a check finding one in
  force answers `reject`.

A check changes nothing: the copy is dropped, so neither the patient's rule state nor its dedup
set (`seen`) nor its watermarks move, and an event checked first and published later is
judged by the stream exactly as if it had never been checked (its own id is no duplicate).
The copy is `orjson.loads(orjson.dumps(state))`: a patient's state is JSON-shaped and small
(on a simulated month, 1.1 kB median, 3.1 kB at most), copied in 4 to 10 µs, against 34 to
104 µs for `copy.deepcopy` (measured in the commit); rows come back as lists instead of
tuples, which every rule reads alike (tests/detection/test_state_representation.py).

The decision is the strictest of the violations' `on_check` (a rule setting: `warn`, `hold` or
`reject`), `reject` whenever a freeze or suspension is in force for the patient (for a drug of
the request or entirely), its doctor or its institution, and `pass` when there is nothing.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Final, Literal

import orjson

from claimstream.detection.decode import decode_event
from claimstream.detection.engine import Engine
from claimstream.model.config import OnCheck
from claimstream.model.events import Claim, Dispense, Event, KeyKind
from claimstream.model.ids import id_problem
from claimstream.model.outputs import Alert, Line, stable_id
from claimstream.model.rejection import Rejection
from claimstream.rules import RULES
from claimstream.rules.base import State

Decision = Literal["pass", "warn", "hold", "reject"]
#: the decisions from the mildest to the strictest
DECISIONS: Final[tuple[Decision, ...]] = ("pass", "warn", "hold", "reject")
#: what one event (or a list of them) of a check yields: evaluated, or already seen by the
#: stream (a duplicate: judged when it was published, so nothing new is found)
Outcome = Literal["checked", "duplicate"]
#: most events one check may carry (a claim with its dispensings, a stay's events)
MAX_EVENTS: Final = 100
#: the reason of a request that is not a check at all (no events, two patients, ...); every
#: other refusal carries the dead-letter reason the stream would give the event
INVALID_REQUEST: Final = "invalid_request"
#: the only kind of key a check evaluates (see the module doc)
KIND: Final[KeyKind] = "patient"


@dataclass(frozen=True, slots=True)
class BadRequest:
    """Why a check cannot be answered: the dead-letter reason the stream would give the first
    event it refuses (with the event's position in the request), or `invalid_request`."""

    reason: str
    detail: str
    index: int | None = None
    event_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.detail, "reason": self.reason}
        if self.index is not None:
            body["index"] = self.index
        if self.event_id is not None:
            body["event_id"] = self.event_id
        return body


@dataclass(frozen=True, slots=True)
class CheckRequest:
    """A request that decoded: one patient's events, in the order given."""

    check_id: str
    patient_id: str
    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class Violation:
    """An alert the stream would emit for the checked events, as a check reports it: the
    alert's own amount, legal basis, behaviour and lines (the stream's alert carries the same),
    and what its rule's `on_check` setting makes of it."""

    alert: Alert
    on_check: OnCheck
    rule_name: str

    @property
    def amount(self) -> float | None:
        return self.alert.amount

    @property
    def lines(self) -> tuple[Line, ...]:
        return self.alert.lines

    def to_dict(self) -> dict[str, Any]:
        alert = self.alert
        return {
            "rule": alert.rule,
            "rule_name": self.rule_name,
            "severity": alert.severity,
            "amount": alert.amount,
            "legal_basis": alert.legal_basis,
            "behaviour": alert.behaviour,
            "message": alert.message,
            "event_ids": list(alert.event_ids),
            "lines": [
                {"index": index, "code": code, "amount": amount}
                for index, code, amount in alert.lines
            ],
            "alert_id": alert.alert_id,
            "decision": self.on_check,
            "subject": {"kind": alert.subject.kind, "id": alert.subject.id},
            "details": alert.details,
        }


@dataclass(slots=True)
class Evaluation:
    """What the stream's step found for the checked events, on a copy."""

    violations: list[Violation] = field(default_factory=list)
    #: (event id, outcome) of each event, in request order
    outcomes: list[tuple[str, Outcome]] = field(default_factory=list)
    rule_version: int = 0


# --- the request ---------------------------------------------------------------------------


def read_request(raw: bytes) -> CheckRequest | BadRequest:
    """The events of a request body, or why it is refused.

    The body is one event object, a list of one patient's events, or `{"check_id"?: ID,
    "events": event | [events]}`. Each event goes through the stream's decoder, so it is
    refused with the dead-letter reason the stream would give it. `check_id`, when not given,
    is derived from the patient and the event ids (the same events give the same id).
    """
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return BadRequest("not_utf8", "the request body is not valid UTF-8")
        return BadRequest("not_json", f"the request body is not JSON: {exc}")
    check_id: Any = None
    if isinstance(body, dict) and "events" in body:
        unknown = sorted(set(body) - {"events", "check_id"})
        if unknown:
            return _invalid(f"unknown field {unknown[0]!r} (a check is {{check_id?, events}})")
        check_id, body = body.get("check_id"), body["events"]
    items: list[Any] = body if isinstance(body, list) else [body]
    if not items:
        return _invalid("no events to check")
    if len(items) > MAX_EVENTS:
        return _invalid(f"{len(items)} events; a check carries at most {MAX_EVENTS}")
    events: list[Event] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            return BadRequest(
                "not_object", f"expected a JSON object, got {type(item).__name__}", index
            )
        event = decode_event(item)
        if isinstance(event, Rejection):
            return BadRequest(event.reason, event.detail, index, _event_id(item))
        events.append(event)
    patient = events[0].patient_id
    for index, event in enumerate(events):
        if event.patient_id != patient:
            return BadRequest(
                INVALID_REQUEST,
                f"the events of one check must be of one patient (events 0 and {index} name two)",
                index,
                event.event_id,
            )
    if check_id is None:
        check_id = stable_id("chk", patient, *(e.event_id for e in events))
    elif not isinstance(check_id, str) or id_problem("check_id", check_id) is not None:
        problem = id_problem("check_id", check_id) if isinstance(check_id, str) else None
        return _invalid(problem or "check_id must be a string")
    return CheckRequest(check_id, patient, tuple(events))


def _invalid(detail: str) -> BadRequest:
    return BadRequest(INVALID_REQUEST, detail)


def _event_id(item: Mapping[str, Any]) -> str | None:
    value = item.get("event_id")
    return value if isinstance(value, str) and id_problem("event_id", value) is None else None


# --- the evaluation ------------------------------------------------------------------------


def copy_state(state: State) -> State:
    """A deep copy of a key's state (JSON-shaped), to step without changing the original."""
    copied: State = orjson.loads(orjson.dumps(state))
    return copied


def evaluate(
    engine: Engine, state: State | None, request: CheckRequest, now: float | None
) -> Evaluation | BadRequest:
    """Step `request.events` through `engine` for the patient, on a copy of `state`.

    `state` is the patient's state as the stream stores it (None: a patient the stream holds
    nothing of); it is not changed. `now` (POSIX seconds) is the clock the stream judges
    `future_timestamp` by (None: not judged). An event the stream would refuse (implausible,
    ahead of the clock, late) refuses the whole check with its dead-letter reason.
    """
    for index, event in enumerate(request.events):
        refused = engine.implausible(event)
        if refused is None and now is not None:
            refused = engine.in_future(event, now)
        if refused is not None:
            return BadRequest(refused.reason, refused.detail, index, event.event_id)
    work = engine.new_state() if state is None else copy_state(state)
    out = Evaluation(rule_version=engine.config.version)
    for index, event in enumerate(request.events):
        if not engine.routes(KIND, event):
            out.outcomes.append((event.event_id, "checked"))
            continue
        result = engine.step(KIND, work, event)
        if result.duplicate:
            out.outcomes.append((event.event_id, "duplicate"))
            continue
        if result.rejection is not None:
            rejection = result.rejection
            return BadRequest(rejection.reason, rejection.detail, index, event.event_id)
        out.outcomes.append((event.event_id, "checked"))
        out.violations.extend(violation(engine, alert) for alert in result.alerts)
    return out


def violation(engine: Engine, alert: Alert) -> Violation:
    """`alert` as a check's violation, with its rule's `on_check` and name."""
    settings = engine.config.settings(alert.rule)
    return Violation(alert=alert, on_check=settings.on_check, rule_name=rule_name(alert.rule))


_NAME = re.compile(r"\s*[a-z0-9_]+ \(([^)]+)\)")


@cache
def rule_name(rule: str) -> str:
    """The rule's name as the regulations call it (重复开药 for `repeat_dispensing`): the
    parenthesis after the rule id on the first line of its module's docstring; the id itself
    for a rule whose docstring names none."""
    cls = RULES.get(rule)
    doc = sys.modules[cls.__module__].__doc__ if cls is not None else None
    found = _NAME.match(doc or "")
    return found.group(1).strip() if found else rule


# --- the decision --------------------------------------------------------------------------


def decide(violations: Iterable[Violation], frozen: bool) -> Decision:
    """`reject` when a freeze is in force, else the strictest `on_check` of the violations,
    else `pass`."""
    if frozen:
        return "reject"
    strictest = 0
    for found in violations:
        strictest = max(strictest, DECISIONS.index(found.on_check))
    return DECISIONS[strictest]


def freeze_scopes(events: Sequence[Event]) -> list[tuple[KeyKind, str, str | None]]:
    """(kind, id, drug code or None) to look up in the freeze registry for `events`: the
    patient for each drug dispensed or claimed (a lookup with a drug also answers for the
    whole patient), else the patient; every doctor and institution named, whole."""
    drugs: dict[str, None] = {}
    for event in events:
        body = event.body
        if isinstance(body, Dispense):
            drugs[body.drug_code] = None
        elif isinstance(body, Claim):
            drugs.update((item.code, None) for item in body.items if item.category == "drug")
    patient = events[0].patient_id
    scopes: dict[tuple[KeyKind, str, str | None], None] = {}
    for drug in drugs or (None,):
        scopes[("patient", patient, drug)] = None
    for event in events:
        if event.doctor_id is not None:
            scopes[("doctor", event.doctor_id, None)] = None
        scopes[("institution", event.institution_id, None)] = None
    return list(scopes)


def answer(
    request: CheckRequest,
    evaluation: Evaluation,
    freezes: Sequence[Mapping[str, Any]],
    evaluated_at: str,
) -> dict[str, Any]:
    """The body of a check's answer (docs/check.md, the OpenAPI document's `CheckAnswer`)."""
    return {
        "check_id": request.check_id,
        "decision": decide(evaluation.violations, bool(freezes)),
        "violations": [v.to_dict() for v in evaluation.violations],
        "freezes": [dict(f) for f in freezes],
        "rule_version": evaluation.rule_version,
        "evaluated_at": evaluated_at,
        "events": [{"event_id": e, "outcome": o} for e, o in evaluation.outcomes],
    }
