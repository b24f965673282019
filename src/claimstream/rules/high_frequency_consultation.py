"""high_frequency_consultation (高频问诊, 重点关注对象): at least `min_consultations` online
consultations for one patient within any trailing `window_days` (event time).

The trailing count of a consultation at time t covers (t - window, t]. An episode starts at the
consultation whose count reaches the threshold (the count just before it was one less) and lasts
while the count stays at or above it; one alert per episode, none for the consultations that
follow. A consultation arriving out of order recounts the later ones. Should it move an
episode's start earlier than the consultation already alerted, that alert stands for the
episode and no second one is sent. Alerts only: no settlement command.

State per patient: {"c": [[ts, event_id, occurred_at, institution_id], ...] sorted by
(ts, event_id), "alerted": [event_id, ...]}.
"""

from __future__ import annotations

import bisect
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
        threshold = self.settings.min_consultations
        times = [row[0] for row in rows]
        findings = []
        # Counts change for the new row and every later row within one window of it.
        end = bisect.bisect_left(times, event.ts + window)
        for index in range(position, end):
            start = bisect.bisect_right(times, times[index] - window)
            count = index - start + 1
            if count != threshold:
                continue
            if self._episode_alerted(rows, times, index, alerted):
                continue
            alerted = (*alerted, rows[index][1])
            state["alerted"] = alerted
            findings.append(self._finding(event, rows[start : index + 1]))
        return findings

    def _episode_alerted(
        self, rows: _window.Rows, times: list[float], index: int, alerted: Sequence[str]
    ) -> bool:
        """Whether a later consultation of the episode starting at `index` was alerted."""
        window = self.settings.window_days * DAY
        threshold = self.settings.min_consultations
        for later in range(index, len(rows)):
            if later > index:
                count = later - bisect.bisect_right(times, times[later] - window) + 1
                if count <= threshold:  # the count dipped before `later`: the episode ended
                    return False
            if rows[later][1] in alerted:
                return True
        return False

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
        window = self.settings.window_days * DAY
        rows = state.get("c", ())
        if rows and rows[0][0] > cutoff - window:  # sorted: every row stays
            alerted = state.get("alerted", ())  # and so do the ids alerted of them
        else:
            rows = tuple(row for row in rows if row[0] > cutoff - window)
            kept = {row[1] for row in rows}
            alerted = tuple(event_id for event_id in state.get("alerted", ()) if event_id in kept)
        state.clear()
        if rows:
            state["c"] = rows
        if alerted:
            state["alerted"] = alerted

    def size(self, state: State) -> int:
        return len(state.get("c", ()))
