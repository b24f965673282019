"""For every patient-keyed rule (stateless ones included): a history and the event completing a
case of it, for the pre-settlement check's tests (pure, and against a live worker).

Each scenario is about its own patient (`{patient}-{rule}`) with its own event ids, so all of
them can run through one worker without touching each other. Times are hours after
`claimstream.testing.T0`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from claimstream.model.events import Event
from claimstream.rules import RULES
from claimstream.testing import DAY_H, event
from tests.rules._catalogue import claim, item

#: the rules a check evaluates with the default configuration: every rule keyed by patient
#: and on by default (the credential rules are off until a region loads its registry)
PATIENT_RULES = sorted(
    name for name, cls in RULES.items() if cls.key_kind == "patient" and cls.Settings().enabled
)
#: the patient rules whose amount formula is `null` by design (docs/rules.md: consultations and
#: stay events carry no price); every other scenario's violation has an amount
PRICELESS = frozenset({"high_frequency_consultation", "readmission_24h", "split_hospitalization"})


@dataclass(frozen=True)
class Scenario:
    rule: str
    patient: str
    history: tuple[Event, ...]
    completing: Event

    @property
    def events(self) -> tuple[Event, ...]:
        return (*self.history, self.completing)


def scenarios(patient: str = "P", *, hours: float = 0.0) -> dict[str, Scenario]:
    """Rule -> its scenario, every event `hours` later than the rules' own tests put it."""
    found: dict[str, Scenario] = {}

    def add(rule: str, build: Any) -> None:
        pid = f"{patient}-{rule.replace('_', '-')}"
        prefix = f"{pid}-"
        made: Sequence[Event] = build(pid, prefix)
        found[rule] = Scenario(rule, pid, tuple(made[:-1]), made[-1])

    def dispense(pid: str, eid: str, h: float, **fields: Any) -> Event:
        fields.setdefault("institution_id", "H1")
        fields.setdefault("drug_code", "INS")
        fields.setdefault("days_supply", 30)
        fields.setdefault("quantity", 4)
        fields.setdefault("chronic", True)
        fields.setdefault("unit_price", 12.5)  # so the dispensing rules' amounts are not null
        return event(eid, "dispense", h + hours, patient_id=pid, **fields)

    def stay(kind: str, pid: str, eid: str, h: float, **fields: Any) -> Event:
        fields.setdefault("diagnosis_code", "J18.9")
        fields.setdefault("institution_id", "H1")
        return event(eid, kind, h + hours, patient_id=pid, **fields)

    def billed(pid: str, eid: str, h: float, **fields: Any) -> Event:
        return claim(eid, h + hours, patient_id=pid, **fields)

    add(
        "repeat_dispensing",
        lambda p, x: [
            dispense(p, f"{x}a", 0, institution_id="H1"),
            dispense(p, f"{x}b", 2 * DAY_H, institution_id="H2"),
        ],
    )
    add(
        "high_frequency_consultation",
        lambda p, x: [
            event(f"{x}c{i:02d}", "consultation", i + hours, patient_id=p, mode="online")
            for i in range(20)
        ],
    )
    add(
        "readmission_24h",
        lambda p, x: [
            stay("admission", p, f"{x}a1", 0, admission_id="S1"),
            stay("discharge", p, f"{x}d1", 96, admission_id="S1"),
            stay("admission", p, f"{x}a2", 106, admission_id="S2", institution_id="H2",
                 diagnosis_code="K35.8"),
        ],
    )  # fmt: skip
    add(
        "split_hospitalization",
        lambda p, x: [
            stay("admission", p, f"{x}a1", 0, admission_id="S1", diagnosis_code="I21.000"),
            stay("discharge", p, f"{x}d1", 48, admission_id="S1", diagnosis_code="I21.000"),
            stay("admission", p, f"{x}a2", 78, admission_id="S2", institution_id="H2",
                 diagnosis_code="I21.9"),
        ],
    )  # fmt: skip
    ct = item("CT-HEAD", special=True, price=420.0)
    add(
        "special_exam_repeat",
        lambda p, x: [
            billed(p, f"{x}c{i}", i * DAY_H, doctor_id="D1", items=[ct]) for i in range(3)
        ],
    )
    add(
        "chronic_polypharmacy",
        lambda p, x: [
            dispense(p, f"{x}e{i}", t, drug_code=f"DRUG{i}", institution_id=f"H{i}")
            for i, t in enumerate([0, 6, 12, 18, 30])
        ],
    )
    add(
        "excess_quantity",
        lambda p, x: [dispense(p, f"{x}e", 0, days_supply=45)],
    )
    glucose = item("LAB-GLU", "lab", price=35.0)
    add(
        "duplicate_exam",
        lambda p, x: [
            billed(p, f"{x}c1", 0, inst="H1", items=[glucose]),
            billed(p, f"{x}c2", 24, inst="H2", items=[glucose]),
        ],
    )
    add(
        "drg_high_multiplier",
        lambda p, x: [
            billed(p, f"{x}c", 0, inst="H003", visit_type="inpatient", total=40_000.0,
                   drg_code="ES23", drg_standard_cost=10_000.0),
        ],
    )  # fmt: skip
    add(
        "contraindication",
        lambda p, x: [
            dispense(p, f"{x}w", 0, drug_code="WARF", atc_code="B01AA03", patient_age=70),
            dispense(p, f"{x}a", 10 * DAY_H, drug_code="ASA", atc_code="B01AC06",
                     patient_age=70),
        ],
    )  # fmt: skip
    add(
        "gender_age_restriction",
        lambda p, x: [
            billed(p, f"{x}c", 0, items=[item("311201001", "service", price=260.0)],
                   patient_gender="M", patient_age=30),
        ],
    )  # fmt: skip
    add(
        "out_of_scope_online_care",
        lambda p, x: [
            # IH03 may treat chronic conditions online only (agreements.csv): not pneumonia
            billed(p, f"{x}c", 0, inst="IH03", visit_type="online", total=180.0,
                   diagnosis_code="J18.9"),
        ],
    )  # fmt: skip
    cephalosporin_and_macrolide = [
        item("XJ01DDA060B001010100001", "drug", price=30.0),  # ceftriaxone (J01DD)
        item("XJ01FAA033A001010100002", "drug", price=12.5),  # azithromycin (J01FA)
    ]
    add(
        "combination_without_indication",
        lambda p, x: [
            billed(p, f"{x}c", 0, diagnosis_code="J06.9", items=cephalosporin_and_macrolide),
        ],
    )
    add(
        "item_diagnosis_mismatch",
        lambda p, x: [
            # a pelvic ultrasound (item_indications.csv) for a headache
            billed(p, f"{x}c", 0, diagnosis_code="R51", items=[item("220201003", price=120.0)]),
        ],
    )
    assert sorted(found) == PATIENT_RULES, "a patient rule has no scenario"
    return found


def benign(patient: str = "P-benign", *, hours: float = 0.0) -> Event:
    """An ordinary outpatient claim that no rule minds."""
    return claim(f"{patient}-ok", hours, patient_id=patient, items=[item("SVC-1", "service")])
