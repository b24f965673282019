"""contraindication (禁忌用药): drug-safety checks driven by the reference data.

- Stateless: a quinolone (class `quinolone`: ATC J01MA or a listed drug code) dispensed to a
  patient younger than `quinolone_min_age` (18) (喹诺酮类药物禁用于18岁以下患者): 17 alerts,
  18 does not.
- Stateful: the two drugs of an interaction pair (`interaction_pairs.csv`; by default warfarin
  with aspirin) with overlapping supply for a patient aged `interaction_min_age` (65) or over.
  A dispensing's supply runs from its time for `days_supply` days (the second dispensing 29 d
  23 h 59 min after a 30-day first one overlaps, at 30 d it does not); the later dispensing of
  the pair (in (ts, event_id) order) is the trigger, and its `patient_age` is the one compared.
  Evidence: every dispensing of the other class still running at the trigger.

An unknown age never triggers. Alert ids are per (event, check), so one dispensing can be in
several findings. Severity high; alerts only (the pharmacist's review decides).

Amount: the whole cost of the contraindicated dispensing (the trigger), `quantity ×
unit_price`; None without a `unit_price`. Default legal basis: 《医疗保障基金使用监督管理条例》
Art. 15 (合理、必要的医药服务 by the 诊疗规范) and Art. 38 (2); a pre-settlement check rejects it.

State per patient: {"dispensings": [row...]} sorted by (ts, event_id) (`rules.kit.rows`),
holding only dispensings of pair classes (layout below), each until its supply runs out. A
redelivered dispensing is already held and changes nothing; one arriving out of order checks
the later dispensings its supply reaches, and each row records the pairs already alerted, so
the alerts are the in-order ones. `AMOUNT` was appended to the row without a state version
bump: a row held from before has none, and an alert it triggers has a null amount.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from claimstream.model.config import REGULATION, OnCheck, RuleSettings, positive
from claimstream.model.events import Dispense, Event
from claimstream.model.outputs import Severity, Subject
from claimstream.model.timefmt import DAY
from claimstream.reference.loader import InteractionPair
from claimstream.rules.base import Finding, Rule, RuleContext, State
from claimstream.rules.kit.money import dispensing_cost
from claimstream.rules.kit.rows import Row, Rows, first_at, insert, optional, replace

# a row: one dispensing of a drug of a pair class
(
    TS,
    EVENT_ID,
    DRUG_CODE,
    CLASSES,  # its drug classes, sorted
    DAYS_SUPPLY,  # up to max_tracked_supply_days
    AGE,
    OCCURRED_AT,
    INSTITUTION_ID,
    DOCTOR_ID,
    DEPARTMENT_ID,
    ALERTED,  # the pair ids already alerted with this row as the trigger
    AMOUNT,  # quantity × unit_price, None without a price (appended: read with `optional`)
) = range(12)


@dataclass(frozen=True, slots=True)
class ContraindicationSettings(RuleSettings):
    severity: Severity = "high"
    issue_commands: bool = False
    legal_basis: str = f"{REGULATION}第十五条、第三十八条第二项"
    behaviour: str = "禁忌用药"
    on_check: OnCheck = "reject"
    quinolone_min_age: int = 18
    interaction_min_age: int = 65
    #: longest supply the rule tracks; bounds state against an absurd days_supply
    max_tracked_supply_days: int = 365

    def validate(self) -> None:
        RuleSettings.validate(self)
        positive("quinolone_min_age", self.quinolone_min_age)
        positive("interaction_min_age", self.interaction_min_age)
        positive("max_tracked_supply_days", self.max_tracked_supply_days)


class Contraindication(Rule[ContraindicationSettings]):
    name: ClassVar[str] = "contraindication"
    key_kind = "patient"
    event_types = frozenset({"dispense"})
    Settings = ContraindicationSettings
    state_version = 2  # 2: named state key ("dispensings", was "rx")

    def __init__(self, settings: ContraindicationSettings, context: RuleContext) -> None:
        super().__init__(settings, context)
        self._pairs = context.reference.pairs
        self._pair_classes = frozenset(
            c for pair in self._pairs for c in (pair.class_a, pair.class_b)
        )

    def on_event(self, state: State, event: Event) -> list[Finding]:
        body = event.body
        assert isinstance(body, Dispense)
        classes = self.context.reference.drug_classes(body.drug_code, body.atc_code)
        if not classes:
            return []
        findings = []
        if classes & self._pair_classes:
            row = (
                event.ts,
                event.event_id,
                body.drug_code,
                tuple(sorted(classes)),
                min(body.days_supply, self.settings.max_tracked_supply_days),
                event.patient_age,
                event.occurred_at,
                event.institution_id,
                event.doctor_id,
                event.department_id,
                (),
                dispensing_cost(body),
            )
            inserted = insert(state.get("dispensings", ()), row)
            if inserted is None:
                return []
            rows, position = inserted
            state["dispensings"], found = self._interactions(event.patient_id, rows, position)
            findings.extend(found)
        age = event.patient_age
        if "quinolone" in classes and age is not None and age < self.settings.quinolone_min_age:
            findings.append(self._quinolone(event, body, age))
        return findings

    def _quinolone(self, event: Event, body: Dispense, age: int) -> Finding:
        return Finding(
            subject=Subject("patient", event.patient_id),
            trigger_id=f"{event.event_id}/quinolone",
            occurred_at=event.occurred_at,
            event_ids=(event.event_id,),
            message=(
                f"Patient {event.patient_id}, aged {age}, was dispensed the quinolone "
                f"{body.drug_code} at {event.institution_id}; quinolones are contraindicated "
                f"under {self.settings.quinolone_min_age}."
            ),
            details={
                "check": "quinolone_minor",
                "drug_code": body.drug_code,
                "atc_code": body.atc_code,
                "patient_age": age,
                "min_age": self.settings.quinolone_min_age,
                "reference_version": self.context.reference.version,
            },
            patient_id=event.patient_id,
            institution_id=event.institution_id,
            doctor_id=event.doctor_id,
            department_id=event.department_id,
            amount=dispensing_cost(body),
        )

    def _interactions(
        self, patient_id: str, rows: Rows, position: int
    ) -> tuple[Rows, list[Finding]]:
        """Check the new row and the later rows its supply reaches (out-of-order arrival).

        Returns the rows (with the pairs found recorded on their rows) and the findings."""
        new = rows[position]
        end = first_at(rows, new[TS] + new[DAYS_SUPPLY] * DAY)
        findings = []
        for index in range(position, max(end, position + 1)):
            current = rows[index]
            age = current[AGE]
            if age is None or age < self.settings.interaction_min_age:
                continue
            for pair in self._pairs:
                if pair.pair_id in current[ALERTED]:
                    continue
                partners = _partners(pair, rows, index)
                if partners:
                    alerted = (*current[ALERTED], pair.pair_id)
                    current = (*current[:ALERTED], alerted, *current[ALERTED + 1 :])
                    rows = replace(rows, index, current)
                    findings.append(self._interaction(patient_id, pair, partners, current))
        return rows, findings

    def _interaction(
        self,
        patient_id: str,
        pair: InteractionPair,
        partners: list[Row],
        current: Row,
    ) -> Finding:
        overlap = max(p[TS] + p[DAYS_SUPPLY] * DAY for p in partners) - current[TS]
        return Finding(
            subject=Subject("patient", patient_id),
            trigger_id=f"{current[EVENT_ID]}/{pair.pair_id}",
            occurred_at=current[OCCURRED_AT],
            event_ids=tuple(row[EVENT_ID] for row in (*partners, current)),
            message=(
                f"Patient {patient_id}, aged {current[AGE]}, was dispensed "
                f"{current[DRUG_CODE]} at {current[INSTITUTION_ID]} while a supply of "
                f"{partners[-1][DRUG_CODE]} was still running ({pair.pair_id}, "
                f"contraindicated from age {self.settings.interaction_min_age})."
            ),
            details={
                "check": "interaction",
                "pair_id": pair.pair_id,
                "description": pair.description,
                "drug_codes": sorted({row[DRUG_CODE] for row in (*partners, current)}),
                "patient_age": current[AGE],
                "min_age": self.settings.interaction_min_age,
                "overlap_days": round(min(overlap, current[DAYS_SUPPLY] * DAY) / DAY, 2),
                "institutions": sorted({row[INSTITUTION_ID] for row in (*partners, current)}),
                "reference_version": self.context.reference.version,
            },
            patient_id=patient_id,
            institution_id=current[INSTITUTION_ID],
            doctor_id=current[DOCTOR_ID],
            department_id=current[DEPARTMENT_ID],
            amount=optional(current, AMOUNT),
        )

    def expire(self, state: State, cutoff: float) -> None:
        # A supply that ended before the cutoff overlaps no dispensing at or after it.
        rows = tuple(
            row for row in state.get("dispensings", ()) if row[TS] + row[DAYS_SUPPLY] * DAY > cutoff
        )
        state.clear()
        if rows:
            state["dispensings"] = rows

    def size(self, state: State) -> int:
        return len(state.get("dispensings", ()))


def _partners(pair: InteractionPair, rows: Rows, index: int) -> list[Row]:
    """Earlier rows of the pair's other class whose supply still runs at row `index`."""
    current = rows[index]
    classes = current[CLASSES]
    wanted = {c for c, other in pair_sides(pair) if other in classes}
    if not wanted:
        return []
    return [
        row
        for row in rows[:index]
        if row[TS] + row[DAYS_SUPPLY] * DAY > current[TS] and any(c in wanted for c in row[CLASSES])
    ]


def pair_sides(pair: InteractionPair) -> tuple[tuple[str, str], tuple[str, str]]:
    """(partner class, own class) both ways round."""
    return ((pair.class_b, pair.class_a), (pair.class_a, pair.class_b))
