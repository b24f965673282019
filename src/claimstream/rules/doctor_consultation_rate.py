"""doctor_consultation_rate (医师超量接诊): a doctor completes at least `min_consultations`
(30) online consultations within `window_minutes` (60), more than is physically plausible: the
pattern of consultations billed without a real one behind them.

Keyed by doctor (the stream re-keys consultations by doctor_id; ones without a doctor are not
routed here). The window is trailing and excludes its start: 30 consultations spanning 59
minutes alert, spanning 60 do not. One alert per episode (`rules.kit.episodes`), subject the
doctor. Alerts only.

Amount: null (a consultation event carries no price). Default legal basis: 《医疗保障基金使用
监督管理条例》 Art. 40 (3) (虚构医药服务项目, the fraud this rate suggests). A doctor's hour is no
pre-settlement decision about one consultation: `on_check` warn.

State per doctor: an episode group {"rows": [row...], "alerted": [event_id...]}, one row per
online consultation (layout below), kept one to two windows (`Episodes.expire`). A redelivered
consultation is already held and changes nothing; one arriving out of order is counted where
it belongs and the later windows are recounted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from claimstream.model.config import REGULATION, OnCheck, RuleSettings, positive
from claimstream.model.events import Consultation, Event
from claimstream.model.outputs import Severity, Subject
from claimstream.model.timefmt import HOUR
from claimstream.rules.base import Finding, Rule, RuleContext, State
from claimstream.rules.kit.episodes import Episodes
from claimstream.rules.kit.rows import Rows

# a row: one online consultation
TS, EVENT_ID, PATIENT_ID, OCCURRED_AT, INSTITUTION_ID, DEPARTMENT_ID = range(6)


@dataclass(frozen=True, slots=True)
class DoctorConsultationRateSettings(RuleSettings):
    severity: Severity = "warning"
    issue_commands: bool = False
    legal_basis: str = f"{REGULATION}第四十条第三项"
    behaviour: str = "虚构医药服务项目"
    on_check: OnCheck = "warn"
    min_consultations: int = 30
    window_minutes: float = 60.0

    def validate(self) -> None:
        RuleSettings.validate(self)
        positive("min_consultations", self.min_consultations)
        positive("window_minutes", self.window_minutes)


class DoctorConsultationRate(Rule[DoctorConsultationRateSettings]):
    name: ClassVar[str] = "doctor_consultation_rate"
    key_kind = "doctor"
    event_types = frozenset({"consultation"})
    Settings = DoctorConsultationRateSettings
    state_version = 2  # 2: named state keys ("rows", was "r")

    def __init__(self, settings: DoctorConsultationRateSettings, context: RuleContext) -> None:
        super().__init__(settings, context)
        window = settings.window_minutes * HOUR / 60
        self.episodes = Episodes(window, settings.min_consultations)

    def on_event(self, state: State, event: Event) -> list[Finding]:
        body = event.body
        assert isinstance(body, Consultation)
        doctor = event.doctor_id
        if body.mode != "online" or doctor is None:
            return []
        row = (
            event.ts,
            event.event_id,
            event.patient_id,
            event.occurred_at,
            event.institution_id,
            event.department_id,
        )
        return [self._finding(doctor, rows) for rows in self.episodes.add(state, row)]

    def _finding(self, doctor_id: str, rows: Rows) -> Finding:
        trigger = rows[-1]
        minutes = (trigger[TS] - rows[0][TS]) / 60
        return Finding(
            subject=Subject("doctor", doctor_id),
            trigger_id=trigger[EVENT_ID],
            occurred_at=trigger[OCCURRED_AT],
            event_ids=tuple(row[EVENT_ID] for row in rows),
            message=(
                f"Doctor {doctor_id} completed {len(rows)} online consultations in "
                f"{minutes:.0f} minutes (threshold {self.settings.min_consultations} within "
                f"{self.settings.window_minutes:g} minutes)."
            ),
            details={
                "count": len(rows),
                "min_consultations": self.settings.min_consultations,
                "window_minutes": self.settings.window_minutes,
                "span_minutes": round(minutes, 2),
                "patients": len({row[PATIENT_ID] for row in rows}),
                "institutions": sorted({row[INSTITUTION_ID] for row in rows}),
                "first_at": rows[0][OCCURRED_AT],
                "last_at": trigger[OCCURRED_AT],
            },
            institution_id=trigger[INSTITUTION_ID],
            doctor_id=doctor_id,
            department_id=trigger[DEPARTMENT_ID],
        )

    def expire(self, state: State, cutoff: float) -> None:
        self.episodes.expire(state, cutoff)

    def size(self, state: State) -> int:
        return self.episodes.size(state)
