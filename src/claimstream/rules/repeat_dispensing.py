"""repeat_dispensing (重复开药): the same drug for one patient while an earlier dispensing's
supply is still running, at another institution or at the same one.

A dispensing B is an early refill of an earlier dispensing A (same patient, same drug) when
B happens before `(1 - tolerance) * A.days_supply` days have elapsed since A. The tolerance is
`early_refill_tolerance` (0.2: a refill at 79 % of a 30-day supply alerts, at 80 % it does not)
when A was at another institution, `same_institution_tolerance` (0.2) when at the same one,
and for a drug of a class named in `class_tolerances` ("insulin:0.3": pens dosed by the unit
run out unevenly) that class's tolerance wherever the refill is (the largest, when the drug is
of several such classes; the classes of `drug_classes.csv`, by A's drug code and ATC code).
B is flagged when it is an early refill of at least one A at a different institution, or, with
`same_institution` (on by default: 重复开药 is the same whoever prescribes it), at the same
institution; the evidence is every earlier dispensing of that drug still running at B (the
seed case: 12 boxes of one insulin from 3 hospitals). Issues a FREEZE of that drug for that
patient until the earlier supply runs out.

Amount: the cost of the repeated dispensing, B's `quantity × unit_price` (None when B carries
no `unit_price`). Default legal basis: 《医疗保障基金使用监督管理条例》 Art. 15 (no 重复开药) and
Art. 38 (2) (its penalty); a pre-settlement check holds B for review.

State per patient: {drug_code: [row...]} sorted by (ts, event_id) (`rules.kit.rows`), layout
below. A row is kept until its supply runs out (not only until its early-refill window
closes), so a change of the tolerance at run time still finds it; `max_tracked_supply_days`
bounds that. `AMOUNT` and `ATC_CODE` were appended to the row without a state version bump:
rows held from before have none, an alert they trigger has a null amount, and their class
tolerance is found by drug code alone. A redelivered dispensing is
already held and changes nothing; one arriving out of order re-evaluates the later
dispensings of the drug, each flagged once, so the alerts are the in-order ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from claimstream.model.config import REGULATION, ConfigError, OnCheck, RuleSettings, positive
from claimstream.model.events import Dispense, Event
from claimstream.model.outputs import Scope, Severity, Subject
from claimstream.model.timefmt import DAY, iso
from claimstream.rules.base import CommandSpec, Finding, Rule, RuleContext, State
from claimstream.rules.kit.money import dispensing_cost
from claimstream.rules.kit.rows import Row, Rows, insert, optional, replace

# a row: one dispensing of the drug
(
    TS,
    EVENT_ID,
    INSTITUTION_ID,
    DAYS_SUPPLY,
    QUANTITY,
    OCCURRED_AT,
    DOCTOR_ID,
    DEPARTMENT_ID,
    RUNS_OUT,  # when its supply (up to max_tracked_supply_days) runs out
    ALERTED,  # it was flagged as an early refill
    AMOUNT,  # quantity × unit_price, None without a price (appended: read with `optional`)
    ATC_CODE,  # the dispensing's atc_code, for its class tolerance (appended, `optional`)
) = range(12)


def parse_class_tolerances(entries: tuple[str, ...] | None) -> dict[str, float]:
    """`("insulin:0.3", ...)` as {class: tolerance}; ConfigError on a malformed entry. An
    empty entry is ignored, so `class_tolerances=` (an empty text) clears the list."""
    found: dict[str, float] = {}
    for entry in entries or ():
        if not entry.strip():
            continue
        name, colon, number = entry.partition(":")
        try:
            tolerance = float(number)
        except ValueError:
            tolerance = -1.0
        if not colon or not name.strip() or not 0 <= tolerance < 1:
            raise ConfigError(
                f"class_tolerances: {entry!r} is not CLASS:TOLERANCE with a tolerance in [0, 1)"
            )
        found[name.strip()] = tolerance
    return found


@dataclass(frozen=True, slots=True)
class RepeatDispensingSettings(RuleSettings):
    severity: Severity = "high"
    issue_commands: bool = True
    legal_basis: str = f"{REGULATION}第十五条、第三十八条第二项"
    behaviour: str = "重复开药"
    on_check: OnCheck = "hold"
    #: the share of an earlier supply (at another institution) a refill may come early by
    early_refill_tolerance: float = 0.2
    #: an early refill at the institution of the earlier dispensing counts too
    same_institution: bool = True
    #: the share for a refill at the same institution
    same_institution_tolerance: float = 0.2
    #: CLASS:TOLERANCE entries (classes of drug_classes.csv): the tolerance of a drug of that
    #: class, wherever the refill is; None (an empty text): none
    class_tolerances: tuple[str, ...] | None = None
    #: longest supply the rule tracks; bounds state against an absurd days_supply
    max_tracked_supply_days: int = 365

    def validate(self) -> None:
        RuleSettings.validate(self)
        for name in ("early_refill_tolerance", "same_institution_tolerance"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name} must be in [0, 1)")
        parse_class_tolerances(self.class_tolerances)
        positive("max_tracked_supply_days", self.max_tracked_supply_days)


class RepeatDispensing(Rule[RepeatDispensingSettings]):
    name: ClassVar[str] = "repeat_dispensing"
    key_kind = "patient"
    event_types = frozenset({"dispense"})
    Settings = RepeatDispensingSettings
    state_version = 2  # 2: rows start with (ts, event_id), the layout of rules.kit.rows

    def __init__(self, settings: RepeatDispensingSettings, context: RuleContext) -> None:
        super().__init__(settings, context)
        self.class_tolerances = parse_class_tolerances(settings.class_tolerances)

    def _early(self, row: Row, drug_code: str, same_institution: bool) -> float:
        """Seconds after the dispensing `row` during which a refill is too early."""
        settings = self.settings
        tolerance = (
            settings.same_institution_tolerance
            if same_institution
            else settings.early_refill_tolerance
        )
        if self.class_tolerances:
            classes = self.context.reference.drug_classes(drug_code, optional(row, ATC_CODE))
            by_class = [self.class_tolerances[c] for c in classes if c in self.class_tolerances]
            if by_class:
                tolerance = max(by_class)
        days: int = min(row[DAYS_SUPPLY], settings.max_tracked_supply_days)
        return (1.0 - tolerance) * days * DAY

    def on_event(self, state: State, event: Event) -> list[Finding]:
        body = event.body
        assert isinstance(body, Dispense)
        supply_days = min(body.days_supply, self.settings.max_tracked_supply_days)
        row = (
            event.ts,
            event.event_id,
            event.institution_id,
            body.days_supply,
            body.quantity,
            event.occurred_at,
            event.doctor_id,
            event.department_id,
            event.ts + supply_days * DAY,
            False,
            dispensing_cost(body),
            body.atc_code,
        )
        inserted = insert(state.get(body.drug_code, ()), row)
        if inserted is None:
            return []
        rows, position = inserted
        findings = []
        # The new row, and any later row it may now make an early refill (out-of-order arrival).
        for index in range(position, len(rows)):
            if rows[index][ALERTED]:
                continue
            if self._early_refill(rows, index, body.drug_code):
                held = rows[index]
                rows = replace(rows, index, (*held[:ALERTED], True, *held[ALERTED + 1 :]))
                findings.append(self._finding(event.patient_id, body.drug_code, rows, index))
        state[body.drug_code] = rows
        return findings

    def _early_refill(self, rows: Rows, index: int, drug_code: str) -> bool:
        """Whether row `index` is an early refill of an earlier row from another institution,
        or with `same_institution` of any earlier row (the common case, no, found without
        building anything)."""
        ts, institution_id = rows[index][TS], rows[index][INSTITUTION_ID]
        same_counts = self.settings.same_institution
        for row in rows[:index]:
            same = row[INSTITUTION_ID] == institution_id
            if (not same or same_counts) and ts - row[TS] < self._early(row, drug_code, same):
                return True
        return False

    def _finding(self, patient_id: str, drug_code: str, rows: Rows, index: int) -> Finding:
        current = rows[index]
        ts = current[TS]
        institution_id = current[INSTITUTION_ID]
        running = [
            row
            for row in rows[:index]
            if ts - row[TS] < self._early(row, drug_code, row[INSTITUTION_ID] == institution_id)
        ]
        evidence = [*running, current]
        institutions = sorted({row[INSTITUTION_ID] for row in evidence})
        runs_out = max(row[RUNS_OUT] for row in running)
        total = sum(row[QUANTITY] for row in evidence)
        details = {
            "drug_code": drug_code,
            "dispensings": len(evidence),
            "institutions": institutions,
            "total_quantity": total,
            "days_since_first": round((ts - running[0][TS]) / DAY, 2),
            "remaining_supply_days": round((runs_out - ts) / DAY, 2),
            "early_refill_tolerance": self.settings.early_refill_tolerance,
            "same_institution": any(row[INSTITUTION_ID] == institution_id for row in running),
        }
        tz = self.context.tz
        return Finding(
            subject=Subject("patient", patient_id),
            trigger_id=current[EVENT_ID],
            occurred_at=current[OCCURRED_AT],
            event_ids=tuple(row[EVENT_ID] for row in evidence),
            message=(
                f"Patient {patient_id} received drug {drug_code} at {current[INSTITUTION_ID]} "
                f"while {len(running)} earlier supply(ies) still ran: {len(evidence)} "
                f"dispensings, {total:g} units from {len(institutions)} institutions."
            ),
            details=details,
            patient_id=patient_id,
            institution_id=current[INSTITUTION_ID],
            doctor_id=current[DOCTOR_ID],
            department_id=current[DEPARTMENT_ID],
            amount=optional(current, AMOUNT),
            commands=(
                CommandSpec(
                    action="FREEZE",
                    scope=Scope("patient", patient_id, drug_code),
                    effective_from=current[OCCURRED_AT],
                    expires_at=iso(runs_out, tz),
                    reason=(
                        f"repeat dispensing of {drug_code}: earlier supply runs until "
                        f"{iso(runs_out, tz)}"
                    ),
                ),
            ),
        )

    def expire(self, state: State, cutoff: float) -> None:
        # Supplies are not sorted by when they run out: every row is looked at.
        for drug, rows in list(state.items()):
            live = tuple(row for row in rows if row[RUNS_OUT] > cutoff)
            if not live:
                del state[drug]
            elif len(live) < len(rows):
                state[drug] = live

    def size(self, state: State) -> int:
        return sum(len(rows) for rows in state.values())
