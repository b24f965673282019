"""duplicate_exam (重复检查): the same exam or lab item code for one patient again within
`window_days` (90) at another institution.

Results of exams and labs should be mutually recognised between institutions (检查检验结果互认),
so repeating one elsewhere within the window is flagged; a repeat at the same institution is
left to clinical judgement and not flagged. Items of category `exam` or `lab` are compared by
code. Each (claim, item code) that repeats is one alert, so the alerts are the same whatever
order the claims arrive in. Severity warning; alerts only.

State per patient: {item_code: [row...]} sorted by (ts, event_id); row = [ts, event_id,
institution_id, occurred_at, claim_id, doctor_id, department_id, alerted].
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from operator import itemgetter
from typing import ClassVar

from claimstream.model.config import RuleSettings, positive
from claimstream.model.events import Claim, Event
from claimstream.model.outputs import Severity, Subject
from claimstream.model.timefmt import DAY
from claimstream.rules import _window
from claimstream.rules.base import Finding, Rule, State

_CATEGORIES = frozenset(("exam", "lab"))


@dataclass(frozen=True, slots=True)
class DuplicateExamSettings(RuleSettings):
    severity: Severity = "warning"
    issue_commands: bool = False
    window_days: float = 90.0

    def validate(self) -> None:
        RuleSettings.validate(self)
        positive("window_days", self.window_days)


class DuplicateExam(Rule[DuplicateExamSettings]):
    name: ClassVar[str] = "duplicate_exam"
    key_kind = "patient"
    event_types = frozenset({"claim"})
    Settings = DuplicateExamSettings

    def on_event(self, state: State, event: Event) -> list[Finding]:
        body = event.body
        assert isinstance(body, Claim)
        codes = {item.code for item in body.items if item.category in _CATEGORIES}
        if not codes:
            return []
        window = self.settings.window_days * DAY
        findings = []
        for code in sorted(codes):
            row = (
                event.ts,
                event.event_id,
                event.institution_id,
                event.occurred_at,
                body.claim_id,
                event.doctor_id,
                event.department_id,
                False,
            )
            inserted = _window.insert(state.setdefault(code, ()), row)
            if inserted is None:
                continue
            rows, position = inserted
            # The new row, and later rows it may now make repeats of (out-of-order arrival).
            end = (
                position + 1  # the newest row: nothing after it
                if position == len(rows) - 1
                else bisect.bisect_left(rows, (event.ts + window, ""), key=_window.order)
            )
            for index in range(position, end):
                if rows[index][7]:
                    continue
                finding = self._evaluate(event.patient_id, code, rows, index, window)
                if finding is not None:
                    rows = _window.replace(rows, index, (*rows[index][:7], True))
                    findings.append(finding)
            state[code] = rows
        return findings

    def _evaluate(
        self, patient_id: str, code: str, rows: _window.Rows, index: int, window: float
    ) -> Finding | None:
        if index == 0:
            return None  # nothing earlier (the first claim of this code): the common case
        current = rows[index]
        start = bisect.bisect_right(rows, current[0] - window, hi=index, key=_ts)
        institution = current[2]
        earlier = [row for row in rows[start:index] if row[2] != institution]
        if not earlier:
            return None
        latest = earlier[-1]
        days = (current[0] - latest[0]) / DAY
        return Finding(
            subject=Subject("patient", patient_id),
            trigger_id=f"{current[1]}/{code}",
            occurred_at=current[3],
            event_ids=tuple(row[1] for row in (*earlier, current)),
            message=(
                f"Patient {patient_id} had exam {code} at {current[2]} {days:.1f} days after "
                f"the same exam at {latest[2]}; results should be mutually recognised."
            ),
            details={
                "item_code": code,
                "days_since_previous": round(days, 3),
                "window_days": self.settings.window_days,
                "previous_institution_id": latest[2],
                "previous_claim_id": latest[4],
                "claim_id": current[4],
                "earlier_times": len(earlier),
                "institutions": sorted({row[2] for row in (*earlier, current)}),
            },
            patient_id=patient_id,
            institution_id=current[2],
            doctor_id=current[5],
            department_id=current[6],
        )

    def expire(self, state: State, cutoff: float) -> None:
        window = self.settings.window_days * DAY
        for code, held in list(state.items()):
            if _window.nothing_expires(held, cutoff - window):
                continue
            rows = _window.expire_rows(held, cutoff, window)
            if rows:
                state[code] = rows
            else:
                del state[code]

    def size(self, state: State) -> int:
        return sum(len(rows) for rows in state.values())


#: the event time of a row, as a C-level key for bisect
_ts = itemgetter(0)
