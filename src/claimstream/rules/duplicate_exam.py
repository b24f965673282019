"""duplicate_exam (重复检查): the same exam or lab item code for one patient again within
`window_days` (90) at another institution.

Results of exams and labs should be mutually recognised between institutions (检查检验结果互认),
so repeating one elsewhere within the window is flagged; a repeat at the same institution is
left to clinical judgement and not flagged. Items of category `exam` or `lab` are compared by
code. The window is trailing and excludes its start: a repeat 89 d 23 h 59 min later alerts, 90
d later it does not. Each (claim, item code) that repeats is one alert, so the alerts are the
same whatever order the claims arrive in. Severity warning; alerts only.

Amount: the duplicate exam's price, the repeated code's lines on the later claim (the alert's
`lines`, each `quantity × unit_price`). Default legal basis: 《医疗保障基金使用监督管理条例》
Art. 15 (no 过度检查) and Art. 38 (2), and the 检查检验结果互认 rules (《医疗机构检查检验结果互认
管理办法》, cited without an article); a repeat may be clinically justified, so a
pre-settlement check warns.

State per patient: {item_code: [row...]} sorted by (ts, event_id) (`rules.kit.rows`), layout
below, each row kept one window. A redelivered claim is already held and changes nothing; one
arriving out of order also re-evaluates the later claims of the code within a window of it,
each (claim, code) flagged once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from claimstream.model.config import REGULATION, OnCheck, RuleSettings, positive
from claimstream.model.events import Claim, Event
from claimstream.model.outputs import Severity, Subject
from claimstream.model.timefmt import DAY
from claimstream.rules.base import Finding, Rule, State
from claimstream.rules.kit.money import as_lines, claim_lines, flat, lines_total
from claimstream.rules.kit.rows import (
    Rows,
    first_after,
    first_at,
    insert,
    keep_from,
    optional,
    replace,
)

# a row: one claim carrying the item code
(
    TS,
    EVENT_ID,
    INSTITUTION_ID,
    OCCURRED_AT,
    CLAIM_ID,
    DOCTOR_ID,
    DEPARTMENT_ID,
    ALERTED,  # this (claim, code) was flagged
    LINES,  # the claim's lines of the code (`kit.money.flat`); appended, read with `optional`
) = range(9)

_CATEGORIES = frozenset(("exam", "lab"))


@dataclass(frozen=True, slots=True)
class DuplicateExamSettings(RuleSettings):
    severity: Severity = "warning"
    issue_commands: bool = False
    legal_basis: str = (
        f"{REGULATION}第十五条、第三十八条第二项；《医疗机构检查检验结果互认管理办法》"
    )
    behaviour: str = "重复检查"
    on_check: OnCheck = "warn"
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
        tested = claim_lines(body.items, lambda item: item.category in _CATEGORIES)
        if not tested:
            return []
        codes = {code for _, code, _ in tested}
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
                flat(line for line in tested if line[1] == code),
            )
            inserted = insert(state.get(code, ()), row)
            if inserted is None:
                continue
            rows, position = inserted
            # The new row, and later rows it may now make repeats of (out-of-order arrival).
            end = (
                position + 1  # the newest row: nothing after it
                if position == len(rows) - 1
                else first_at(rows, event.ts + window)
            )
            for index in range(position, end):
                if rows[index][ALERTED]:
                    continue
                finding = self._evaluate(event.patient_id, code, rows, index, window)
                if finding is not None:
                    held = rows[index]
                    rows = replace(rows, index, (*held[:ALERTED], True, *held[ALERTED + 1 :]))
                    findings.append(finding)
            state[code] = rows
        return findings

    def _evaluate(
        self, patient_id: str, code: str, rows: Rows, index: int, window: float
    ) -> Finding | None:
        if index == 0:
            return None  # nothing earlier (the first claim of this code): the common case
        current = rows[index]
        start = first_after(rows, current[TS] - window, hi=index)
        institution = current[INSTITUTION_ID]
        earlier = [row for row in rows[start:index] if row[INSTITUTION_ID] != institution]
        if not earlier:
            return None
        latest = earlier[-1]
        days = (current[TS] - latest[TS]) / DAY
        lines = as_lines(optional(current, LINES) or ())
        return Finding(
            subject=Subject("patient", patient_id),
            trigger_id=f"{current[EVENT_ID]}/{code}",
            occurred_at=current[OCCURRED_AT],
            event_ids=tuple(row[EVENT_ID] for row in (*earlier, current)),
            message=(
                f"Patient {patient_id} had exam {code} at {current[INSTITUTION_ID]} {days:.1f} "
                f"days after the same exam at {latest[INSTITUTION_ID]}; results should be "
                "mutually recognised."
            ),
            details={
                "item_code": code,
                "days_since_previous": round(days, 3),
                "window_days": self.settings.window_days,
                "previous_institution_id": latest[INSTITUTION_ID],
                "previous_claim_id": latest[CLAIM_ID],
                "claim_id": current[CLAIM_ID],
                "earlier_times": len(earlier),
                "institutions": sorted({row[INSTITUTION_ID] for row in (*earlier, current)}),
            },
            patient_id=patient_id,
            institution_id=current[INSTITUTION_ID],
            doctor_id=current[DOCTOR_ID],
            department_id=current[DEPARTMENT_ID],
            amount=lines_total(lines),
            lines=lines,
        )

    def expire(self, state: State, cutoff: float) -> None:
        window = self.settings.window_days * DAY
        for code, held in list(state.items()):
            rows = keep_from(held, cutoff - window)
            if not rows:
                del state[code]
            elif rows is not held:
                state[code] = rows

    def size(self, state: State) -> int:
        return sum(len(rows) for rows in state.values())
