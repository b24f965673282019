"""special_exam_repeat (重复大型检查): one doctor orders at least `min_exams` special exams for
the same patient within `window_days`.

A special exam is a claim item with `special_exam: true`, or whose code is on the reference
list of large-equipment exams (CT, MRI, PET-CT, DSA: `special_exams.csv`); each such item line
counts as one exam. The pattern is per patient and doctor, so state is keyed by patient (one
partition holds everything) and grouped by doctor inside; the alert's subject is the doctor.
Claims without a doctor_id cannot name a subject and are ignored. One alert per episode (see
`rules._window`). Alerts only.

State per patient: {doctor_id: {"r": [row...], "alerted": [event_id...]}}, rows sorted by
(ts, event_id); row = [ts, event_id, exams, codes, occurred_at, institution_id, department_id].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from claimstream.model.config import RuleSettings, positive
from claimstream.model.events import Claim, Event
from claimstream.model.outputs import Severity, Subject
from claimstream.model.timefmt import DAY
from claimstream.rules import _window
from claimstream.rules.base import Finding, Rule, State


@dataclass(frozen=True, slots=True)
class SpecialExamRepeatSettings(RuleSettings):
    severity: Severity = "warning"
    issue_commands: bool = False
    min_exams: int = 3
    window_days: float = 7.0

    def validate(self) -> None:
        RuleSettings.validate(self)
        positive("min_exams", self.min_exams)
        positive("window_days", self.window_days)


def _exams(rows: Sequence[_window.Row]) -> float:
    return float(sum(row[2] for row in rows))


class SpecialExamRepeat(Rule[SpecialExamRepeatSettings]):
    name: ClassVar[str] = "special_exam_repeat"
    key_kind = "patient"
    event_types = frozenset({"claim"})
    Settings = SpecialExamRepeatSettings

    def on_event(self, state: State, event: Event) -> list[Finding]:
        body = event.body
        assert isinstance(body, Claim)
        doctor = event.doctor_id
        if doctor is None or not body.items:
            return []
        special = self.context.reference.special_exams
        codes = [item.code for item in body.items if item.special_exam or item.code in special]
        if not codes:
            return []
        group: State = state.setdefault(doctor, {"r": (), "alerted": ()})
        row = (
            event.ts,
            event.event_id,
            len(codes),
            tuple(codes),
            event.occurred_at,
            event.institution_id,
            event.department_id,
        )
        inserted = _window.insert(group["r"], row)
        if inserted is None:
            return []
        rows, position = inserted
        group["r"] = rows
        alerted: Sequence[str] = group["alerted"]
        window = self.settings.window_days * DAY
        episodes = _window.new_episodes(
            rows, position, window, self.settings.min_exams, _exams, alerted
        )
        if not episodes:
            return []
        group["alerted"] = (*alerted, *(rows[index][1] for index, _ in episodes))
        return [
            self._finding(event.patient_id, doctor, rows[start : index + 1])
            for index, start in episodes
        ]

    def _finding(self, patient_id: str, doctor_id: str, rows: _window.Rows) -> Finding:
        trigger = rows[-1]
        exams = int(_exams(rows))
        codes = sorted({code for row in rows for code in row[3]})
        return Finding(
            subject=Subject("doctor", doctor_id),
            trigger_id=trigger[1],
            occurred_at=trigger[4],
            event_ids=tuple(row[1] for row in rows),
            message=(
                f"Doctor {doctor_id} ordered {exams} special exams for patient {patient_id} "
                f"within {self.settings.window_days:g} days "
                f"(threshold {self.settings.min_exams})."
            ),
            details={
                "exams": exams,
                "min_exams": self.settings.min_exams,
                "window_days": self.settings.window_days,
                "exam_codes": codes,
                "claims": len(rows),
                "institutions": sorted({row[5] for row in rows}),
                "first_at": rows[0][4],
                "last_at": trigger[4],
            },
            patient_id=patient_id,
            institution_id=trigger[5],
            doctor_id=doctor_id,
            department_id=trigger[6],
        )

    def expire(self, state: State, cutoff: float) -> None:
        keep = 2 * self.settings.window_days * DAY
        for doctor in list(state):
            group = state[doctor]
            if _window.nothing_expires(group["r"], cutoff - keep):
                continue
            rows = _window.expire_rows(group["r"], cutoff, keep)
            if not rows:
                del state[doctor]
                continue
            kept = {row[1] for row in rows}
            group["r"] = rows
            group["alerted"] = tuple(e for e in group["alerted"] if e in kept)

    def size(self, state: State) -> int:
        return sum(len(group["r"]) for group in state.values())
