"""trace_code_reuse (药品追溯码重复结算, resold "回流药"): the same drug traceability code settled
twice, by any patient or institution, within `retention_days` (730).

Every pack of a drug carries a traceability code (药品追溯码, NHSA 2025) and may be settled
once. A code settled again means a pack already paid for was sold and paid for a second time:
typically a patient's insured drugs bought back and resold (回流药). Dispensings carry the codes
of their packs in the optional `trace_codes` list (contract v1); the state is kept per code
(key kind `trace_code`: the worker re-keys each code through `claimstream.repartition.trace_code`
and its events reach this rule in event-time order, docs/time.md §5).

A settlement B of a code is a reuse when the code's previous settlement A (in event-time order,
(time, event id)) happened less than `retention_days` before it: 729 days 23 h alerts, 730 days
does not. "Second" is in event time: a reuse arriving before the settlement it repeats gives
the same alert (A the earlier, B the later). One alert per code per episode: the episode starts
at the reuse alerted and lasts `retention_days`; a further settlement of the code within it is
no new alert (the alert of the episode stands for it), one at or after its end is. A
redelivered dispensing (the same event id) is no reuse of its own code. A dispensing with
several reused codes gives one alert per code.

The alert names both settlements (event ids, institutions, times, patients) in `details`; its
subject is B's institution (a trace code is never a subject), its id derives from the code and
B's event, so it is the same however and wherever it is found. With `issue_commands` (on by
default) it asks for a FREEZE of B's institution until the end of B's local day, as
`institution_not_qualified` does. Severity high.

Amount: null. A dispensing's price covers its line (`quantity × unit_price`), not one pack,
and the line's other codes may be settled once as they should; the contract gives no price
per pack. Default legal basis: 《医疗保障基金使用监督管理条例》, cited without an article: a pack
settled twice is 重复收费, 串换药品 or 骗取医保基金 (Art. 38, 40) depending on what an inspection
finds. `on_check` reject, though the pre-settlement check does not evaluate it today (it
evaluates patient-keyed rules only, detection/check.py); the FREEZE reaches the check through
the registry.

State per code: {"rows": (row, ...), "alerted": (ts, event id) of the episode's reuse, or
absent}, rows sorted by (ts, event id), layout below. A row is kept until no settlement that
can still be accepted is within `retention_days` of it (`expire`), so a code's state lives
about `retention_days` after its latest settlement, then goes: memory is the number of codes
settled in `retention_days` (docs/rules.md has the measured bytes per code).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from claimstream.model.config import REGULATION, OnCheck, RuleSettings, positive
from claimstream.model.events import Dispense, Event
from claimstream.model.outputs import Scope, Severity, Subject
from claimstream.model.timefmt import DAY, end_of_local_day, iso
from claimstream.rules.base import CommandSpec, Finding, Rule, State
from claimstream.rules.kit.rows import EVENT_ID, TS, Row, Rows, insert, keep_from

# a row: one settlement of the code (TS and EVENT_ID first, as every row)
(
    _TS,
    _EVENT_ID,
    INSTITUTION_ID,
    PATIENT_ID,
    OCCURRED_AT,
    DOCTOR_ID,
    DEPARTMENT_ID,
    DRUG_CODE,
) = range(8)


@dataclass(frozen=True, slots=True)
class TraceCodeReuseSettings(RuleSettings):
    severity: Severity = "high"
    issue_commands: bool = True
    legal_basis: str = REGULATION
    behaviour: str = "药品追溯码重复结算（疑似回流药）"
    on_check: OnCheck = "reject"
    #: how long a settled code is remembered: a second settlement within it is a reuse
    retention_days: float = 730.0

    def validate(self) -> None:
        RuleSettings.validate(self)
        positive("retention_days", self.retention_days)


class TraceCodeReuse(Rule[TraceCodeReuseSettings]):
    name: ClassVar[str] = "trace_code_reuse"
    key_kind = "trace_code"
    event_types = frozenset({"dispense"})
    Settings = TraceCodeReuseSettings

    def on_event(self, state: State, event: Event) -> list[Finding]:
        code = event.key("trace_code")
        body = event.body
        if code is None or not isinstance(body, Dispense):
            return []  # not a per-code view (detection.tracecodes): nothing to key it by
        row = (
            event.ts,
            event.event_id,
            event.institution_id,
            event.patient_id,
            event.occurred_at,
            event.doctor_id,
            event.department_id,
            body.drug_code,
        )
        inserted = insert(state.get("rows", ()), row)
        if inserted is None:
            return []  # a redelivery: already held
        rows, position = inserted
        state["rows"] = rows
        if len(rows) < 2:
            return []
        retention = self.settings.retention_days * DAY
        mark = state.get("alerted")
        findings = []
        # The new row, and (out of order) the row after it, which it may now precede.
        for index in range(max(position, 1), min(position + 2, len(rows))):
            later, earlier = rows[index], rows[index - 1]
            if later[TS] - earlier[TS] >= retention:
                continue
            if mark is not None:
                if (later[TS], later[EVENT_ID]) <= (mark[0], mark[1]):
                    continue  # at or before the episode's alerted reuse
                if later[TS] - mark[0] < retention:
                    continue  # within the episode: alerted already
            mark = (later[TS], later[EVENT_ID])
            findings.append(self._finding(code, earlier, later))
        if mark is not None:
            state["alerted"] = (mark[0], mark[1])
        return findings

    def _finding(self, code: str, first: Row, second: Row) -> Finding:
        tz = self.context.tz
        institution = second[INSTITUTION_ID]
        days = (second[TS] - first[TS]) / DAY
        return Finding(
            subject=Subject("institution", institution),
            trigger_id=f"{code}/{second[EVENT_ID]}",
            occurred_at=second[OCCURRED_AT],
            event_ids=(first[EVENT_ID], second[EVENT_ID]),
            message=(
                f"Drug traceability code {code} was settled twice: at institution "
                f"{first[INSTITUTION_ID]} on {first[OCCURRED_AT]} (event {first[EVENT_ID]}) "
                f"and again at institution {institution} on {second[OCCURRED_AT]} (event "
                f"{second[EVENT_ID]}), {days:.1f} days apart (a code may be settled once; "
                f"remembered {self.settings.retention_days:g} days)."
            ),
            details={
                "trace_code": code,
                "first": _settlement(first),
                "second": _settlement(second),
                "days_between": round(days, 4),
                "retention_days": self.settings.retention_days,
            },
            patient_id=second[PATIENT_ID],
            institution_id=institution,
            doctor_id=second[DOCTOR_ID],
            department_id=second[DEPARTMENT_ID],
            commands=(
                CommandSpec(
                    action="FREEZE",
                    scope=Scope("institution", institution),
                    effective_from=second[OCCURRED_AT],
                    expires_at=iso(end_of_local_day(second[TS], tz), tz),
                    reason=f"trace_code_reuse: a drug traceability code settled again ({code})",
                ),
            ),
        )

    def expire(self, state: State, cutoff: float) -> None:
        # An event that can still be accepted is at or after `cutoff`: it can be a reuse only
        # of a row less than `retention_days` before it, and fall in an episode only that
        # recent. Older rows and an older episode can go.
        since = cutoff - self.settings.retention_days * DAY
        rows: Rows = keep_from(state.get("rows", ()), since)
        mark = state.get("alerted")
        if mark is not None and mark[0] <= since:
            mark = None
        state.clear()
        if rows:
            state["rows"] = rows
        if mark is not None:
            state["alerted"] = (mark[0], mark[1])

    def size(self, state: State) -> int:
        return len(state.get("rows", ()))


def _settlement(row: Row) -> dict[str, Any]:
    return {
        "event_id": row[EVENT_ID],
        "institution_id": row[INSTITUTION_ID],
        "occurred_at": row[OCCURRED_AT],
        "patient_id": row[PATIENT_ID],
        "drug_code": row[DRUG_CODE],
    }
