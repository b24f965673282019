"""special_exam_repeat (重复大型检查): one doctor orders at least `min_exams` (3) special exams
for the same patient within `window_days` (7).

A special exam is a claim item with `special_exam: true`, or whose code is on the reference
list of large-equipment exams (CT, MRI, PET-CT, DSA: `special_exams.csv`); each such item line
counts as one exam. The window is trailing and excludes its start (the third exam 6 d 23 h 59
min after the first alerts, 7 d after it does not). The pattern is per patient and doctor, so
state is keyed by patient (one partition holds everything) and grouped by doctor inside; the
alert's subject is the doctor. Claims without a doctor_id cannot name a subject and are
ignored. One alert per episode (`rules.kit.episodes`). Alerts only.

Amount: the price of the exams that made it a repeat, the special-exam lines of the claim that
reached the threshold (the alert's `lines`, each `quantity × unit_price`). Default legal
basis: 《医疗保障基金使用监督管理条例》 Art. 15 (no 过度检查) and Art. 38 (2); clinical judgement
may justify the exams, so a pre-settlement check warns.

State per patient: {doctor_id: episode group {"rows": [row...], "alerted": [event_id...]}},
one row per claim with special exams (layout below), kept one to two windows
(`Episodes.expire`); a doctor's group goes when its rows do. A redelivered claim is already
held and changes nothing; one arriving out of order is counted where it belongs and the later
windows are recounted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import ClassVar

from claimstream.model.config import REGULATION, OnCheck, RuleSettings, positive
from claimstream.model.events import Claim, Event
from claimstream.model.outputs import Severity, Subject
from claimstream.model.timefmt import DAY
from claimstream.rules.base import Finding, Rule, RuleContext, State
from claimstream.rules.kit.episodes import Episodes
from claimstream.rules.kit.money import as_lines, claim_lines, flat, lines_total
from claimstream.rules.kit.rows import Row, Rows, optional

# a row: one claim with special exams; LINES, its special-exam lines (`kit.money.flat`), was
# appended later, so a row held from before has none (`optional`)
TS, EVENT_ID, EXAMS, CODES, OCCURRED_AT, INSTITUTION_ID, DEPARTMENT_ID, LINES = range(8)
_exam_count = itemgetter(EXAMS)


@dataclass(frozen=True, slots=True)
class SpecialExamRepeatSettings(RuleSettings):
    severity: Severity = "warning"
    issue_commands: bool = False
    legal_basis: str = f"{REGULATION}第十五条、第三十八条第二项"
    behaviour: str = "过度检查"
    on_check: OnCheck = "warn"
    min_exams: int = 3
    window_days: float = 7.0

    def validate(self) -> None:
        RuleSettings.validate(self)
        positive("min_exams", self.min_exams)
        positive("window_days", self.window_days)


def _exams(rows: Sequence[Row]) -> float:
    return float(sum(map(_exam_count, rows)))


class SpecialExamRepeat(Rule[SpecialExamRepeatSettings]):
    name: ClassVar[str] = "special_exam_repeat"
    key_kind = "patient"
    event_types = frozenset({"claim"})
    Settings = SpecialExamRepeatSettings
    state_version = 2  # 2: named state keys ("rows", was "r")

    def __init__(self, settings: SpecialExamRepeatSettings, context: RuleContext) -> None:
        super().__init__(settings, context)
        self.episodes = Episodes(settings.window_days * DAY, settings.min_exams, _exams)

    def on_event(self, state: State, event: Event) -> list[Finding]:
        body = event.body
        assert isinstance(body, Claim)
        doctor = event.doctor_id
        if doctor is None or not body.items:
            return []
        special = self.context.reference.special_exams
        lines = claim_lines(body.items, lambda item: item.special_exam or item.code in special)
        if not lines:
            return []
        codes = [code for _, code, _ in lines]
        row = (
            event.ts,
            event.event_id,
            len(codes),
            tuple(codes),
            event.occurred_at,
            event.institution_id,
            event.department_id,
            flat(lines),
        )
        group = state.setdefault(doctor, {})
        episodes = self.episodes.add(group, row)
        return [self._finding(event.patient_id, doctor, rows) for rows in episodes]

    def _finding(self, patient_id: str, doctor_id: str, rows: Rows) -> Finding:
        trigger = rows[-1]
        exams = int(_exams(rows))
        codes = sorted({code for row in rows for code in row[CODES]})
        lines = as_lines(optional(trigger, LINES) or ())
        return Finding(
            subject=Subject("doctor", doctor_id),
            trigger_id=trigger[EVENT_ID],
            occurred_at=trigger[OCCURRED_AT],
            event_ids=tuple(row[EVENT_ID] for row in rows),
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
                "institutions": sorted({row[INSTITUTION_ID] for row in rows}),
                "first_at": rows[0][OCCURRED_AT],
                "last_at": trigger[OCCURRED_AT],
            },
            patient_id=patient_id,
            institution_id=trigger[INSTITUTION_ID],
            doctor_id=doctor_id,
            department_id=trigger[DEPARTMENT_ID],
            amount=lines_total(lines),
            lines=lines,
        )

    def expire(self, state: State, cutoff: float) -> None:
        for doctor, group in list(state.items()):
            self.episodes.expire(group, cutoff)
            if not group:
                del state[doctor]

    def size(self, state: State) -> int:
        return sum(self.episodes.size(group) for group in state.values())
