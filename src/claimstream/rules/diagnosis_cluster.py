"""diagnosis_cluster (虚假住院 pattern): at least `min_patients` (10) distinct patients with
the same diagnosis at one institution within `window_days` (30) whose claims carry no lab or
exam item.

A real admission leaves lab and exam items on its claim; a run of same-diagnosis admissions
without any is the footprint of fabricated admissions (e.g. patients recruited with free
check-ups and booked on paper). Only claims of `visit_types` (inpatient by default) with a
diagnosis_code count. The diagnosis is compared on its full code, or on the ICD-10
three-character category with `match_category`. The window is trailing and excludes its start;
a patient counts once however many claims. One alert per episode (`rules.kit.episodes`);
subject the institution; severity high; alerts only.

Amount: what the episode's claims billed, the sum of their `total_amount` (the suspected
admissions' whole cost). Default legal basis: 《医疗保障基金使用监督管理条例》 Art. 15 (no
inducing or assisting 虚假就医) and Art. 40 (1) (its penalty as fraud); a pre-settlement check
holds the claim.

State per institution: {diagnosis: episode group {"rows": [row...], "alerted": [event_id...]}},
one row per counted claim (layout below), kept one to two windows (`Episodes.expire`); a
diagnosis goes when its rows do. A redelivered claim is already held and changes nothing; one
arriving out of order is counted where it belongs and the later windows are recounted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import ClassVar

from claimstream.model.config import REGULATION, ConfigError, OnCheck, RuleSettings, positive
from claimstream.model.events import Claim, Event
from claimstream.model.outputs import Severity, Subject
from claimstream.model.timefmt import DAY
from claimstream.rules.base import Finding, Rule, RuleContext, State
from claimstream.rules.kit.episodes import Episodes
from claimstream.rules.kit.rows import Row, Rows

# a row: one claim without evidence
TS, EVENT_ID, PATIENT_ID, OCCURRED_AT, CLAIM_ID, TOTAL_AMOUNT = range(6)
_patient = itemgetter(PATIENT_ID)

_VISIT_TYPES = frozenset(("outpatient", "inpatient", "online"))
_EVIDENCE_CATEGORIES = frozenset(("lab", "exam"))


@dataclass(frozen=True, slots=True)
class DiagnosisClusterSettings(RuleSettings):
    severity: Severity = "high"
    issue_commands: bool = False
    legal_basis: str = f"{REGULATION}第十五条、第四十条第一项"
    behaviour: str = "虚假住院"
    on_check: OnCheck = "hold"
    min_patients: int = 10
    window_days: float = 30.0
    visit_types: tuple[str, ...] = ("inpatient",)
    match_category: bool = False

    def validate(self) -> None:
        RuleSettings.validate(self)
        positive("min_patients", self.min_patients)
        positive("window_days", self.window_days)
        unknown = set(self.visit_types) - _VISIT_TYPES
        if unknown or not self.visit_types:
            raise ConfigError(
                f"visit_types must be a non-empty list of {', '.join(sorted(_VISIT_TYPES))}"
            )


def _distinct_patients(rows: Sequence[Row]) -> float:
    return len(set(map(_patient, rows)))


class DiagnosisCluster(Rule[DiagnosisClusterSettings]):
    name: ClassVar[str] = "diagnosis_cluster"
    key_kind = "institution"
    event_types = frozenset({"claim"})
    Settings = DiagnosisClusterSettings
    state_version = 2  # 2: named state keys ("rows", was "r")

    def __init__(self, settings: DiagnosisClusterSettings, context: RuleContext) -> None:
        super().__init__(settings, context)
        window = settings.window_days * DAY
        self.episodes = Episodes(window, settings.min_patients, _distinct_patients)

    def on_event(self, state: State, event: Event) -> list[Finding]:
        body = event.body
        assert isinstance(body, Claim)
        code = body.diagnosis_code
        if code is None or body.visit_type not in self.settings.visit_types:
            return []
        if any(item.category in _EVIDENCE_CATEGORIES for item in body.items):
            return []
        diagnosis = code.strip().upper()
        if self.settings.match_category:
            diagnosis = diagnosis[:3]
        row = (
            event.ts,
            event.event_id,
            event.patient_id,
            event.occurred_at,
            body.claim_id,
            body.total_amount,
        )
        episodes = self.episodes.add(state.setdefault(diagnosis, {}), row)
        return [self._finding(event.institution_id, diagnosis, rows) for rows in episodes]

    def _finding(self, institution_id: str, diagnosis: str, rows: Rows) -> Finding:
        trigger = rows[-1]
        patients = len({row[PATIENT_ID] for row in rows})
        amount = round(sum(row[TOTAL_AMOUNT] for row in rows), 2)
        return Finding(
            subject=Subject("institution", institution_id),
            trigger_id=trigger[EVENT_ID],
            occurred_at=trigger[OCCURRED_AT],
            event_ids=tuple(row[EVENT_ID] for row in rows),
            message=(
                f"Institution {institution_id} billed {patients} patients with diagnosis "
                f"{diagnosis} within {self.settings.window_days:g} days without any lab or "
                f"exam item (threshold {self.settings.min_patients})."
            ),
            details={
                "diagnosis": diagnosis,
                "patients": patients,
                "min_patients": self.settings.min_patients,
                "window_days": self.settings.window_days,
                "claims": len(rows),
                "total_amount": amount,
                "first_at": rows[0][OCCURRED_AT],
                "last_at": trigger[OCCURRED_AT],
            },
            patient_id=trigger[PATIENT_ID],
            institution_id=institution_id,
            amount=amount,
        )

    def expire(self, state: State, cutoff: float) -> None:
        for diagnosis, group in list(state.items()):
            self.episodes.expire(group, cutoff)
            if not group:
                del state[diagnosis]

    def size(self, state: State) -> int:
        return sum(self.episodes.size(group) for group in state.values())
