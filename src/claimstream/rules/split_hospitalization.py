"""split_hospitalization (分解住院): a patient admitted again for the same diagnosis family within
`max_gap_days` of a discharge, at the same or another institution.

The diagnosis family is the ICD-10 three-character category (I21.901 -> I21): matching on it,
not on the full code, resists swapping the primary diagnosis to hide a split stay. The gap is
measured from the discharge to the admission and must be under `max_gap_days` days (7; many
regions use 14 or 15). Each admission is compared with the latest earlier discharge of another
stay in the same category. A readmission within 24 h is flagged by `readmission_24h` as well:
the two rules answer different questions (any readmission vs the same illness).

Severity high; the command freezes the readmitting institution's settlement until the end of
that local day. A discharge arriving out of order re-evaluates the admissions after it.

State per patient: {"d": [discharge row...], "a": [admission row...]}, each sorted by
(ts, event_id); row = [ts, event_id, institution_id, admission_id, category, diagnosis_code,
occurred_at, doctor_id, department_id, alerted].
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

from claimstream.model.config import RuleSettings, positive
from claimstream.model.events import Event, Stay
from claimstream.model.outputs import Scope, Severity, Subject
from claimstream.model.timefmt import DAY, end_of_local_day, iso
from claimstream.rules import _window
from claimstream.rules.base import CommandSpec, Finding, Rule, State


@dataclass(frozen=True, slots=True)
class SplitHospitalizationSettings(RuleSettings):
    severity: Severity = "high"
    issue_commands: bool = True
    max_gap_days: float = 7.0

    def validate(self) -> None:
        RuleSettings.validate(self)
        positive("max_gap_days", self.max_gap_days)


class StayRow(NamedTuple):
    ts: float
    event_id: str
    institution_id: str
    admission_id: str
    category: str
    diagnosis_code: str
    occurred_at: str
    doctor_id: str | None
    department_id: str | None
    alerted: bool


def icd10_category(code: str) -> str:
    """The three-character ICD-10 category: `I21.901` -> `I21`, `j189` -> `J18`."""
    return code.strip().upper()[:3]


class SplitHospitalization(Rule[SplitHospitalizationSettings]):
    name: ClassVar[str] = "split_hospitalization"
    key_kind = "patient"
    event_types = frozenset({"admission", "discharge"})
    Settings = SplitHospitalizationSettings

    def on_event(self, state: State, event: Event) -> list[Finding]:
        body = event.body
        assert isinstance(body, Stay)
        discharges: _window.Rows = state.setdefault("d", ())
        admissions: _window.Rows = state.setdefault("a", ())
        row = (
            event.ts,
            event.event_id,
            event.institution_id,
            body.admission_id,
            icd10_category(body.diagnosis_code),
            body.diagnosis_code,
            event.occurred_at,
            event.doctor_id,
            event.department_id,
            False,
        )
        if event.event_type == "admission":
            inserted = _window.insert(admissions, row)
            if inserted is None:
                return []
            admissions, start = inserted
            state["a"] = admissions
            end = start + 1
        else:  # a discharge can only make later admissions split stays
            inserted = _window.insert(discharges, row)
            if inserted is None:
                return []
            discharges = state["d"] = inserted[0]
            start = bisect.bisect_left(admissions, (event.ts, ""), key=_window.order)
            end = bisect.bisect_left(admissions, (event.ts + self._gap(), ""), key=_window.order)
        findings = []
        for index in range(start, end):
            admission = admissions[index]
            if admission[9]:
                continue
            finding = self._evaluate(event.patient_id, discharges, StayRow(*admission))
            if finding is not None:
                admissions = _window.replace(admissions, index, (*admission[:9], True))
                findings.append(finding)
        if findings:
            state["a"] = admissions
        return findings

    def _gap(self) -> float:
        return self.settings.max_gap_days * DAY

    def _evaluate(
        self, patient_id: str, discharges: _window.Rows, admission: StayRow
    ) -> Finding | None:
        end = bisect.bisect_right(discharges, admission.ts, key=lambda row: row[0])
        discharge = next(
            (
                StayRow(*d)
                for d in reversed(discharges[:end])
                if d[4] == admission.category and d[3] != admission.admission_id
            ),
            None,
        )
        if discharge is None:
            return None
        gap = admission.ts - discharge.ts
        if gap >= self._gap():
            return None
        tz = self.context.tz
        day_end = iso(end_of_local_day(admission.ts, tz), tz)
        return Finding(
            subject=Subject("patient", patient_id),
            trigger_id=admission.event_id,
            occurred_at=admission.occurred_at,
            event_ids=(discharge.event_id, admission.event_id),
            message=(
                f"Patient {patient_id} was readmitted to {admission.institution_id} "
                f"{gap / DAY:.2f} days after discharge from {discharge.institution_id}, both "
                f"for diagnosis family {admission.category}."
            ),
            details={
                "gap_days": round(gap / DAY, 3),
                "max_gap_days": self.settings.max_gap_days,
                "diagnosis_category": admission.category,
                "discharge_diagnosis_code": discharge.diagnosis_code,
                "admission_diagnosis_code": admission.diagnosis_code,
                "discharge_institution_id": discharge.institution_id,
                "admission_institution_id": admission.institution_id,
                "same_institution": discharge.institution_id == admission.institution_id,
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
                        f"split hospitalization ({admission.category} readmitted within "
                        f"{self.settings.max_gap_days:g} days): settlement of "
                        f"{admission.institution_id} frozen for the day"
                    ),
                ),
            ),
        )

    def expire(self, state: State, cutoff: float) -> None:
        # Rows are sorted: when the first one stays, they all do (and need no copy).
        discharges = state.get("d", ())
        if not _window.nothing_expires(discharges, cutoff - self._gap()):
            discharges = _window.expire_rows(discharges, cutoff, self._gap())
        # An admission before the cutoff can no longer be preceded by a newly arriving discharge.
        admissions = state.get("a", ())
        if not _window.nothing_expires(admissions, cutoff - 0.0):
            admissions = _window.expire_rows(admissions, cutoff, 0.0)
        state.clear()
        if discharges:
            state["d"] = discharges
        if admissions:
            state["a"] = admissions

    def size(self, state: State) -> int:
        return len(state.get("d", ())) + len(state.get("a", ()))
