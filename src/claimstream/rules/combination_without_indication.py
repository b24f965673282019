"""combination_without_indication (无指征联合用药): two drug classes billed together on a claim
whose diagnosis does not justify the combination (the seed case: a third-generation
cephalosporin with a macrolide without a severe-infection indication).

The pairs come from the reference data (`combination_rules.csv`: two classes of
`drug_classes.csv` and the ICD-10 prefixes that justify them). A claim is judged on its
`drug` items and its `diagnosis_code`: the claim is the event that carries both (a dispensing
carries no diagnosis in contract v1), so a combination split over two claims, or given as
dispensings, is not seen. An item's classes are found by its code (the `drug` rows) and, with
`atc_from_drug_code` (on), by the ATC group an NHSA western-drug code spells in its characters
2 to 6 (`XJ01DDA…` -> J01DD, matched against the `atc` rows' prefixes of up to five
characters); claim items carry no `atc_code`. The diagnosis is compared by prefix, case, dots
and spaces ignored. A claim without a diagnosis is not judged.

The contract carries one diagnosis per claim (the primary): a severe infection coded as a
secondary diagnosis is not seen, so a pre-settlement check warns rather than holds.

Amount: the billed amount of the combination, the lines of both classes' items (the alert's
`lines`; a reviewer decides which drug was not needed). Default legal basis:
《医疗保障基金使用监督管理条例》 Art. 15 (no 过度诊疗) and Art. 38 (2) (its penalty).

Stateless. One alert per (claim, pair), so alert ids do not depend on the other pairs a claim
shows. Severity warning; alerts only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from claimstream.model.config import REGULATION, OnCheck, RuleSettings
from claimstream.model.events import Claim, ClaimItem, Event
from claimstream.model.outputs import Severity, Subject
from claimstream.reference.loader import CombinationRule
from claimstream.rules.base import Finding, Rule, RuleContext, State
from claimstream.rules.kit.money import claim_lines, lines_total


def atc_of_nhsa_code(code: str) -> str | None:
    """The ATC group (five characters) an NHSA western-drug code (医保药品编码) spells after its
    leading X (`XJ01DDA...` -> `J01DD`), or None for any other code."""
    if len(code) >= 6 and code[0] == "X" and code[1].isalpha() and code[2:4].isdigit():
        return code[1:6].upper()
    return None


@dataclass(frozen=True, slots=True)
class CombinationWithoutIndicationSettings(RuleSettings):
    severity: Severity = "warning"
    issue_commands: bool = False
    legal_basis: str = f"{REGULATION}第十五条、第三十八条第二项"
    behaviour: str = "无指征联合用药"
    on_check: OnCheck = "warn"
    #: also class a drug item by the ATC group its NHSA code spells
    atc_from_drug_code: bool = True


class CombinationWithoutIndication(Rule[CombinationWithoutIndicationSettings]):
    name: ClassVar[str] = "combination_without_indication"
    key_kind = "patient"
    event_types = frozenset({"claim"})
    Settings = CombinationWithoutIndicationSettings
    stateless = True

    def __init__(
        self, settings: CombinationWithoutIndicationSettings, context: RuleContext
    ) -> None:
        super().__init__(settings, context)
        self.pairs = context.reference.combinations
        self.classes_in_pairs = frozenset(
            c for pair in self.pairs for c in (pair.class_a, pair.class_b)
        )
        #: drug code -> its classes that some pair names (a few thousand codes at most)
        self._cache: dict[str, frozenset[str]] = {}

    def _classes(self, item: ClaimItem) -> frozenset[str]:
        classes = self._cache.get(item.code)
        if classes is None:
            atc = atc_of_nhsa_code(item.code) if self.settings.atc_from_drug_code else None
            classes = self.context.reference.drug_classes(item.code, atc) & self.classes_in_pairs
            self._cache[item.code] = classes
        return classes

    def on_event(self, state: State, event: Event) -> list[Finding]:
        body = event.body
        assert isinstance(body, Claim)
        diagnosis = body.diagnosis_code
        if not diagnosis or not self.pairs:
            return []
        by_code = {
            item.code: classes
            for item in body.items
            if item.category == "drug" and (classes := self._classes(item))
        }
        if not by_code:
            return []  # the common case: no drug of any pair's classes
        present = frozenset().union(*by_code.values())
        return [
            self._finding(event, body, pair, by_code)
            for pair in self.pairs
            if pair.class_a in present and pair.class_b in present and not pair.justified(diagnosis)
        ]

    def _finding(
        self, event: Event, body: Claim, pair: CombinationRule, by_code: dict[str, frozenset[str]]
    ) -> Finding:
        both = {pair.class_a, pair.class_b}
        codes = {code for code, classes in by_code.items() if classes & both}
        lines = claim_lines(body.items, lambda item: item.category == "drug" and item.code in codes)
        return Finding(
            subject=Subject("patient", event.patient_id),
            trigger_id=f"{event.event_id}/{pair.pair_id}",
            occurred_at=event.occurred_at,
            event_ids=(event.event_id,),
            message=(
                f"Claim {body.claim_id} at {event.institution_id} combined {pair.class_a} with "
                f"{pair.class_b} for diagnosis {body.diagnosis_code}, which does not justify "
                f"the combination ({pair.description or pair.pair_id})."
            ),
            details={
                "claim_id": body.claim_id,
                "pair_id": pair.pair_id,
                "class_a": pair.class_a,
                "class_b": pair.class_b,
                "drug_codes": sorted(codes),
                "diagnosis_code": body.diagnosis_code,
                "indications": list(pair.indications),
                "reference_version": self.context.reference.version,
            },
            patient_id=event.patient_id,
            institution_id=event.institution_id,
            doctor_id=event.doctor_id,
            department_id=event.department_id,
            amount=lines_total(lines),
            lines=lines,
        )

    def expire(self, state: State, cutoff: float) -> None:
        state.clear()

    def size(self, state: State) -> int:
        return 0
