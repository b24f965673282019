"""excess_quantity (超量开药): a single dispensing whose `days_supply` exceeds the prescription
limit: `acute_max_days` (7) for acute drugs, `chronic_max_days` (30) for chronic-disease ones,
`long_term_max_days` (84, twelve weeks) when the prescription is a long-term one
(`long_term_rx: true`, 长期处方).

A drug is chronic when the event says `chronic: true` or the reference data classes it as
`chronic`. "Exceeds" is strict: a 7-day acute supply is within the limit, 8 days is not.

Amount: the cost of the days over the limit, `quantity × unit_price × (days_supply − limit) /
days_supply` (None without a `unit_price`). Default legal basis: 《医疗保障基金使用监督管理条例》
Art. 15 (no 超量开药) and Art. 38 (2); a pre-settlement check holds the dispensing.

Stateless: one dispensing decides. A redelivery is caught by the engine's per-key dedup, and
the alert id depends only on the event, so a repeat after that is an idempotent duplicate.
Alerts only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from claimstream.model.config import REGULATION, ConfigError, OnCheck, RuleSettings, positive
from claimstream.model.events import Dispense, Event
from claimstream.model.outputs import Severity, Subject
from claimstream.rules.base import Finding, Rule, State
from claimstream.rules.kit.money import cents


@dataclass(frozen=True, slots=True)
class ExcessQuantitySettings(RuleSettings):
    severity: Severity = "warning"
    issue_commands: bool = False
    legal_basis: str = f"{REGULATION}第十五条、第三十八条第二项"
    behaviour: str = "超量开药"
    on_check: OnCheck = "hold"
    acute_max_days: int = 7
    chronic_max_days: int = 30
    long_term_max_days: int = 84

    def validate(self) -> None:
        RuleSettings.validate(self)
        positive("acute_max_days", self.acute_max_days)
        positive("chronic_max_days", self.chronic_max_days)
        positive("long_term_max_days", self.long_term_max_days)
        if not self.acute_max_days <= self.chronic_max_days <= self.long_term_max_days:
            raise ConfigError("limits must satisfy acute <= chronic <= long_term")


class ExcessQuantity(Rule[ExcessQuantitySettings]):
    name: ClassVar[str] = "excess_quantity"
    key_kind = "patient"
    event_types = frozenset({"dispense"})
    Settings = ExcessQuantitySettings
    stateless = True

    def on_event(self, state: State, event: Event) -> list[Finding]:
        body = event.body
        assert isinstance(body, Dispense)
        settings = self.settings
        if body.days_supply <= settings.acute_max_days:
            return []  # the common case needs no classification lookup
        if body.long_term_rx:
            kind, limit = "long-term", settings.long_term_max_days
        elif body.chronic or "chronic" in self.context.reference.drug_classes(
            body.drug_code, body.atc_code
        ):
            kind, limit = "chronic", settings.chronic_max_days
        else:
            kind, limit = "acute", settings.acute_max_days
        if body.days_supply <= limit:
            return []
        excess = body.days_supply - limit
        price = body.unit_price
        return [
            Finding(
                subject=Subject("patient", event.patient_id),
                trigger_id=event.event_id,
                occurred_at=event.occurred_at,
                event_ids=(event.event_id,),
                message=(
                    f"Patient {event.patient_id} was dispensed {body.days_supply} days of "
                    f"{body.drug_code} at {event.institution_id}, over the {limit}-day limit "
                    f"for a {kind} prescription."
                ),
                details={
                    "drug_code": body.drug_code,
                    "days_supply": body.days_supply,
                    "limit_days": limit,
                    "excess_days": excess,
                    "prescription_kind": kind,
                    "quantity": body.quantity,
                    "reference_version": self.context.reference.version,
                },
                patient_id=event.patient_id,
                institution_id=event.institution_id,
                doctor_id=event.doctor_id,
                department_id=event.department_id,
                amount=(
                    None
                    if price is None
                    else cents(body.quantity * price * excess / body.days_supply)
                ),
            )
        ]

    def expire(self, state: State, cutoff: float) -> None:
        state.clear()

    def size(self, state: State) -> int:
        return 0
