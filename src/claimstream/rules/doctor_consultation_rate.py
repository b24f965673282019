"""doctor_consultation_rate (医师超量接诊): a doctor completes at least `min_consultations`
(30) online consultations within `window_minutes` (60), more than is physically plausible: the
pattern of consultations billed without a real one behind them.

Keyed by doctor (the stream re-keys consultations by doctor_id; ones without a doctor are not
routed here). One alert per episode (see `rules._window`), subject the doctor. Alerts only.

State per doctor: {"r": [row...], "alerted": [event_id...]}, rows sorted by (ts, event_id);
row = [ts, event_id, patient_id, occurred_at, institution_id, department_id].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from claimstream.model.config import RuleSettings, positive
from claimstream.model.events import Consultation, Event
from claimstream.model.outputs import Severity, Subject
from claimstream.model.timefmt import HOUR
from claimstream.rules import _window
from claimstream.rules._window import Rows
from claimstream.rules.base import Finding, Rule, State


@dataclass(frozen=True, slots=True)
class DoctorConsultationRateSettings(RuleSettings):
    severity: Severity = "warning"
    issue_commands: bool = False
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

    def _window(self) -> float:
        return self.settings.window_minutes * HOUR / 60

    def on_event(self, state: State, event: Event) -> list[Finding]:
        body = event.body
        assert isinstance(body, Consultation)
        doctor = event.doctor_id
        if body.mode != "online" or doctor is None:
            return []
        held: Rows = state.setdefault("r", ())
        alerted: Sequence[str] = state.setdefault("alerted", ())
        row = (
            event.ts,
            event.event_id,
            event.patient_id,
            event.occurred_at,
            event.institution_id,
            event.department_id,
        )
        inserted = _window.insert(held, row)
        if inserted is None:
            return []
        rows, position = inserted
        state["r"] = rows
        episodes = _window.new_episodes(
            rows,
            position,
            self._window(),
            self.settings.min_consultations,
            _window.rows_count,
            alerted,
        )
        if not episodes:
            return []
        state["alerted"] = (*alerted, *(rows[index][1] for index, _ in episodes))
        return [self._finding(doctor, rows[start : index + 1]) for index, start in episodes]

    def _finding(self, doctor_id: str, rows: Rows) -> Finding:
        trigger = rows[-1]
        minutes = (trigger[0] - rows[0][0]) / 60
        return Finding(
            subject=Subject("doctor", doctor_id),
            trigger_id=trigger[1],
            occurred_at=trigger[3],
            event_ids=tuple(row[1] for row in rows),
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
                "patients": len({row[2] for row in rows}),
                "institutions": sorted({row[4] for row in rows}),
                "first_at": rows[0][3],
                "last_at": trigger[3],
            },
            institution_id=trigger[4],
            doctor_id=doctor_id,
            department_id=trigger[5],
        )

    def expire(self, state: State, cutoff: float) -> None:
        keep = 2 * self._window()
        rows = state.get("r", ())
        if _window.nothing_expires(rows, cutoff - keep):
            alerted = state.get("alerted", ())  # every row stays, so do the ids alerted of them
        else:
            rows = _window.expire_rows(rows, cutoff, keep)
            kept = {row[1] for row in rows}
            alerted = tuple(e for e in state.get("alerted", ()) if e in kept)
        state.clear()
        if rows:
            state["r"] = rows
        if alerted:
            state["alerted"] = alerted

    def size(self, state: State) -> int:
        return len(state.get("r", ()))
