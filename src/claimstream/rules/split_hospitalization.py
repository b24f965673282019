"""split_hospitalization (分解住院): a patient admitted again for the same diagnosis family less
than `max_gap_days` (7) after a discharge, at the same or another institution.

The diagnosis family is the ICD-10 three-character category (I21.901 -> I21): matching on it,
not on the full code, resists swapping the primary diagnosis to hide a split stay; with
`match_category` off (a region whose rule says "the same diagnosis") the whole code must match,
compared without case, dot or spaces (I21.901 = i21901, not I21.902). Each
admission is compared with the latest discharge at or before it of another stay in the same
category (`rules.kit.stays`); the gap must be under the limit: 6 d 23 h 59 min alerts, 7 d
does not (many regions use 14 or 15). A readmission within 24 h is flagged by
`readmission_24h` as well: the two rules answer different questions (any readmission vs the
same illness). Severity high; the command freezes the readmitting institution's settlement
until the end of that local day.

Planned stays (a chemotherapy cycle, a staged operation) are exempt as in `readmission_24h`:
the admission's `planned` flag (`exempt_planned`) or a diagnosis starting with one of
`planned_diagnoses` (Z51.0, Z51.1, Z51.2 by default).

Amount: null (admissions and discharges carry no price; the money is on the stay's claim).
Default legal basis: 《医疗保障基金使用监督管理条例》 Art. 15 (no 分解住院) and Art. 38 (1); a
pre-settlement check holds the readmission.

State per patient: the stay pairs' {"discharges": [row...], "admissions": [row...]}: a discharge
is kept while an admission can still come within the gap of it (up to `max_gap_days`), an
admission while a discharge arriving out of order can still precede it. A redelivered stay
event is already held and changes nothing; a discharge arriving after the admission re-compares
the admissions it precedes, so the alert is the in-order one, and an admission pairs once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from claimstream.model.config import REGULATION, OnCheck, RuleSettings, positive
from claimstream.model.events import Event, Stay
from claimstream.model.outputs import Scope, Severity, Subject
from claimstream.model.timefmt import DAY, end_of_local_day, iso
from claimstream.reference.loader import icd10_prefix
from claimstream.rules.base import CommandSpec, Finding, Rule, RuleContext, State
from claimstream.rules.kit.rows import Row
from claimstream.rules.kit.stays import (
    ADMISSION_ID,
    DEPARTMENT_ID,
    DIAGNOSIS_CODE,
    DOCTOR_ID,
    EVENT_ID,
    INSTITUTION_ID,
    OCCURRED_AT,
    TS,
    StayPairs,
)
from claimstream.rules.readmission_24h import PLANNED_DIAGNOSES, PlannedStays, check_prefixes


@dataclass(frozen=True, slots=True)
class SplitHospitalizationSettings(RuleSettings):
    severity: Severity = "high"
    issue_commands: bool = True
    legal_basis: str = f"{REGULATION}第十五条、第三十八条第一项"
    behaviour: str = "分解住院"
    on_check: OnCheck = "hold"
    max_gap_days: float = 7.0
    #: compare the ICD-10 three-character category (True) or the whole code (False)
    match_category: bool = True
    #: an admission flagged `planned: true` is exempt
    exempt_planned: bool = True
    #: admissions whose diagnosis starts with one of these ICD-10 prefixes are exempt
    planned_diagnoses: tuple[str, ...] = PLANNED_DIAGNOSES

    def validate(self) -> None:
        RuleSettings.validate(self)
        positive("max_gap_days", self.max_gap_days)
        check_prefixes("planned_diagnoses", self.planned_diagnoses)


def icd10_category(code: str) -> str:
    """The three-character ICD-10 category: `I21.901` -> `I21`, `j189` -> `J18`."""
    return code.strip().upper()[:3]


def same_category(discharge: Row, admission: Row) -> bool:
    return icd10_category(discharge[DIAGNOSIS_CODE]) == icd10_category(admission[DIAGNOSIS_CODE])


def same_code(discharge: Row, admission: Row) -> bool:
    return icd10_prefix(discharge[DIAGNOSIS_CODE]) == icd10_prefix(admission[DIAGNOSIS_CODE])


class SplitHospitalization(Rule[SplitHospitalizationSettings]):
    name: ClassVar[str] = "split_hospitalization"
    key_kind = "patient"
    event_types = frozenset({"admission", "discharge"})
    Settings = SplitHospitalizationSettings
    state_version = 2  # 2: rules.kit.stays (named keys, its row layout)

    def __init__(self, settings: SplitHospitalizationSettings, context: RuleContext) -> None:
        super().__init__(settings, context)
        self.family = icd10_category if settings.match_category else icd10_prefix
        matches = same_category if settings.match_category else same_code
        self.stays = StayPairs(settings.max_gap_days * DAY, matches)
        self.planned = PlannedStays(settings.exempt_planned, settings.planned_diagnoses)

    def on_event(self, state: State, event: Event) -> list[Finding]:
        body = event.body
        assert isinstance(body, Stay)
        if self.planned.exempt(event, body):
            return []
        pairs = self.stays.add(state, event, body)
        return [self._finding(event.patient_id, *pair) for pair in pairs]

    def _finding(self, patient_id: str, discharge: Row, admission: Row) -> Finding:
        gap = admission[TS] - discharge[TS]
        category = self.family(admission[DIAGNOSIS_CODE])
        institution = admission[INSTITUTION_ID]
        tz = self.context.tz
        return Finding(
            subject=Subject("patient", patient_id),
            trigger_id=admission[EVENT_ID],
            occurred_at=admission[OCCURRED_AT],
            event_ids=(discharge[EVENT_ID], admission[EVENT_ID]),
            message=(
                f"Patient {patient_id} was readmitted to {institution} "
                f"{gap / DAY:.2f} days after discharge from {discharge[INSTITUTION_ID]}, both "
                f"for diagnosis family {category}."
            ),
            details={
                "gap_days": round(gap / DAY, 3),
                "max_gap_days": self.settings.max_gap_days,
                "diagnosis_category": category,
                "match_category": self.settings.match_category,
                "discharge_diagnosis_code": discharge[DIAGNOSIS_CODE],
                "admission_diagnosis_code": admission[DIAGNOSIS_CODE],
                "discharge_institution_id": discharge[INSTITUTION_ID],
                "admission_institution_id": institution,
                "same_institution": discharge[INSTITUTION_ID] == institution,
                "discharged_admission_id": discharge[ADMISSION_ID],
                "admission_id": admission[ADMISSION_ID],
            },
            patient_id=patient_id,
            institution_id=institution,
            doctor_id=admission[DOCTOR_ID],
            department_id=admission[DEPARTMENT_ID],
            commands=(
                CommandSpec(
                    action="FREEZE",
                    scope=Scope("institution", institution),
                    effective_from=admission[OCCURRED_AT],
                    expires_at=iso(end_of_local_day(admission[TS], tz), tz),
                    reason=(
                        f"split hospitalization ({category} readmitted within "
                        f"{self.settings.max_gap_days:g} days): settlement of "
                        f"{institution} frozen for the day"
                    ),
                ),
            ),
        )

    def expire(self, state: State, cutoff: float) -> None:
        self.stays.expire(state, cutoff)

    def size(self, state: State) -> int:
        return self.stays.size(state)
