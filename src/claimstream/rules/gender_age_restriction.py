"""gender_age_restriction (限性别/限年龄): a drug or service restricted to one gender or an age
band (female only, child only...) given to a patient outside it.

Restrictions come from the reference data (`restrictions.csv`, the regulators' rule-library
batch: over 11 000 items in the first one) as a dict by code, loaded once per engine, so each
check is one dict lookup however long the list. A dispensing is checked by its drug_code, a
claim by each item's code. The event's `patient_gender` / `patient_age` are compared; an
unknown one never violates. Age bands are inclusive.

Stateless. Each (event, code) outside its restriction is one alert, so alert ids do not depend
on which other items a claim carries. Severity high; alerts only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from claimstream.model.config import RuleSettings
from claimstream.model.events import Claim, Dispense, Event
from claimstream.model.outputs import Severity, Subject
from claimstream.reference.loader import Restriction
from claimstream.rules.base import Finding, Rule, State


@dataclass(frozen=True, slots=True)
class GenderAgeRestrictionSettings(RuleSettings):
    severity: Severity = "high"
    issue_commands: bool = False
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
        )

    def expire(self, state: State, cutoff: float) -> None:
        state.clear()

    def size(self, state: State) -> int:
        return 0
