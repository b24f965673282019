"""diagnosis_cluster (虚假住院 pattern): at least `min_patients` (10) distinct patients with
the same diagnosis at one institution within `window_days` (30) whose claims carry no lab or
exam item.

A real admission leaves lab and exam items on its claim; a run of same-diagnosis admissions
without any is the footprint of fabricated admissions (e.g. patients recruited with free
check-ups and booked on paper). Only claims of `visit_types` (inpatient by default) with a
diagnosis_code count. The diagnosis is compared on its full code, or on the ICD-10
three-character category with `match_category`. One alert per episode (see `rules._window`);
subject the institution; severity high; alerts only.

State per institution: {diagnosis: {"r": [row...], "alerted": [event_id...]}}, rows sorted by
(ts, event_id); row = [ts, event_id, patient_id, occurred_at, claim_id, total_amount].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from claimstream.model.config import ConfigError, RuleSettings, positive
from claimstream.model.events import Claim, Event
from claimstream.model.outputs import Severity, Subject
from claimstream.model.timefmt import DAY
from claimstream.rules import _window
from claimstream.rules.base import Finding, Rule, State

_VISIT_TYPES = frozenset(("outpatient", "inpatient", "online"))
_EVIDENCE_CATEGORIES = frozenset(("lab", "exam"))


@dataclass(frozen=True, slots=True)
class DiagnosisClusterSettings(RuleSettings):
    severity: Severity = "high"
    issue_commands: bool = False
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


def _distinct_patients(rows: Sequence[_window.Row]) -> float:
    return len({row[2] for row in rows})


class DiagnosisCluster(Rule[DiagnosisClusterSettings]):
    name: ClassVar[str] = "diagnosis_cluster"
    key_kind = "institution"
    event_types = frozenset({"claim"})
    Settings = DiagnosisClusterSettings

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
        group: State = state.setdefault(diagnosis, {"r": (), "alerted": ()})
        row = (
            event.ts,
            event.event_id,
            event.patient_id,
            event.occurred_at,
            body.claim_id,
            body.total_amount,
        )
        inserted = _window.insert(group["r"], row)
        if inserted is None:
            return []
        rows, position = inserted
        group["r"] = rows
        alerted: Sequence[str] = group["alerted"]
        episodes = _window.new_episodes(
            rows,
            position,
            self.settings.window_days * DAY,
            self.settings.min_patients,
            _distinct_patients,
            alerted,
        )
        if not episodes:
            return []
        group["alerted"] = (*alerted, *(rows[index][1] for index, _ in episodes))
        return [
            self._finding(event.institution_id, diagnosis, rows[start : index + 1])
            for index, start in episodes
        ]

    def _finding(self, institution_id: str, diagnosis: str, rows: _window.Rows) -> Finding:
        trigger = rows[-1]
        patients = len({row[2] for row in rows})
        return Finding(
            subject=Subject("institution", institution_id),
            trigger_id=trigger[1],
            occurred_at=trigger[3],
            event_ids=tuple(row[1] for row in rows),
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
                "total_amount": round(sum(row[5] for row in rows), 2),
                "first_at": rows[0][3],
                "last_at": trigger[3],
            },
            patient_id=trigger[2],
            institution_id=institution_id,
        )

    def expire(self, state: State, cutoff: float) -> None:
        keep = 2 * self.settings.window_days * DAY
        for diagnosis in list(state):
            group = state[diagnosis]
            if _window.nothing_expires(group["r"], cutoff - keep):
                continue
            rows = _window.expire_rows(group["r"], cutoff, keep)
            if not rows:
                del state[diagnosis]
                continue
            kept = {row[1] for row in rows}
            group["r"] = rows
            group["alerted"] = tuple(e for e in group["alerted"] if e in kept)

    def size(self, state: State) -> int:
        return sum(len(group["r"]) for group in state.values())
