"""gender_age_restriction (限性别/限年龄): a drug or service restricted to one gender or an age
band (female only, child only...) given to a patient outside it.

Restrictions come from the reference data (`restrictions.csv`, the regulators' rule-library
batch: over 11 000 items in the first one) as a dict by code, loaded once per engine, so each
check is one dict lookup however long the list. A dispensing is checked by its drug_code, a
claim by each item's code. The event's `patient_gender` / `patient_age` are compared; an
unknown one never violates. Age bands are inclusive.

Amount: the whole billed amount of the restricted item, which the fund does not pay outside
its restriction: on a claim, the sum of `quantity × unit_price` over the item's lines (the
alert's `lines`); on a dispensing, its `quantity × unit_price` (None without a `unit_price`).
Default legal basis: 《医疗保障基金使用监督管理条例》 Art. 15 (the fund pays only within the
payment scope) and Art. 38 (6) (不属于医疗保障基金支付范围的医药费用纳入医疗保障基金结算); a
pre-settlement check rejects it.

Stateless. Each (event, code) outside its restriction is one alert, so alert ids do not depend
on which other items a claim carries. Severity high; alerts only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from claimstream.model.config import REGULATION, OnCheck, RuleSettings
from claimstream.model.events import Claim, Dispense, Event
from claimstream.model.outputs import Severity, Subject
from claimstream.reference.loader import Restriction
from claimstream.rules.base import Finding, Rule, State
from claimstream.rules.kit.money import claim_lines, dispensing_cost, lines_total


@dataclass(frozen=True, slots=True)
class GenderAgeRestrictionSettings(RuleSettings):
    severity: Severity = "high"
    issue_commands: bool = False
    legal_basis: str = f"{REGULATION}第十五条、第三十八条第六项"
    behaviour: str = "超限定支付范围"
    on_check: OnCheck = "reject"
    check_gender: bool = True
    check_age: bool = True


class GenderAgeRestriction(Rule[GenderAgeRestrictionSettings]):
    name: ClassVar[str] = "gender_age_restriction"
    key_kind = "patient"
    event_types = frozenset({"dispense", "claim"})
    Settings = GenderAgeRestrictionSettings
    stateless = True

    def on_event(self, state: State, event: Event) -> list[Finding]:
        if event.patient_gender is None and event.patient_age is None:
            return []
        restrictions = self.context.reference.restrictions
        body = event.body
        if isinstance(body, Dispense):
            if body.drug_code not in restrictions:
                return []  # the common case: an unrestricted drug
            codes: tuple[str, ...] = (body.drug_code,)
        else:
            assert isinstance(body, Claim)
            for item in body.items:
                if item.code in restrictions:
                    break
            else:
                return []  # the common case: no restricted item
            codes = tuple(dict.fromkeys(item.code for item in body.items))
        findings = []
        for code in codes:
            restriction = restrictions.get(code)
            if restriction is None:
                continue
            violation = restriction.violation(event.patient_gender, event.patient_age)
            if violation == "gender" and not self.settings.check_gender:
                violation = restriction.violation(None, event.patient_age)
            if violation == "age" and not self.settings.check_age:
                violation = None
            if violation is not None:
                findings.append(self._finding(event, restriction, violation))
        return findings

    def _finding(self, event: Event, restriction: Restriction, violation: str) -> Finding:
        body = event.body
        if isinstance(body, Claim):
            code = restriction.code
            lines = claim_lines(body.items, lambda item: item.code == code)
            amount = lines_total(lines)
        else:
            assert isinstance(body, Dispense)
            lines, amount = (), dispensing_cost(body)
        patient = (
            ("female" if event.patient_gender == "F" else "male")
            if violation == "gender"
            else f"aged {event.patient_age}"
        )
        item = f"{restriction.code} {restriction.name}".strip()
        return Finding(
            subject=Subject("patient", event.patient_id),
            trigger_id=f"{event.event_id}/{restriction.code}",
            occurred_at=event.occurred_at,
            event_ids=(event.event_id,),
            message=(
                f"Patient {event.patient_id} ({patient}) received {item} at "
                f"{event.institution_id}, which is restricted to {restriction.describe()}."
            ),
            details={
                "code": restriction.code,
                "name": restriction.name,
                "violation": violation,
                "restricted_gender": restriction.gender,
                "min_age": restriction.min_age,
                "max_age": restriction.max_age,
                "patient_gender": event.patient_gender,
                "patient_age": event.patient_age,
                "event_type": event.event_type,
                "reference_version": self.context.reference.version,
            },
            patient_id=event.patient_id,
            institution_id=event.institution_id,
            doctor_id=event.doctor_id,
            department_id=event.department_id,
            amount=amount,
            lines=lines,
        )

    def expire(self, state: State, cutoff: float) -> None:
        state.clear()

    def size(self, state: State) -> int:
        return 0
