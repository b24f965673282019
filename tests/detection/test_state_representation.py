"""How rules hold state in memory (tuples, for the garbage collector) must not change results.

Rows are written as tuples and read back from a changelog as lists (JSON has only arrays), so
every rule must give the same alerts, commands and state whichever it is handed.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import orjson

from claimstream.detection.config import DetectionConfig
from claimstream.detection.decode import decode_event
from claimstream.detection.detector import Detector
from claimstream.devtools.simulate import Simulator
from claimstream.model.events import Event
from claimstream.rules import RULES
from claimstream.rules.kit.rows import TUPLE_MAX
from claimstream.testing import FIXED_NOW

#: thresholds low enough that every stateful rule alerts on a short simulated stream
EAGER: dict[str, dict[str, str]] = {
    "chronic_polypharmacy": {"min_distinct_drugs": "2"},
    "diagnosis_cluster": {"min_patients": "2", "visit_types": "inpatient,outpatient"},
    "doctor_consultation_rate": {"min_consultations": "3", "window_minutes": "600"},
    "high_frequency_consultation": {"min_consultations": "4", "window_days": "10"},
    "institution_cost_jump": {"max_increase": "0.01"},
    "special_exam_repeat": {"min_exams": "1"},
    "duplicate_exam": {"window_days": "200"},
    "repeat_dispensing": {"early_refill_tolerance": "0.0"},
    "readmission_24h": {"max_gap_hours": "400"},
    "split_hospitalization": {"max_gap_days": "40"},
    "contraindication": {"interaction_min_age": "1"},
}


#: one custom rule per template (docs/custom-rules.md), eager too
CUSTOM: dict[str, dict[str, Any]] = {
    "custom_count": {
        "template": "window_count",
        "key": "doctor",
        "event_types": ["claim", "consultation"],
        "window_days": 5,
        "min_count": 3,
        "distinct_by": "event.patient_id",
        "mode": "enforce",
    },
    "custom_sum": {
        "template": "window_sum",
        "event_types": ["claim"],
        "value": "event.total_amount",
        "amount": "event.fund_amount",
        "window_days": 20,
        "min_sum": 500.0,
        "mode": "enforce",
    },
    "custom_duplicate": {
        "template": "duplicate",
        "event_types": ["dispense"],
        "value": "event.drug_code",
        "window_days": 30,
        "mode": "enforce",
    },
    "custom_sequence": {
        "template": "sequence",
        "event_types": ["consultation"],
        "event_types_b": ["claim"],
        "filter_a": "true",
        "filter_b": "event.total_amount > 100.0",
        "join": "a.institution_id == b.institution_id",
        "within_days": 3,
        "mode": "enforce",
    },
    "custom_absence": {  # timers, found on later events and at sweeps
        "template": "absence",
        "event_types": ["dispense"],
        "filter_a": "true",
        "filter_b": "true",
        "join": "a.drug_code == b.drug_code",
        "within_days": 10,
        "mode": "enforce",
    },
}


def eager_config() -> DetectionConfig:
    config = DetectionConfig.default(allowed_lateness_hours=6.0)
    for rule, changes in EAGER.items():
        config = config.with_rule_changes(rule, changes)
    return config.with_custom(CUSTOM)


def _bend(raw: dict[str, Any], n: int) -> dict[str, Any]:
    """Make some events fire the rules a benign simulated stream never triggers."""
    if raw["event_type"] == "dispense" and n % 4 == 0:
        drug, atc = [
            ("XB01AAH017A001010100007", "B01AA03"),  # warfarin
            ("XB01ACA057A012010100008", "B01AC06"),  # aspirin
        ][n % 8 // 4]
        return {**raw, "drug_code": drug, "atc_code": atc, "days_supply": 20}
    if raw["event_type"] == "claim" and n % 3 == 0:
        exam = {"code": "EX-MRI", "category": "exam", "quantity": 1, "unit_price": 900}
        return {**raw, "items": [{**exam, "special_exam": True}]}
    if raw["event_type"] == "claim" and n % 3 == 1:
        drug = {"code": "D1", "category": "drug", "quantity": 2, "unit_price": 50}
        diagnosis = ["J18.9", "I63.9"][n % 2]
        return {**raw, "visit_type": "inpatient", "diagnosis_code": diagnosis, "items": [drug]}
    return raw


def stream() -> list[Event]:
    sim = Simulator(6_000, seed=17, patients=300, span_days=75, out_of_order=0.2)
    events = [decode_event(_bend(raw, n)) for n, raw in enumerate(sim.events())]
    kept = [e for e in events if isinstance(e, Event)]
    return kept + kept[::50]  # and some redeliveries


def run(events: list[Event], *, through_json_every: int = 0) -> tuple[list[bytes], bytes]:
    det = Detector(eager_config(), clock=lambda: FIXED_NOW, sweep_every=1_000)
    out = []
    for n, event in enumerate(events, start=1):
        result = det.process(event)
        for item in (*result.alerts, *result.shadow_alerts, *result.commands):
            out.append(orjson.dumps(item.to_dict()))
        if result.rejection is not None:
            out.append(result.rejection.detail.encode())
        if through_json_every and n % through_json_every == 0:
            # as if every key's state had just been recovered from its changelog
            for key, state in det.states.items():
                det.states[key] = orjson.loads(orjson.dumps(state))
    det.sweep()
    return out, orjson.dumps(dict(sorted((f"{k}:{i}", s) for (k, i), s in det.states.items())))


def test_states_read_back_as_json_lists_give_the_same_alerts_commands_and_state() -> None:
    events = stream()
    alerts, state = run(events)
    assert run(events, through_json_every=7) == (alerts, state)
    fired = {orjson.loads(a)["rule"] for a in alerts if a.startswith(b"{")}
    assert {*EAGER, *CUSTOM} <= fired  # every stateful rule was exercised


def _sequences(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for inner in value.values():
            yield from _sequences(inner)
    elif isinstance(value, list | tuple):
        yield value
        for inner in value:
            yield from _sequences(inner)


def test_rule_state_in_memory_is_tuples_the_collector_can_ignore() -> None:
    det = Detector(eager_config(), clock=lambda: FIXED_NOW)
    for event in stream():
        det.process(event)
    for _ in range(3):  # a tuple is untracked once the tuples it holds are: one level a pass
        gc.collect()
    checked = 0
    for state in det.states.values():
        for key, rule_state in state["r"].items():
            if key.startswith("institution_cost_jump@"):
                continue  # running monthly sums, changed in place; one state per institution
            for seq in _sequences(rule_state):
                if isinstance(seq, list):  # only the long sequences of a few busy keys
                    assert len(seq) >= TUPLE_MAX
                else:
                    checked += 1
                    assert not gc.is_tracked(seq), seq
    assert checked > 1_000


def test_stateless_rules_keep_no_state() -> None:
    det = Detector(eager_config(), clock=lambda: FIXED_NOW)
    for event in stream()[:3_000]:
        det.process(event)
    stateless = {f"{name}@{rule.state_version}" for name, rule in RULES.items() if rule.stateless}
    assert stateless == {
        "combination_without_indication@1",
        "item_diagnosis_mismatch@1",
        "doctor_not_registered@1",
        "drg_high_multiplier@1",
        "excess_quantity@1",
        "gender_age_restriction@1",
        "institution_not_qualified@1",
    }
    assert not any(stateless & state["r"].keys() for state in det.states.values())
