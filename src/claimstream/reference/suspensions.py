"""Suspensions in force: doctors whose billing the sanctions ladder has suspended, as data.

Detection sits below sanctions in the layers, so a rule cannot ask the ladder. The ladder's
decisions reach it the way reference data does: as an input the engine is given. The input is
the commands topic (`commands.v1`), which already carries every SUSPEND the ladder (12 points
in a year, grade D, the escalation) decides and every UNFREEZE a person uses to lift one:

- a SUSPEND of a whole doctor scope (`{"kind": "doctor", "id": ...}`, no `drug_code`) starts a
  suspension at its `effective_from` (event time, no expiry);
- an UNFREEZE of that scope ends the suspension that began at or before its `effective_from`
  (as `sanctions.ledger` reads it: an UNFREEZE does not lift a later SUSPEND);
- every other command (FREEZEs, other scopes) is ignored; a `command_id` counts once.

`Suspensions.suspension(doctor, ts)` is then the suspension in force at the event time `ts`:
a doctor's claim after his SUSPEND's `effective_from` is judged suspended however late the
command itself was read, so replaying the same events with the same commands gives the same
alerts. What is not deterministic is only the race the stream cannot avoid: an event processed
before the worker has read the SUSPEND that precedes it in event time is judged unsuspended.

Pure and small (one entry per suspended doctor), built from command dicts so that
`claimstream replay`, tests and the worker feed it the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Suspension:
    command_id: str
    since: float  # POSIX seconds
    until: float | None  # when an UNFREEZE lifted it, else None (in force)
    effective_from: str  # as the command wrote it


@dataclass(slots=True)
class Suspensions:
    """Doctor id -> his suspensions, oldest first; `applied` for idempotency."""

    by_doctor: dict[str, list[Suspension]] = field(default_factory=dict)
    applied: set[str] = field(default_factory=set)

    @classmethod
    def from_commands(cls, commands: Iterable[Mapping[str, Any]]) -> Suspensions:
        suspensions = cls()
        for command in commands:
            suspensions.apply(command)
        return suspensions

    def apply(self, command: Mapping[str, Any]) -> bool:
        """Take one command.v1 dict into account; True when it changed anything."""
        action = command.get("action")
        scope = command.get("scope")
        command_id = command.get("command_id")
        if (
            action not in ("SUSPEND", "UNFREEZE")
            or not isinstance(scope, Mapping)
            or scope.get("kind") != "doctor"
            or scope.get("drug_code") is not None
            or not isinstance(command_id, str)
            or command_id in self.applied
        ):
            return False
        doctor = scope.get("id")
        effective_from = command.get("effective_from")
        if not isinstance(doctor, str) or not isinstance(effective_from, str):
            return False
        try:
            at = datetime.fromisoformat(effective_from).timestamp()
        except ValueError:
            return False
        self.applied.add(command_id)
        held = self.by_doctor.setdefault(doctor, [])
        if action == "SUSPEND":
            held.append(Suspension(command_id, at, None, effective_from))
            held.sort(key=lambda s: s.since)
            return True
        changed = False
        for n, suspension in enumerate(held):
            if suspension.since <= at and (suspension.until is None or suspension.until > at):
                held[n] = Suspension(suspension.command_id, suspension.since, at, effective_from)
                changed = True
        return changed

    def suspension(self, doctor_id: str, ts: float) -> Suspension | None:
        """The suspension of `doctor_id` in force at event time `ts`, if any."""
        held = self.by_doctor.get(doctor_id)
        if not held:
            return None
        for suspension in reversed(held):
            if suspension.since <= ts and (suspension.until is None or ts < suspension.until):
                return suspension
        return None

    def __len__(self) -> int:
        return sum(1 for held in self.by_doctor.values() for s in held if s.until is None)
