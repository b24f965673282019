"""drg_high_multiplier (高倍率病例, and 低倍率病例): an inpatient claim whose `total_amount`
exceeds the multiplier times its DRG's `drg_standard_cost`, or falls below `low_multiplier`
times it.

Under DRG payment a high-multiplier case is paid item by item instead of at the group rate, so
an institution gains by pushing cases over the line; supervisors review each one. The
multiplier depends on the institution's grade: `tertiary_multiplier` (3) for tertiary
hospitals, `other_multiplier` (2) for the rest. The grade is the claim's `institution_level`
(tertiary / 三级 / 3 / 三甲 ...), else the reference registry's (`institutions.csv`), else the
institution is treated as non-tertiary. "Exceeds" is strict. Claims without a standard cost
are skipped.

Low-multiplier cases (`flag_low`, on by default; `low_multiplier` 0.3, the DRG specification's
usual line for 费用极低病例): a stay that cost less than that share of its group's standard is
reviewed for an admission that needed no stay (低标准入院, a form of 过度诊疗) or a case coded
into a richer group. "Below" is strict: 0.3 × the standard does not alert. `details.kind` is
`high` or `low`.

Amount: for a high case the excess over the DRG standard, `total_amount − drg_standard_cost`:
what the case costs beyond the group payment; for a low case the whole `total_amount` (an
admission that needed no stay costs all of it). Default legal basis:
《医疗保障基金使用监督管理条例》 Art. 15 and Art. 38 (2) (过度诊疗, what a review of such a case
looks for) and the NHSA's DRG payment technical specification on cost-outlier cases
(费用极高病例; 费用极低病例), cited without an article; a pre-settlement check holds the claim
for that review.

Stateless; keyed by patient only because every claim has one (it needs no state). The subject
is the institution that billed the case. Severity warning; alerts only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from claimstream.model.config import REGULATION, ConfigError, OnCheck, RuleSettings, positive
from claimstream.model.events import Claim, Event
from claimstream.model.outputs import Severity, Subject
from claimstream.rules.base import Finding, Rule, State
from claimstream.rules.kit.money import cents


@dataclass(frozen=True, slots=True)
class DrgHighMultiplierSettings(RuleSettings):
    severity: Severity = "warning"
    issue_commands: bool = False
    legal_basis: str = (
        f"{REGULATION}第十五条、第三十八条第二项；"
        "国家医保局疾病诊断相关分组付费技术规范（费用极高病例）"
    )
    behaviour: str = "过度诊疗"
    on_check: OnCheck = "hold"
    tertiary_multiplier: float = 3.0
    other_multiplier: float = 2.0
    #: also flag low-multiplier cases: below `low_multiplier` times the standard cost
    flag_low: bool = True
    low_multiplier: float = 0.3

    def validate(self) -> None:
        RuleSettings.validate(self)
        positive("tertiary_multiplier", self.tertiary_multiplier)
        positive("other_multiplier", self.other_multiplier)
        positive("low_multiplier", self.low_multiplier)
        if self.low_multiplier >= min(self.tertiary_multiplier, self.other_multiplier):
            raise ConfigError(
                "low_multiplier must be below tertiary_multiplier and other_multiplier"
            )


class DrgHighMultiplier(Rule[DrgHighMultiplierSettings]):
    name: ClassVar[str] = "drg_high_multiplier"
    key_kind = "patient"
    event_types = frozenset({"claim"})
    Settings = DrgHighMultiplierSettings
    stateless = True

    def on_event(self, state: State, event: Event) -> list[Finding]:
        body = event.body
        assert isinstance(body, Claim)
        standard = body.drg_standard_cost
        if body.visit_type != "inpatient" or not standard:
            return []
        level = self.context.reference.institution_level(
            event.institution_id, body.institution_level
        )
        multiplier = (
            self.settings.tertiary_multiplier
            if level == "tertiary"
            else self.settings.other_multiplier
        )
        ratio = body.total_amount / standard
        if ratio > multiplier:
            kind, line = "high", multiplier
            amount = cents(body.total_amount - standard)
            said = f"above the {multiplier:g}x line for a {level or 'ungraded'} institution"
        elif self.settings.flag_low and ratio < self.settings.low_multiplier:
            kind, line = "low", self.settings.low_multiplier
            amount = cents(body.total_amount)
            said = f"below the {line:g}x line of a low-multiplier case"
        else:
            return []
        return [
            Finding(
                subject=Subject("institution", event.institution_id),
                trigger_id=event.event_id,
                occurred_at=event.occurred_at,
                event_ids=(event.event_id,),
                message=(
                    f"Inpatient claim {body.claim_id} at {event.institution_id} cost "
                    f"{ratio:.2f} times the standard cost of DRG {body.drg_code or '?'}, {said}."
                ),
                details={
                    "kind": kind,
                    "claim_id": body.claim_id,
                    "drg_code": body.drg_code,
                    "total_amount": body.total_amount,
                    "drg_standard_cost": standard,
                    "ratio": round(ratio, 3),
                    "multiplier": line,
                    "institution_level": level,
                    "reference_version": self.context.reference.version,
                },
                patient_id=event.patient_id,
                institution_id=event.institution_id,
                doctor_id=event.doctor_id,
                department_id=event.department_id,
                amount=amount,
            )
        ]

    def expire(self, state: State, cutoff: float) -> None:
        state.clear()

    def size(self, state: State) -> int:
        return 0
