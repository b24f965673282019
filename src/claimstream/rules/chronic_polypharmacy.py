"""chronic_polypharmacy (超常处方): one patient receives at least `min_distinct_drugs` (5)
distinct chronic-disease drugs within `window_days` (3).

A dispensing is of a chronic-disease drug when the event says `chronic: true` or the reference
data classes its drug code or ATC code as `chronic` (the region's 门诊慢特病 drug list). Drugs
are told apart by drug_code. The window is trailing and excludes its start: five drugs within
2 d 23 h 59 min alert, with the fifth exactly 3 days after the first they do not. One alert per
episode (`rules.kit.episodes`); the trigger is the newest prescription, the one that brings the
count to the threshold.

Settlement of that newest prescription is held for manual review: a FREEZE whose scope names
the patient and the drug, with no expiry. The reviewer lifts it with an UNFREEZE of the same
scope (`claimstream freezes`); the rule never lifts it by itself.

Amount: the cost of the held prescription, its `quantity × unit_price` (None without a
`unit_price`). Default legal basis: 《医疗保障基金使用监督管理条例》 Art. 15 and Art. 38 (2)
("违反诊疗规范...提供其他不必要的医药服务"); a pre-settlement check holds it, as the FREEZE does.

State per patient: an episode group {"rows": [row...], "alerted": [event_id...]}, one row per
chronic-drug dispensing (layout below), kept one to two windows (`Episodes.expire`). A
redelivered dispensing is already held and changes nothing; one arriving out of order is
counted where it belongs and the later windows are recounted, so the alerts are the in-order
ones (see `rules.kit.episodes` for the one exception, an episode's start moving earlier).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import ClassVar

from claimstream.model.config import REGULATION, OnCheck, RuleSettings, positive
from claimstream.model.events import Dispense, Event
from claimstream.model.outputs import Scope, Severity, Subject
from claimstream.model.timefmt import DAY
from claimstream.rules.base import CommandSpec, Finding, Rule, RuleContext, State
from claimstream.rules.kit.episodes import Episodes
from claimstream.rules.kit.money import dispensing_cost
from claimstream.rules.kit.rows import Row, Rows, optional

# a row: one chronic-drug dispensing; AMOUNT (quantity × unit_price or None) was appended
# later, so a row held from before has none (`optional`)
TS, EVENT_ID, DRUG_CODE, OCCURRED_AT, INSTITUTION_ID, DOCTOR_ID, DEPARTMENT_ID, AMOUNT = range(8)
_drug_code = itemgetter(DRUG_CODE)


@dataclass(frozen=True, slots=True)
class ChronicPolypharmacySettings(RuleSettings):
    severity: Severity = "warning"
    issue_commands: bool = True
    legal_basis: str = f"{REGULATION}第十五条、第三十八条第二项"
    behaviour: str = "超常处方"
    on_check: OnCheck = "hold"
    min_distinct_drugs: int = 5
    window_days: float = 3.0

    def validate(self) -> None:
        RuleSettings.validate(self)
        positive("min_distinct_drugs", self.min_distinct_drugs)
        positive("window_days", self.window_days)


def _distinct_drugs(rows: Sequence[Row]) -> float:
    return len(set(map(_drug_code, rows)))


class ChronicPolypharmacy(Rule[ChronicPolypharmacySettings]):
    name: ClassVar[str] = "chronic_polypharmacy"
    key_kind = "patient"
    event_types = frozenset({"dispense"})
    Settings = ChronicPolypharmacySettings
    state_version = 2  # 2: named state keys ("rows", was "r")

    def __init__(self, settings: ChronicPolypharmacySettings, context: RuleContext) -> None:
        super().__init__(settings, context)
        window = settings.window_days * DAY
        self.episodes = Episodes(window, settings.min_distinct_drugs, _distinct_drugs)

    def on_event(self, state: State, event: Event) -> list[Finding]:
        body = event.body
        assert isinstance(body, Dispense)
        if not body.chronic and "chronic" not in self.context.reference.drug_classes(
            body.drug_code, body.atc_code
        ):
            return []
        row = (
            event.ts,
            event.event_id,
            body.drug_code,
            event.occurred_at,
            event.institution_id,
            event.doctor_id,
            event.department_id,
            dispensing_cost(body),
        )
        return [self._finding(event.patient_id, rows) for rows in self.episodes.add(state, row)]

    def _finding(self, patient_id: str, rows: Rows) -> Finding:
        trigger = rows[-1]
        drugs = sorted({row[DRUG_CODE] for row in rows})
        drug_code = trigger[DRUG_CODE]
        return Finding(
            subject=Subject("patient", patient_id),
            trigger_id=trigger[EVENT_ID],
            occurred_at=trigger[OCCURRED_AT],
            event_ids=tuple(row[EVENT_ID] for row in rows),
            message=(
                f"Patient {patient_id} received {len(drugs)} distinct chronic-disease drugs "
                f"within {self.settings.window_days:g} days "
                f"(threshold {self.settings.min_distinct_drugs}); the newest prescription, "
                f"{drug_code}, is held for review."
            ),
            details={
                "distinct_drugs": len(drugs),
                "min_distinct_drugs": self.settings.min_distinct_drugs,
                "window_days": self.settings.window_days,
                "drug_codes": drugs,
                "held_drug_code": drug_code,
                "dispensings": len(rows),
                "institutions": sorted({row[INSTITUTION_ID] for row in rows}),
                "first_at": rows[0][OCCURRED_AT],
                "last_at": trigger[OCCURRED_AT],
                "reference_version": self.context.reference.version,
            },
            patient_id=patient_id,
            institution_id=trigger[INSTITUTION_ID],
            doctor_id=trigger[DOCTOR_ID],
            department_id=trigger[DEPARTMENT_ID],
            amount=optional(trigger, AMOUNT),
            commands=(
                CommandSpec(
                    action="FREEZE",
                    scope=Scope("patient", patient_id, drug_code),
                    effective_from=trigger[OCCURRED_AT],
                    expires_at=None,
                    reason=(
                        f"{len(drugs)} chronic-disease drugs within "
                        f"{self.settings.window_days:g} days: settlement of {drug_code} held "
                        "for manual review (lift with UNFREEZE)"
                    ),
                ),
            ),
        )

    def expire(self, state: State, cutoff: float) -> None:
        self.episodes.expire(state, cutoff)

    def size(self, state: State) -> int:
        return self.episodes.size(state)
