"""high_frequency_consultation (高频问诊, 重点关注对象): at least `min_consultations` (20) online
consultations for one patient within any trailing `window_days` (30).

The trailing count of a consultation at time t covers (t - window, t]: twenty within 29 d 23 h
59 min alert, the twentieth exactly 30 days after the first does not. An episode starts at the
consultation whose count reaches the threshold and lasts while the count stays at or above it;
one alert per episode, none for the consultations that follow, even at a steady rate right at
the threshold (`rules.kit.episodes`, the definition the other threshold-window rules share).
Offline consultations do not count. Alerts only: no settlement command.

Amount: null (a consultation event carries no price). Default legal basis: 《医疗保障基金使用监督
管理条例》, cited without an article: the regulators' 重点关注对象 list directs attention, it names
no violation; what a review finds decides the article (e.g. Art. 41 for an insured person). A
pre-settlement check warns.

State per patient: an episode group {"rows": [row...], "alerted": [event_id...]}, one row per
online consultation (layout below), kept one to two windows (`Episodes.expire`). A redelivered
consultation is already held and changes nothing; one arriving out of order is counted where
it belongs and the later windows are recounted. Should it move an episode's start earlier than
the consultation already alerted, that alert stands for the episode and no second one is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from claimstream.model.config import REGULATION, OnCheck, RuleSettings, positive
from claimstream.model.events import Consultation, Event
from claimstream.model.outputs import Severity, Subject
from claimstream.model.timefmt import DAY, iso
from claimstream.rules.base import Finding, Rule, RuleContext, State
from claimstream.rules.kit.episodes import Episodes
from claimstream.rules.kit.rows import Rows

# a row: one online consultation
TS, EVENT_ID, OCCURRED_AT, INSTITUTION_ID = range(4)


@dataclass(frozen=True, slots=True)
class HighFrequencyConsultationSettings(RuleSettings):
    severity: Severity = "warning"
    issue_commands: bool = False
    legal_basis: str = REGULATION
    behaviour: str = "高频问诊"
    on_check: OnCheck = "warn"
    min_consultations: int = 20
    window_days: float = 30.0

    def validate(self) -> None:
        RuleSettings.validate(self)
        positive("min_consultations", self.min_consultations)
        positive("window_days", self.window_days)


class HighFrequencyConsultation(Rule[HighFrequencyConsultationSettings]):
    name: ClassVar[str] = "high_frequency_consultation"
    key_kind = "patient"
    event_types = frozenset({"consultation"})
    Settings = HighFrequencyConsultationSettings
    state_version = 2  # 2: named state keys ("rows", was "c")

    def __init__(self, settings: HighFrequencyConsultationSettings, context: RuleContext) -> None:
        super().__init__(settings, context)
        self.episodes = Episodes(settings.window_days * DAY, settings.min_consultations)

    def on_event(self, state: State, event: Event) -> list[Finding]:
        body = event.body
        assert isinstance(body, Consultation)
        if body.mode != "online":
            return []
        row = (event.ts, event.event_id, event.occurred_at, event.institution_id)
        return [self._finding(event, rows) for rows in self.episodes.add(state, row)]

    def _finding(self, event: Event, window_rows: Rows) -> Finding:
        trigger = window_rows[-1]
        institutions = sorted({row[INSTITUTION_ID] for row in window_rows})
        count = len(window_rows)
        days = self.settings.window_days
        return Finding(
            subject=Subject("patient", event.patient_id),
            trigger_id=trigger[EVENT_ID],
            occurred_at=trigger[OCCURRED_AT],
            event_ids=tuple(row[EVENT_ID] for row in window_rows),
            message=(
                f"Patient {event.patient_id} had {count} online consultations within "
                f"{days:g} days (threshold {self.settings.min_consultations}); "
                "flagged for close attention."
            ),
            details={
                "count": count,
                "min_consultations": self.settings.min_consultations,
                "window_days": days,
                "first_at": window_rows[0][OCCURRED_AT],
                "last_at": trigger[OCCURRED_AT],
                "institutions": institutions,
                "window_start": iso(trigger[TS] - days * DAY, self.context.tz),
            },
            patient_id=event.patient_id,
            institution_id=trigger[INSTITUTION_ID],
        )

    def expire(self, state: State, cutoff: float) -> None:
        self.episodes.expire(state, cutoff)

    def size(self, state: State) -> int:
        return self.episodes.size(state)
