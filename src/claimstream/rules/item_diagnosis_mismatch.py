"""item_diagnosis_mismatch (诊断与项目不符 / 捆绑检查): an exam or lab item billed on a claim whose
diagnosis does not indicate it (the seed case: a pelvic ultrasound for a headache).

The items and the diagnoses that indicate them come from the reference data
(`item_indications.csv`: the item code and ICD-10 prefixes), a dict by code loaded once per
engine, so each claim costs one lookup per item. An item not listed is never checked. The
claim's `diagnosis_code` is compared by prefix, case, dots and spaces ignored (R10.2 = r102
matches the prefix R10). A claim without a diagnosis is not judged.

The contract carries one diagnosis per claim (the primary). An inpatient stay treats more
than its primary diagnosis, so by default only `visit_types` outpatient and online claims are
judged; a region with complete outpatient coding may add `inpatient`. Clinical judgement, or a
secondary diagnosis the contract does not carry, can justify an item: a pre-settlement check
warns rather than holds.

Amount: the billed amount of the items outside their indications, the sum of their lines'
`quantity × unit_price` (the alert's `lines`). Default legal basis: 《医疗保障基金使用监督管理条例》
Art. 15 (no 过度检查) and Art. 38 (2) (its penalty).

Stateless. One alert per claim, naming every mismatched line. Severity warning; alerts only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from claimstream.model.config import REGULATION, ConfigError, OnCheck, RuleSettings
from claimstream.model.events import Claim, Event
from claimstream.model.outputs import Severity, Subject
from claimstream.rules.base import Finding, Rule, State
from claimstream.rules.kit.money import claim_lines, lines_total

VISIT_TYPES = ("outpatient", "inpatient", "online")


@dataclass(frozen=True, slots=True)
class ItemDiagnosisMismatchSettings(RuleSettings):
    severity: Severity = "warning"
    issue_commands: bool = False
    legal_basis: str = f"{REGULATION}第十五条、第三十八条第二项"
    behaviour: str = "过度检查"
    on_check: OnCheck = "warn"
    #: the claims judged, by visit type
    visit_types: tuple[str, ...] = ("outpatient", "online")

    def validate(self) -> None:
        RuleSettings.validate(self)
        unknown = [v for v in self.visit_types if v not in VISIT_TYPES]
        if unknown or not self.visit_types:
            raise ConfigError(f"visit_types must name some of {', '.join(VISIT_TYPES)}")


class ItemDiagnosisMismatch(Rule[ItemDiagnosisMismatchSettings]):
    name: ClassVar[str] = "item_diagnosis_mismatch"
    key_kind = "patient"
    event_types = frozenset({"claim"})
    Settings = ItemDiagnosisMismatchSettings
    stateless = True

    def on_event(self, state: State, event: Event) -> list[Finding]:
        body = event.body
        assert isinstance(body, Claim)
        diagnosis = body.diagnosis_code
        if not diagnosis or body.visit_type not in self.settings.visit_types:
            return []
        indications = self.context.reference.item_indications
        mismatched = {
            item.code
            for item in body.items
            if (listed := indications.get(item.code)) is not None
            and not listed.indicated(diagnosis)
        }
        if not mismatched:
            return []  # the common case: no listed item, or all indicated
        lines = claim_lines(body.items, lambda item: item.code in mismatched)
        codes = sorted(mismatched)
        names = [f"{code} {indications[code].name}".strip() for code in codes]
        return [
            Finding(
                subject=Subject("patient", event.patient_id),
                trigger_id=event.event_id,
                occurred_at=event.occurred_at,
                event_ids=(event.event_id,),
                message=(
                    f"Claim {body.claim_id} at {event.institution_id} billed "
                    f"{', '.join(names)} for diagnosis {diagnosis}, which does not indicate "
                    f"{'it' if len(codes) == 1 else 'them'}."
                ),
                details={
                    "claim_id": body.claim_id,
                    "diagnosis_code": diagnosis,
                    "visit_type": body.visit_type,
                    "items": codes,
                    "indications": {code: list(indications[code].indications) for code in codes},
                    "reference_version": self.context.reference.version,
                },
                patient_id=event.patient_id,
                institution_id=event.institution_id,
                doctor_id=event.doctor_id,
                department_id=event.department_id,
                amount=lines_total(lines),
                lines=lines,
            )
        ]

    def expire(self, state: State, cutoff: float) -> None:
        state.clear()

    def size(self, state: State) -> int:
        return 0
