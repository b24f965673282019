"""readmission_24h (出院24小时内再入院): a patient admitted again less than 24 h after a
discharge, at any institution.

Flags an admission when the patient's latest earlier discharge (of another stay) is less than
`max_gap_hours` before it. Out of order is handled both ways: a discharge that arrives after
the admission re-evaluates the admissions it precedes. The alert names both institutions; the
command freezes the readmitting institution's settlement until the end of that local day, as
the regulations describe.

State per patient: {"d": [discharge row...], "a": [admission row...]}, each sorted by
(ts, event_id); row = [ts, event_id, institution_id, admission_id, occurred_at,
diagnosis_code, doctor_id, department_id, alerted].
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from claimstream.model.config import RuleSettings, positive
from claimstream.model.events import Event, Stay
from claimstream.model.outputs import Scope, Severity, Subject
from claimstream.model.timefmt import HOUR, end_of_local_day, iso
from claimstream.rules import _window
from claimstream.rules.base import CommandSpec, Finding, Rule, State


@dataclass(frozen=True, slots=True)
class Readmission24hSettings(RuleSettings):
    severity: Severity = "high"
    issue_commands: bool = True
    max_gap_hours: float = 24.0

    def validate(self) -> None:
        RuleSettings.validate(self)
        positive("max_gap_hours", self.max_gap_hours)


class StayRow(NamedTuple):
    ts: float
    event_id: str
    institution_id: str
    admission_id: str
    occurred_at: str
    diagnosis_code: str
    doctor_id: str | None
    department_id: str | None
    alerted: bool


class Readmission24h(Rule[Readmission24hSettings]):
    name: ClassVar[str] = "readmission_24h"
    key_kind = "patient"
    event_types = frozenset({"admission", "discharge"})
    Settings = Readmission24hSettings
    state_version = 2  # 2: event_id moved to row[1], the layout rules/_window shares

    def on_event(self, state: State, event: Event) -> list[Finding]:
        body = event.body
        assert isinstance(body, Stay)
        discharges: _window.Rows = state.setdefault("d", ())
        admissions: _window.Rows = state.setdefault("a", ())
        discharge = event.event_type == "discharge"
        row = (
            event.ts,
            event.event_id,
            event.institution_id,
            body.admission_id,
            event.occurred_at,
            body.diagnosis_code,
            event.doctor_id,
            event.department_id,
            False,
        )
        inserted = _window.insert(discharges if discharge else admissions, row)
        if inserted is None:  # a redelivery: already held
            return []
        if discharge:  # a discharge can only make later admissions readmissions
            discharges = state["d"] = inserted[0]
            start = bisect.bisect_left(admissions, (event.ts, ""), key=_window.order)
        else:
            admissions = state["a"] = inserted[0]
            start = inserted[1]
        findings = []
        for index in range(start, len(admissions) if discharge else start + 1):
            admission = admissions[index]
            if admission[8]:
                continue
            finding = self._evaluate(event.patient_id, discharges, StayRow(*admission))
            if finding is not None:
                admissions = _window.replace(admissions, index, (*admission[:8], True))
                findings.append(finding)
        if findings:
            state["a"] = admissions
        return findings

    def _evaluate(
        self, patient_id: str, discharges: _window.Rows, admission: StayRow
    ) -> Finding | None:
        earlier = [
            StayRow(*d)
            for d in discharges
            if d[0] <= admission.ts and d[3] != admission.admission_id
        ]
        if not earlier:
            return None
        discharge = earlier[-1]  # the latest discharge before the admission
        gap = admission.ts - discharge.ts
        if gap >= self.settings.max_gap_hours * HOUR:
            return None
        tz = self.context.tz
        day_end = iso(end_of_local_day(admission.ts, tz), tz)
        same = discharge.institution_id == admission.institution_id
        return Finding(
            subject=Subject("patient", patient_id),
            trigger_id=admission.event_id,
            occurred_at=admission.occurred_at,
            event_ids=(discharge.event_id, admission.event_id),
            message=(
                f"Patient {patient_id} was admitted to {admission.institution_id} "
                f"{_hours_minutes(gap)} after discharge from {discharge.institution_id}."
            ),
            details={
                "gap_hours": round(gap / HOUR, 3),
                "max_gap_hours": self.settings.max_gap_hours,
                "discharge_institution_id": discharge.institution_id,
                "admission_institution_id": admission.institution_id,
                "same_institution": same,
                "discharge_diagnosis_code": discharge.diagnosis_code,
                "admission_diagnosis_code": admission.diagnosis_code,
                "discharged_admission_id": discharge.admission_id,
                "admission_id": admission.admission_id,
            },
            patient_id=patient_id,
            institution_id=admission.institution_id,
            doctor_id=admission.doctor_id,
            department_id=admission.department_id,
            commands=(
                CommandSpec(
                    action="FREEZE",
                    scope=Scope("institution", admission.institution_id),
                    effective_from=admission.occurred_at,
                    expires_at=day_end,
                    reason=(
                        f"readmission within {self.settings.max_gap_hours:g} h: settlement of "
                        f"{admission.institution_id} frozen for the day"
                    ),
                ),
            ),
        )

    def expire(self, state: State, cutoff: float) -> None:
        horizon = self.settings.max_gap_hours * HOUR
        # Rows are sorted: when the first one stays, they all do (and need no copy).
        discharges = state.get("d", ())
        if discharges and not discharges[0][0] + horizon > cutoff:
            discharges = tuple(d for d in discharges if d[0] + horizon > cutoff)
        # An admission before the cutoff can no longer be preceded by a newly arriving discharge.
        admissions = state.get("a", ())
        if admissions and not admissions[0][0] >= cutoff:
            admissions = tuple(a for a in admissions if a[0] >= cutoff)
        state.clear()
        if discharges:
            state["d"] = discharges
        if admissions:
            state["a"] = admissions

    def size(self, state: State) -> int:
        return len(state.get("d", ())) + len(state.get("a", ()))


def _hours_minutes(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes // 60} h {minutes % 60:02d} min"
