"""high_frequency_consultation (高频问诊, 重点关注对象): at least `min_consultations` online
consultations for one patient within any trailing `window_days` (event time).

The trailing count of a consultation at time t covers (t - window, t]. An episode starts at the
consultation whose count reaches the threshold (the count just before it was one less) and lasts
while the count stays at or above it; one alert per episode, none for the consultations that
follow (see `rules._window`, which the other threshold-window rules share). A consultation
arriving out of order recounts the later ones. Should it move an episode's start earlier than
the consultation already alerted, that alert stands for the episode and no second one is sent.
Alerts only: no settlement command. Rows are kept for two windows: the count of the row before
a new one needs the window before it.

State per patient: {"c": [[ts, event_id, occurred_at, institution_id], ...] sorted by
(ts, event_id), "alerted": [event_id, ...]}.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from claimstream.model.config import RuleSettings, positive
from claimstream.model.events import Consultation, Event
from claimstream.model.outputs import Severity, Subject
from claimstream.model.timefmt import DAY, iso
from claimstream.rules import _window
from claimstream.rules.base import Finding, Rule, State


@dataclass(frozen=True, slots=True)
class HighFrequencyConsultationSettings(RuleSettings):
    severity: Severity = "warning"
    issue_commands: bool = False
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

    def on_event(self, state: State, event: Event) -> list[Finding]:
        body = event.body
        assert isinstance(body, Consultation)
        if body.mode != "online":
            return []
        held: _window.Rows = state.setdefault("c", ())
        alerted: Sequence[str] = state.setdefault("alerted", ())
        inserted = _window.insert(
            held, (event.ts, event.event_id, event.occurred_at, event.institution_id)
        )
        if inserted is None:  # a redelivery: already held
            return []
        rows, position = inserted
        state["c"] = rows
        window = self.settings.window_days * DAY
        episodes = _window.new_episodes(
            rows, position, window, self.settings.min_consultations, _window.rows_count, alerted
        )
        if not episodes:
            return []
        state["alerted"] = (*alerted, *(rows[index][1] for index, _ in episodes))
        return [self._finding(event, rows[start : index + 1]) for index, start in episodes]

    def _finding(self, event: Event, window_rows: _window.Rows) -> Finding:
        trigger = window_rows[-1]
        institutions = sorted({row[3] for row in window_rows})
        count = len(window_rows)
        days = self.settings.window_days
        return Finding(
            subject=Subject("patient", event.patient_id),
            trigger_id=trigger[1],
            occurred_at=trigger[2],
            event_ids=tuple(row[1] for row in window_rows),
            message=(
                f"Patient {event.patient_id} had {count} online consultations within "
                f"{days:g} days (threshold {self.settings.min_consultations}); "
                "flagged for close attention."
            ),
            details={
                "count": count,
                "min_consultations": self.settings.min_consultations,
                "window_days": days,
                "first_at": window_rows[0][2],
                "last_at": trigger[2],
                "institutions": institutions,
                "window_start": iso(trigger[0] - days * DAY, self.context.tz),
            },
            patient_id=event.patient_id,
            institution_id=trigger[3],
        )

    def expire(self, state: State, cutoff: float) -> None:
        keep = 2 * self.settings.window_days * DAY
        rows = state.get("c", ())
        if _window.nothing_expires(rows, cutoff - keep):
            alerted = state.get("alerted", ())  # every row stays, so do the ids alerted of them
        else:
            rows = _window.expire_rows(rows, cutoff, keep)
            kept = {row[1] for row in rows}
            alerted = tuple(e for e in state.get("alerted", ()) if e in kept)
        state.clear()
        if rows:
            state["c"] = rows
        if alerted:
            state["alerted"] = alerted

    def size(self, state: State) -> int:
        return len(state.get("c", ()))
