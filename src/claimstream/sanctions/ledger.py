"""Which freezes are in force, from the sequence of commands alone.

The Redis registry is a cache of the commands topic: `FreezeLedger` is the pure model of what
that cache must hold, applying commands in topic order with the registry's rules (see
`claimstream.freezes.base`): each `command_id` at most once; UNFREEZE removes the scope's
entry; SUSPEND replaces it and never expires; a FREEZE does not shorten a longer one still in
force, nor lift a SUSPEND, even one that began after it (a FREEZE that reached the topic late).
Times come from the commands themselves (a FREEZE is judged at its `effective_from`), never
from the clock, so rebuilding from the topic at any later moment gives the same answer as the
registry had, and `compare` can check registry and topic agree.

One rule goes beyond the registry's today: an UNFREEZE lifts only what began at or before its
`effective_from`. The commands topic has several producers (the rules' same-day FREEZE, the
escalation's UNFREEZE at a freeze's expiry), so an UNFREEZE dated at midnight can reach the
topic after the next morning's FREEZE; it must not lift that one. The registry needs the same
comparison for `compare` to hold in that race.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from claimstream.model.outputs import Command, Scope
from claimstream.sanctions.codec import command_from_dict, to_ts

Outcome = Literal["applied", "duplicate", "superseded"]


@dataclass(slots=True)
class FreezeLedger:
    #: scope key (`kind:id` or `kind:id:drug`) -> the command that set it
    entries: dict[str, Command] = field(default_factory=dict)
    #: command ids applied -> effective_from (POSIX seconds), for idempotency
    applied: dict[str, float] = field(default_factory=dict)

    @classmethod
    def rebuild(cls, commands: Iterable[Command | Mapping[str, Any]]) -> FreezeLedger:
        """Apply a topic's commands (objects or their JSON dicts) in order."""
        ledger = cls()
        for command in commands:
            ledger.apply(command)
        return ledger

    def apply(self, command: Command | Mapping[str, Any]) -> Outcome:
        if not isinstance(command, Command):
            command = command_from_dict(command)
        at = to_ts(command.effective_from)
        if command.command_id in self.applied:
            return "duplicate"
        self.applied[command.command_id] = at
        key = command.scope.key()
        if command.action == "UNFREEZE":
            held = self.entries.get(key)
            if held is not None and to_ts(held.effective_from) > at:
                return "superseded"  # a freeze that began after the UNFREEZE's moment stays
            self.entries.pop(key, None)
            return "applied"
        if command.action == "FREEZE" and self._holds_longer(key, command, at):
            return "superseded"
        self.entries[key] = command
        return "applied"

    def _holds_longer(self, key: str, command: Command, at: float) -> bool:
        """Whether the entry held, in force at `at` or begun after it (a FREEZE can reach the
        topic after a later command of its scope), lasts at least as long as the new FREEZE."""
        held = self.entries.get(key)
        if held is None or _expired(held, at):
            return False
        if held.expires_at is None:
            return True
        return command.expires_at is not None and to_ts(held.expires_at) >= to_ts(
            command.expires_at
        )

    def active(self, now: float) -> dict[str, Command]:
        """Scope key -> command, for every freeze or suspension in force at `now`."""
        return {key: c for key, c in sorted(self.entries.items()) if _in_force(c, now)}

    def lookup(self, scope: Scope, now: float) -> list[Command]:
        """What blocks `scope` at `now`: the whole subject's entry, and the drug's if named."""
        keys = [Scope(scope.kind, scope.id).key()]
        if scope.drug_code:
            keys.append(scope.key())
        return [
            self.entries[k] for k in keys if k in self.entries and _in_force(self.entries[k], now)
        ]

    def prune(self, now: float, keep_ids_seconds: float) -> None:
        """Forget expired entries, and command ids older than the redelivery window."""
        for key in [k for k, c in self.entries.items() if _expired(c, now)]:
            del self.entries[key]
        for command_id in [c for c, at in self.applied.items() if at < now - keep_ids_seconds]:
            del self.applied[command_id]


@dataclass(frozen=True, slots=True)
class Agreement:
    """How a registry's freezes differ from the ledger's (all empty: they agree)."""

    missing: tuple[str, ...]  # in force per the commands, absent from the registry
    unexpected: tuple[str, ...]  # in the registry, not in force per the commands
    different: tuple[str, ...]  # both have the scope, set by different commands

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.different)


def compare(expected: Mapping[str, Command], registry: Iterable[Mapping[str, Any]]) -> Agreement:
    """`expected` from `FreezeLedger.active(now)`; `registry` the stored command dicts."""
    found: dict[str, str] = {}
    for stored in registry:
        command = command_from_dict(stored)
        found[command.scope.key()] = command.command_id
    return Agreement(
        missing=tuple(sorted(set(expected) - set(found))),
        unexpected=tuple(sorted(set(found) - set(expected))),
        different=tuple(
            sorted(k for k in set(expected) & set(found) if expected[k].command_id != found[k])
        ),
    )


def _in_force(command: Command, now: float) -> bool:
    return to_ts(command.effective_from) <= now and not _expired(command, now)


def _expired(command: Command, now: float) -> bool:
    return command.expires_at is not None and to_ts(command.expires_at) <= now
