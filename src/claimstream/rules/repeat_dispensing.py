"""repeat_dispensing (重复开药): the same drug for one patient at another institution while an
earlier dispensing's supply is still running.

A dispensing B is an early refill of an earlier dispensing A (same patient, same drug) when
B happens before `(1 - early_refill_tolerance) * A.days_supply` days have elapsed since A.
B is flagged when it is an early refill of at least one A at a *different* institution; the
evidence is every earlier dispensing of that drug still running at B (the seed case: 12 boxes
of one insulin from 3 hospitals). Issues a FREEZE of that drug for that patient until the
earlier supply runs out.

State per patient: {drug_code: [row, ...]} sorted by (ts, event_id), row =
[ts, institution_id, days_supply, event_id, quantity, alerted, occurred_at, doctor_id,
department_id, runs_out]. A row is kept until its supply runs out (not only until its early-refill
window closes), so a change of the tolerance at run time still finds it.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from claimstream.model.config import ConfigError, RuleSettings, positive
from claimstream.model.events import Dispense, Event
from claimstream.model.outputs import Scope, Severity, Subject
from claimstream.model.timefmt import DAY, iso
from claimstream.rules.base import CommandSpec, Finding, Rule, State


@dataclass(frozen=True, slots=True)
class RepeatDispensingSettings(RuleSettings):
    severity: Severity = "high"
    issue_commands: bool = True
    early_refill_tolerance: float = 0.2
    #: longest supply the rule tracks; bounds state against an absurd days_supply
    max_tracked_supply_days: int = 365

    def validate(self) -> None:
        RuleSettings.validate(self)
        if not 0 <= self.early_refill_tolerance < 1:
            raise ConfigError("early_refill_tolerance must be in [0, 1)")
        positive("max_tracked_supply_days", self.max_tracked_supply_days)


class Row(NamedTuple):
    ts: float
    institution_id: str
    days_supply: int
    event_id: str
    quantity: float
    alerted: bool
    occurred_at: str
    doctor_id: str | None
    department_id: str | None
    runs_out: float


class RepeatDispensing(Rule[RepeatDispensingSettings]):
    name: ClassVar[str] = "repeat_dispensing"
    key_kind = "patient"
    event_types = frozenset({"dispense"})
    Settings = RepeatDispensingSettings

    def _window(self, days_supply: int) -> float:
        """Seconds after a dispensing during which a refill elsewhere is too early."""
        days = min(days_supply, self.settings.max_tracked_supply_days)
        return (1.0 - self.settings.early_refill_tolerance) * days * DAY

    def on_event(self, state: State, event: Event) -> list[Finding]:
        body = event.body
        assert isinstance(body, Dispense)
        held: Sequence[Sequence[Any]] = state.setdefault(body.drug_code, ())
        event_id = event.event_id
        for row in held:
            if row[3] == event_id:
                return []
        supply_days = min(body.days_supply, self.settings.max_tracked_supply_days)
        new = (
            event.ts,
            event.institution_id,
            body.days_supply,
            event_id,
            body.quantity,
            False,
            event.occurred_at,
            event.doctor_id,
            event.department_id,
            event.ts + supply_days * DAY,
        )
        last = held[-1] if held else None
        if last is None or last[0] < event.ts or (last[0] == event.ts and last[3] < event_id):
            position = len(held)  # in order: the common case, no search
        else:
            position = bisect.bisect_left(held, (event.ts, event_id), key=_order)
        rows = (*held[:position], new, *held[position:])
        findings = []
        # The new row, and any later row it may now make an early refill (out-of-order arrival).
        for index in range(position, len(rows)):
            if rows[index][5]:
                continue
            finding = self._evaluate(event.patient_id, body.drug_code, rows, index)
            if finding is not None:
                row = rows[index]
                rows = (*rows[:index], (*row[:5], True, *row[6:]), *rows[index + 1 :])
                findings.append(finding)
        state[body.drug_code] = rows
        return findings

    def _evaluate(
        self, patient_id: str, drug_code: str, rows: Sequence[Sequence[Any]], index: int
    ) -> Finding | None:
        current = rows[index]
        ts, institution_id = current[0], current[1]
        # The common case first, without building anything: no earlier supply from another
        # institution still runs.
        for r in rows[:index]:
            if r[1] != institution_id and ts - r[0] < self._window(r[2]):
                break
        else:
            return None
        return self._finding(patient_id, drug_code, rows, index)

    def _finding(
        self, patient_id: str, drug_code: str, rows: Sequence[Sequence[Any]], index: int
    ) -> Finding:
        current = Row(*rows[index])
        running = [Row(*r) for r in rows[:index] if current.ts - r[0] < self._window(r[2])]
        evidence = [*running, current]
        institutions = sorted({r.institution_id for r in evidence})
        runs_out = max(r.runs_out for r in running)
        total = sum(r.quantity for r in evidence)
        first = running[0]
        details = {
            "drug_code": drug_code,
            "dispensings": len(evidence),
            "institutions": institutions,
            "total_quantity": total,
            "days_since_first": round((current.ts - first.ts) / DAY, 2),
            "remaining_supply_days": round((runs_out - current.ts) / DAY, 2),
            "early_refill_tolerance": self.settings.early_refill_tolerance,
        }
        tz = self.context.tz
        return Finding(
            subject=Subject("patient", patient_id),
            trigger_id=current.event_id,
            occurred_at=current.occurred_at,
            event_ids=tuple(r.event_id for r in evidence),
            message=(
                f"Patient {patient_id} received drug {drug_code} at {current.institution_id} "
                f"while {len(running)} earlier supply(ies) still ran: {len(evidence)} "
                f"dispensings, {total:g} units from {len(institutions)} institutions."
            ),
            details=details,
            patient_id=patient_id,
            institution_id=current.institution_id,
            doctor_id=current.doctor_id,
            department_id=current.department_id,
            commands=(
                CommandSpec(
                    action="FREEZE",
                    scope=Scope("patient", patient_id, drug_code),
                    effective_from=current.occurred_at,
                    expires_at=iso(runs_out, tz),
                    reason=(
                        f"repeat dispensing of {drug_code}: earlier supply runs until "
                        f"{iso(runs_out, tz)}"
                    ),
                ),
            ),
        )

    def expire(self, state: State, cutoff: float) -> None:
        for drug, rows in list(state.items()):
            live = tuple(r for r in rows if r[9] > cutoff)
            if not live:
                del state[drug]
            elif len(live) < len(rows):
                state[drug] = live

    def size(self, state: State) -> int:
        return sum(len(rows) for rows in state.values())


def _order(row: Sequence[Any]) -> tuple[float, str]:
    return (row[0], row[3])
