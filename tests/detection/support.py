"""A simulated stream on which every stateful rule alerts, for the detection tests.

`EAGER` lowers thresholds so a short stream trips every rule (the doctor and institution ones
included); `bent` makes some events fire the rules a benign simulated stream never triggers, and
`traced` gives some dispensings trace codes that are settled again.
"""

from __future__ import annotations

from typing import Any

from claimstream.detection.config import DetectionConfig
from claimstream.devtools.simulate import Simulator

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
    "missed_refill": {"enabled": "true", "grace_days": "1"},  # timers, fired at sweeps too
}


def eager_config(**engine: Any) -> DetectionConfig:
    config = DetectionConfig.default(**engine)
    for rule, changes in EAGER.items():
        config = config.with_rule_changes(rule, changes)
    return config


def bent(raw: dict[str, Any], n: int) -> dict[str, Any]:
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
        drug = {"code": "D1", "category": "drug", "quantity": 2, "unit_price": 50 + n % 7 * 40}
        diagnosis = ["J18.9", "I63.9"][n % 2]
        return {**raw, "visit_type": "inpatient", "diagnosis_code": diagnosis, "items": [drug]}
    if raw["event_type"] == "consultation":
        return {**raw, "mode": "online"}
    return raw


def traced(raw: dict[str, Any], n: int) -> dict[str, Any]:
    """Every third dispensing carries two trace codes from a small pool, so codes are settled
    again by other patients and institutions (`trace_code_reuse`)."""
    if raw["event_type"] != "dispense" or n % 3:
        return raw
    return {**raw, "trace_codes": [f"TA{n % 241:05d}", f"TB{(n * 7 + 3) % 1009:05d}"]}


def simulated(count: int, *, seed: int = 17, patients: int = 300) -> list[dict[str, Any]]:
    """`count` events over 75 days (three calendar months), in file order, bent and traced."""
    sim = Simulator(count, seed=seed, patients=patients, span_days=75, out_of_order=0.2)
    return [traced(bent(raw, n), n) for n, raw in enumerate(sim.events())]
