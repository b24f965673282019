"""readmission_24h (出院24小时内再入院): a patient admitted again less than `max_gap_hours` (24)
after a discharge, at any institution.

An admission is compared with the patient's latest discharge at or before it of another stay
(`rules.kit.stays`); it is flagged when the gap is under the limit: 23 h 59 min alerts, 24 h 00
does not. The alert names both institutions; the command freezes the readmitting institution's
settlement until the end of that local day, as the regulations describe. `split_hospitalization`
pairs the same stays for another question (the same illness within days); both may fire.

Amount: null (admissions and discharges carry no price; the money is on the stay's claim).
Default legal basis: 《医疗保障基金使用监督管理条例》 Art. 15 (no 分解住院) and Art. 38 (1); a
pre-settlement check holds the readmission.

State per patient: the stay pairs' {"discharges": [row...], "admissions": [row...]}: a discharge
is kept while an admission can still come within the gap of it, an admission while a discharge
arriving out of order (within the allowed lateness) can still precede it. A redelivered stay
event is already held and changes nothing; a discharge arriving after the admission re-compares
the admissions it precedes, so the alert is the in-order one, and an admission pairs once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar

from claimstream.model.config import REGULATION, ConfigError, OnCheck, RuleSettings, positive
from claimstream.model.events import Event, Stay
from claimstream.model.outputs import Scope, Severity, Subject
from claimstream.model.timefmt import HOUR, end_of_local_day, iso
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

#: ICD-10 Z51.0 radiotherapy session, Z51.1 chemotherapy session for a neoplasm, Z51.2 other
#: chemotherapy: stays planned in cycles
PLANNED_DIAGNOSES = ("Z51.0", "Z51.1", "Z51.2")


def check_prefixes(name: str, prefixes: Iterable[str]) -> None:
    """Nothing to check but the type: an empty entry is ignored, so `planned_diagnoses=` (an
    empty text) clears the list."""
    for prefix in prefixes:
        if not isinstance(prefix, str):
            raise ConfigError(f"{name}: ICD-10 prefixes are text, got {prefix!r}")


class PlannedStays:
    """Which admissions are planned, by the flag and by diagnosis prefix (built once)."""

    def __init__(self, honour_flag: bool, diagnoses: Iterable[str]) -> None:
        self.honour_flag = honour_flag
        self.prefixes = tuple(sorted({icd10_prefix(p) for p in diagnoses} - {""}))

    def exempt(self, event: Event, stay: Stay) -> bool:
        if event.event_type != "admission":
            return False
        if stay.planned and self.honour_flag:
            return True
        return bool(self.prefixes) and icd10_prefix(stay.diagnosis_code).startswith(self.prefixes)


@dataclass(frozen=True, slots=True)
class Readmission24hSettings(RuleSettings):
    severity: Severity = "high"
    issue_commands: bool = True
    legal_basis: str = f"{REGULATION}第十五条、第三十八条第一项"
    behaviour: str = "分解住院"
    on_check: OnCheck = "hold"
    max_gap_hours: float = 24.0
    #: an admission flagged `planned: true` is exempt
    exempt_planned: bool = True
    #: admissions whose diagnosis starts with one of these ICD-10 prefixes are exempt
    planned_diagnoses: tuple[str, ...] = PLANNED_DIAGNOSES

    def validate(self) -> None:
        RuleSettings.validate(self)
        positive("max_gap_hours", self.max_gap_hours)
        check_prefixes("planned_diagnoses", self.planned_diagnoses)


class Readmission24h(Rule[Readmission24hSettings]):
    name: ClassVar[str] = "readmission_24h"
    key_kind = "patient"
    event_types = frozenset({"admission", "discharge"})
    Settings = Readmission24hSettings
    state_version = 3  # 2: event_id at row[1]; 3: rules.kit.stays (named keys, its row layout)

    def __init__(self, settings: Readmission24hSettings, context: RuleContext) -> None:
        super().__init__(settings, context)
        self.stays = StayPairs(settings.max_gap_hours * HOUR)
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
        institution = admission[INSTITUTION_ID]
        tz = self.context.tz
        return Finding(
            subject=Subject("patient", patient_id),
            trigger_id=admission[EVENT_ID],
            occurred_at=admission[OCCURRED_AT],
            event_ids=(discharge[EVENT_ID], admission[EVENT_ID]),
            message=(
                f"Patient {patient_id} was admitted to {institution} "
                f"{_hours_minutes(gap)} after discharge from {discharge[INSTITUTION_ID]}."
            ),
            details={
                "gap_hours": round(gap / HOUR, 3),
                "max_gap_hours": self.settings.max_gap_hours,
                "discharge_institution_id": discharge[INSTITUTION_ID],
                "admission_institution_id": institution,
                "same_institution": discharge[INSTITUTION_ID] == institution,
                "discharge_diagnosis_code": discharge[DIAGNOSIS_CODE],
                "admission_diagnosis_code": admission[DIAGNOSIS_CODE],
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
                        f"readmission within {self.settings.max_gap_hours:g} h: settlement of "
                        f"{institution} frozen for the day"
                    ),
                ),
            ),
        )

    def expire(self, state: State, cutoff: float) -> None:
        self.stays.expire(state, cutoff)

    def size(self, state: State) -> int:
        return self.stays.size(state)


def _hours_minutes(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"
