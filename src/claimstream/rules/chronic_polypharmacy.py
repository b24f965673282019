"""chronic_polypharmacy (超常处方): one patient receives at least `min_distinct_drugs` distinct
chronic-disease drugs within `window_days`.

A dispensing is of a chronic-disease drug when the event says `chronic: true` or the reference
data classes its drug code or ATC code as `chronic` (the region's 门诊慢特病 drug list). Drugs
are told apart by drug_code. One alert per episode (see `rules._window`); the trigger is the
newest prescription, the one that brings the count to the threshold.

Settlement of that newest prescription is held for manual review: a FREEZE whose scope names
the patient and the drug, with no expiry. The reviewer lifts it with an UNFREEZE of the same
scope (`claimstream freezes`); the rule never lifts it by itself.

State per patient: {"r": [row...], "alerted": [event_id...]}, rows sorted by (ts, event_id);
row = [ts, event_id, drug_code, occurred_at, institution_id, doctor_id, department_id].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from claimstream.model.config import RuleSettings, positive
from claimstream.model.events import Dispense, Event
from claimstream.model.outputs import Scope, Severity, Subject
from claimstream.model.timefmt import DAY
from claimstream.rules import _window
from claimstream.rules.base import CommandSpec, Finding, Rule, State


@dataclass(frozen=True, slots=True)
class ChronicPolypharmacySettings(RuleSettings):
    severity: Severity = "warning"
    issue_commands: bool = True
    min_distinct_drugs: int = 5
    window_days: float = 3.0

    def validate(self) -> None:
        RuleSettings.validate(self)
        positive("min_distinct_drugs", self.min_distinct_drugs)
        positive("window_days", self.window_days)


def _distinct_drugs(rows: Sequence[_window.Row]) -> float:
    return len({row[2] for row in rows})


class ChronicPolypharmacy(Rule[ChronicPolypharmacySettings]):
    name: ClassVar[str] = "chronic_polypharmacy"
    key_kind = "patient"
    event_types = frozenset({"dispense"})
    Settings = ChronicPolypharmacySettings

    def on_event(self, state: State, event: Event) -> list[Finding]:
        body = event.body
        assert isinstance(body, Dispense)
        if not body.chronic and "chronic" not in self.context.reference.drug_classes(
            body.drug_code, body.atc_code
        ):
            return []
        held: _window.Rows = state.setdefault("r", ())
        alerted: Sequence[str] = state.setdefault("alerted", ())
        row = (
            event.ts,
            event.event_id,
            body.drug_code,
            event.occurred_at,
            event.institution_id,
            event.doctor_id,
            event.department_id,
        )
        inserted = _window.insert(held, row)
        if inserted is None:
            return []
        rows, position = inserted
        state["r"] = rows
        window = self.settings.window_days * DAY
        episodes = _window.new_episodes(
            rows, position, window, self.settings.min_distinct_drugs, _distinct_drugs, alerted
        )
        if not episodes:
            return []
        state["alerted"] = (*alerted, *(rows[index][1] for index, _ in episodes))
        return [
            self._finding(event.patient_id, rows[start : index + 1]) for index, start in episodes
        ]

    def _finding(self, patient_id: str, rows: _window.Rows) -> Finding:
        trigger = rows[-1]
        drugs = sorted({row[2] for row in rows})
        drug_code = trigger[2]
        return Finding(
            subject=Subject("patient", patient_id),
            trigger_id=trigger[1],
            occurred_at=trigger[3],
            event_ids=tuple(row[1] for row in rows),
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
                "institutions": sorted({row[4] for row in rows}),
                "first_at": rows[0][3],
                "last_at": trigger[3],
                "reference_version": self.context.reference.version,
            },
            patient_id=patient_id,
            institution_id=trigger[4],
            doctor_id=trigger[5],
            department_id=trigger[6],
            commands=(
                CommandSpec(
                    action="FREEZE",
                    scope=Scope("patient", patient_id, drug_code),
                    effective_from=trigger[3],
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
        keep = 2 * self.settings.window_days * DAY
        rows = state.get("r", ())
        if _window.nothing_expires(rows, cutoff - keep):
            alerted = state.get("alerted", ())  # every row stays, so do the ids alerted of them
        else:
            rows = _window.expire_rows(rows, cutoff, keep)
            kept = {row[1] for row in rows}
            alerted = tuple(e for e in state.get("alerted", ()) if e in kept)
        state.clear()
        if rows:
            state["r"] = rows
        if alerted:
            state["alerted"] = alerted

    def size(self, state: State) -> int:
        return len(state.get("r", ()))
