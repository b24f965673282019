"""The pre-settlement check's core (`claimstream.detection.check`): the stream's step on a copy.

The patient's state comes from a `Detector` fed the scenario's history (what the stream stores);
"the stream" is the same detector then fed the completing event.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from claimstream.detection.check import (
    DECISIONS,
    MAX_EVENTS,
    BadRequest,
    CheckRequest,
    Evaluation,
    Violation,
    decide,
    evaluate,
    freeze_scopes,
    read_request,
    rule_name,
)
from claimstream.detection.config import DetectionConfig
from claimstream.detection.decode import decode_event
from claimstream.detection.detector import Detector
from claimstream.devtools.simulate import Simulator
from claimstream.model.events import Event
from claimstream.rules import RULES
from claimstream.testing import FIXED_NOW, at, consultation, detector, dispense, with_rule
from tests.detection.check_scenarios import (
    PATIENT_RULES,
    PRICELESS,
    Scenario,
    benign,
    scenarios,
)
from tests.rules._catalogue import claim, item

SCENARIOS = scenarios()


def raw(ev: Event) -> dict[str, Any]:
    return dict(ev.raw)


def body(value: Any) -> bytes:
    return orjson.dumps(value)


def request_of(*events: Event, check_id: str = "chk-test") -> CheckRequest:
    return CheckRequest(check_id, events[0].patient_id, tuple(events))


def stored(sc: Scenario, config: DetectionConfig | None = None) -> tuple[Detector, Any]:
    """A detector fed the scenario's history, and the patient's state it holds."""
    det = detector(config)
    for ev in sc.history:
        result = det.process(ev)
        assert result.rejection is None, result.rejection
    return det, det.states.get(("patient", sc.patient))


def checked(det: Detector, state: Any, *events: Event) -> Evaluation:
    found = evaluate(det.engine, state, request_of(*events), FIXED_NOW)
    assert isinstance(found, Evaluation), found
    return found


# --- every rule: the check finds what the stream then alerts ---------------------------------


@pytest.mark.parametrize("rule", PATIENT_RULES)
def test_a_check_of_the_completing_event_reports_the_rules_violation(rule: str) -> None:
    det, state = stored(SCENARIOS[rule])
    found = checked(det, state, SCENARIOS[rule].completing)
    assert rule in [v.alert.rule for v in found.violations]
    (mine,) = [v for v in found.violations if v.alert.rule == rule]
    assert mine.rule_name != rule  # the regulations' name, e.g. 重复开药
    assert decide(found.violations, frozen=False) == mine.on_check


@pytest.mark.parametrize("rule", PATIENT_RULES)
def test_a_violation_carries_its_rules_amount_legal_basis_and_behaviour(rule: str) -> None:
    det, state = stored(SCENARIOS[rule])
    (mine,) = [v for v in checked(det, state, SCENARIOS[rule].completing).violations
               if v.alert.rule == rule]  # fmt: skip
    settings = det.engine.config.rules[rule]
    shown = mine.to_dict()
    assert (shown["legal_basis"], shown["behaviour"]) == (settings.legal_basis, settings.behaviour)
    assert shown["legal_basis"] and shown["behaviour"]
    if rule in PRICELESS:
        assert shown["amount"] is None
    else:
        assert shown["amount"] > 0
    assert shown["lines"] == [{"index": i, "code": c, "amount": a} for i, c, a in mine.lines]


def test_a_rules_on_check_setting_decides_what_its_violation_yields() -> None:
    sc = SCENARIOS["duplicate_exam"]
    assert decide(checked(*stored(sc), sc.completing).violations, frozen=False) == "warn"
    strict = with_rule("duplicate_exam", on_check="reject")
    assert decide(checked(*stored(sc, strict), sc.completing).violations, frozen=False) == "reject"


@pytest.mark.parametrize("rule", PATIENT_RULES)
def test_the_stream_then_alerts_exactly_the_checks_violations(rule: str) -> None:
    sc = SCENARIOS[rule]
    det, state = stored(sc)
    found = checked(det, state, sc.completing)
    streamed = det.process(sc.completing).alerts
    assert [a.to_dict() for a in streamed] == [v.alert.to_dict() for v in found.violations]


@pytest.mark.parametrize("rule", PATIENT_RULES)
def test_a_check_leaves_the_patients_state_as_it_was(rule: str) -> None:
    sc = SCENARIOS[rule]
    det, state = stored(sc)
    before = orjson.dumps(state)
    checked(det, state, sc.completing)
    checked(det, state, sc.completing)
    assert orjson.dumps(state) == before


def test_a_patient_the_stream_holds_nothing_of_is_checked_from_a_fresh_state() -> None:
    sc = SCENARIOS["excess_quantity"]
    found = checked(detector(), None, sc.completing)
    assert [v.alert.rule for v in found.violations] == ["excess_quantity"]


def test_a_list_of_one_patients_events_is_judged_in_order() -> None:
    sc = SCENARIOS["repeat_dispensing"]
    found = checked(detector(), None, *sc.events)
    assert [v.alert.rule for v in found.violations] == ["repeat_dispensing"]
    assert [o for _, o in found.outcomes] == ["checked", "checked"]


def test_a_benign_event_passes() -> None:
    found = checked(detector(), None, benign())
    assert found.violations == []
    assert decide(found.violations, frozen=False) == "pass"


def test_an_event_the_stream_already_processed_is_a_duplicate_and_finds_nothing() -> None:
    sc = SCENARIOS["repeat_dispensing"]
    det, _ = stored(sc)
    det.process(sc.completing)
    found = checked(det, det.states[("patient", sc.patient)], sc.completing)
    assert found.violations == []
    assert found.outcomes == [(sc.completing.event_id, "duplicate")]


def test_checks_change_no_later_alert_of_the_stream() -> None:
    """Every event of a simulated stream checked before it is processed: the stream's alerts are
    those of the same stream without checks, and no checked event became a duplicate."""
    sim = Simulator(3_000, seed=23, patients=150, span_days=40, inject_every=500)
    events = [e for e in map(decode_event, sim.events()) if isinstance(e, Event)]
    plain, checking = detector(), detector()
    expected, got = [], []
    for ev in events:
        expected += [a.to_dict() for a in plain.process(ev).alerts]
        state = checking.states.get(("patient", ev.patient_id))
        evaluate(checking.engine, state, request_of(ev), None)
        result = checking.process(ev)
        assert not result.duplicate
        got += [a.to_dict() for a in result.alerts]
    assert got == expected
    assert expected  # the simulated stream has abuse in it


# --- what is and is not evaluated -----------------------------------------------------------


def test_a_shadow_rule_reports_no_violation() -> None:
    sc = SCENARIOS["excess_quantity"]
    config = with_rule("excess_quantity", mode="shadow")
    det = detector(config)
    assert checked(det, None, sc.completing).violations == []


def test_doctor_and_institution_rules_are_not_part_of_the_check() -> None:
    config = with_rule("doctor_consultation_rate", min_consultations="3", window_minutes="600")
    det = detector(config)
    events = [consultation(f"c{i}", i / 10, patient_id=f"P{i}", doctor_id="D9") for i in range(3)]
    for ev in events[:-1]:
        det.process(ev)
    assert [a.rule for a in det.process(events[-1]).alerts] == ["doctor_consultation_rate"]
    found = checked(detector(config), None, events[-1])
    assert [v.alert.rule for v in found.violations] == []
    left_out = [cls for cls in RULES.values() if cls.name not in PATIENT_RULES]
    assert {cls.key_kind for cls in left_out if cls.Settings().enabled} == {
        "doctor",
        "institution",
        "trace_code",
    }


# --- refusals: the stream's dead-letter reasons -----------------------------------------------


def test_an_event_ahead_of_the_clock_is_refused_as_the_stream_would() -> None:
    ev = dispense("d", 0)
    found = evaluate(detector().engine, None, request_of(ev), ev.ts - 3600)
    assert isinstance(found, BadRequest)
    assert (found.reason, found.index, found.event_id) == ("future_timestamp", 0, "d")


def test_an_implausible_time_is_refused() -> None:
    config = DetectionConfig.default(earliest_event_time="2027-01-01T00:00:00+00:00")
    found = evaluate(detector(config).engine, None, request_of(dispense("d", 0)), None)
    assert isinstance(found, BadRequest)
    assert found.reason == "implausible_timestamp"


def test_a_late_event_is_refused_and_the_state_is_untouched() -> None:
    det = detector()
    det.process(dispense("new", 48))
    state = det.states[("patient", "P1")]
    before = orjson.dumps(state)
    found = evaluate(det.engine, state, request_of(dispense("old", 0)), None)
    assert isinstance(found, BadRequest)
    assert (found.reason, found.event_id) == ("late", "old")
    assert orjson.dumps(state) == before


# --- the request -----------------------------------------------------------------------------


def test_one_event_a_list_and_an_envelope_are_all_requests() -> None:
    one, two = SCENARIOS["repeat_dispensing"].events
    for given, count in (
        (raw(two), 1),
        ([raw(one), raw(two)], 2),
        ({"events": raw(two)}, 1),
        ({"check_id": "HIS-0001", "events": [raw(one), raw(two)]}, 2),
    ):
        request = read_request(body(given))
        assert isinstance(request, CheckRequest), given
        assert len(request.events) == count
        assert request.patient_id == one.patient_id
    named = read_request(body({"check_id": "HIS-0001", "events": [raw(two)]}))
    assert isinstance(named, CheckRequest) and named.check_id == "HIS-0001"


def test_the_check_id_is_derived_from_the_events_when_not_given() -> None:
    one, two = SCENARIOS["repeat_dispensing"].events
    first, again = (
        read_request(body([raw(one), raw(two)])),
        read_request(body([raw(one), raw(two)])),
    )
    other = read_request(body([raw(two)]))
    assert isinstance(first, CheckRequest) and isinstance(again, CheckRequest)
    assert isinstance(other, CheckRequest)
    assert first.check_id == again.check_id != other.check_id
    assert first.check_id.startswith("chk-")


GOOD = {
    "event_id": "e1",
    "event_type": "dispense",
    "occurred_at": at(0),
    "patient_id": "P1",
    "institution_id": "H1",
    "drug_code": "INS",
    "days_supply": 30,
    "quantity": 4,
}


@pytest.mark.parametrize(
    ("given", "reason", "index"),
    [
        (b"{not json", "not_json", None),
        (b"\xff\xfe", "not_utf8", None),
        (body([GOOD, 3]), "not_object", 1),
        (body({k: v for k, v in GOOD.items() if k != "patient_id"}), "missing_field", 0),
        (body({**GOOD, "days_supply": "thirty"}), "invalid_field", 0),
        (body({**GOOD, "occurred_at": "2026-03-01T08:00:00"}), "naive_timestamp", 0),
        (body({**GOOD, "event_type": "refund"}), "unknown_event_type", 0),
        (body([GOOD, {**GOOD, "event_id": "e2", "patient_id": "P2"}]), "invalid_request", 1),
        (body([]), "invalid_request", None),
        (body({"events": []}), "invalid_request", None),
        (body([GOOD] * (MAX_EVENTS + 1)), "invalid_request", None),
        (body({"check_id": "a b", "events": [GOOD]}), "invalid_request", None),
        (body({"check_id": 7, "events": [GOOD]}), "invalid_request", None),
        (body({"events": [GOOD], "patient": "P1"}), "invalid_request", None),
    ],
)
def test_a_request_is_refused_with_the_dead_letter_reason(
    given: bytes, reason: str, index: int | None
) -> None:
    refused = read_request(given)
    assert isinstance(refused, BadRequest)
    assert (refused.reason, refused.index) == (reason, index)
    assert refused.to_dict()["error"]


# --- decision, freezes, names ---------------------------------------------------------------


def _violation(on_check: str) -> Violation:
    (alert,) = [v.alert for v in checked(detector(), None, SCENARIOS["excess_quantity"].completing)
                .violations]  # fmt: skip
    return Violation(alert, on_check, "x")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("on_checks", "frozen", "decision"),
    [
        ((), False, "pass"),
        (("warn",), False, "warn"),
        (("warn", "hold"), False, "hold"),
        (("reject", "warn"), False, "reject"),
        (("hold", "warn", "hold"), False, "hold"),
        ((), True, "reject"),
        (("warn",), True, "reject"),
    ],
)
def test_the_decision_is_the_strictest_or_reject_when_frozen(
    on_checks: tuple[str, ...], frozen: bool, decision: str
) -> None:
    assert decide([_violation(o) for o in on_checks], frozen) == decision
    assert decision in DECISIONS


def test_freezes_are_looked_up_for_the_patients_drugs_its_doctors_and_institutions() -> None:
    events = [
        dispense("d1", 0, drug="INS", doctor_id="D1"),
        claim("c1", 1, inst="H2", items=[item("MET", "drug"), item("CT", "exam")]),
    ]
    assert freeze_scopes(events) == [
        ("patient", "P1", "INS"),
        ("patient", "P1", "MET"),
        ("doctor", "D1", None),
        ("institution", "H1", None),
        ("institution", "H2", None),
    ]
    assert freeze_scopes([consultation("c", 0)]) == [
        ("patient", "P1", None),
        ("institution", "H1", None),
    ]


def test_every_rule_has_a_name_in_the_regulations_words() -> None:
    for rule in RULES:
        assert rule_name(rule) not in ("", rule), rule
    assert rule_name("repeat_dispensing") == "重复开药"
    assert rule_name("no_such_rule") == "no_such_rule"


def test_a_custom_rule_in_enforce_mode_is_a_violation_with_its_on_check() -> None:
    rule = {
        "template": "window_count",
        "event_types": ["claim"],
        "filter": "event.total_amount > 1000.0",
        "window_days": 7,
        "min_count": 2,
        "mode": "enforce",
        "on_check": "hold",
    }
    config = DetectionConfig.default().with_custom({"high_cost_claims": rule})
    det = detector(config)
    det.process(claim("c1", 0, total=1500.0))
    found = checked(det, det.states.get(("patient", "P1")), claim("c2", 1, total=1500.0))
    assert [(v.alert.rule, v.on_check) for v in found.violations] == [("high_cost_claims", "hold")]
