"""Rebuilding the freeze registry from the commands topic (`claimstream freezes rebuild`).

The registry is a cache of the commands topic: replaying the topic into a `FreezeLedger` gives
what the registry must hold (the registry applies the same rule, `base.decide`). A rebuild
compares the two and changes only the keys that differ, all in one atomic step
(`FreezeRegistry.swap`: one MULTI/EXEC on Redis), so a settlement system reading the registry
sees either the old or the rebuilt value of every key, never an empty registry or a half-done
rebuild. The "already applied" markers of the topic's recent commands (the marker window) are
set in the same step, so a worker redelivering one of them after the rebuild changes nothing.

Workers may keep running, and so may another rebuild (the workers' guards run one when Redis
lost the registry, `freezes.guard`). Each attempt reads the registry first and the commands
topic after it: a worker publishes a command before applying it, so every command whose effect
the registry showed is read too, and the plan never writes a key back to an older command
than the one already there. If a worker (or another rebuild) changes a key the rebuild is
about to write after that read, the swap fails, the rebuild reads the commands that arrived
since and tries again. A key no command touches during the rebuild is never raced.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from claimstream.freezes.base import (
    MARKER_TTL_SECONDS,
    Delete,
    FreezeRegistry,
    Store,
    Write,
    command_value,
    epoch_ms,
    freeze_key,
    held_command,
)
from claimstream.model.outputs import Command
from claimstream.sanctions.codec import to_ts
from claimstream.sanctions.ledger import Agreement, FreezeLedger, compare

#: how often the rebuild reads the topic again after the registry changed under it
ATTEMPTS = 5


class RebuildConflict(RuntimeError):
    """The registry kept changing while the rebuild tried to swap its keys."""


@dataclass(slots=True)
class Plan:
    """What a rebuild at `now` changes: `writes` per registry key, guarded by `seen`."""

    now: float
    writes: dict[str, Write]
    seen: dict[str, bytes | None]
    agreement: Agreement  # registry vs ledger, freezes in force at `now`
    stored: int  # freeze keys the registry held
    expected: dict[str, Command]  # ledger: in force at `now`
    pending: tuple[str, ...]  # ledger: held but not in force yet (effective later)
    unreadable_keys: tuple[str, ...]  # registry keys whose value is not a command


@dataclass(slots=True)
class Rebuild:
    """The outcome of `rebuild` (also of a dry run, with `applied` False)."""

    plan: Plan
    commands: int = 0  # command records read
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (where, why)
    markers: int = 0
    attempts: int = 1
    applied: bool = False

    def to_dict(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "commands": self.commands,
            "unreadable_records": [{"where": w, "why": y} for w, y in self.unreadable],
            "stored_keys": plan.stored,
            "in_force": len(plan.expected),
            "pending": list(plan.pending),
            "missing": list(plan.agreement.missing),
            "unexpected": list(plan.agreement.unexpected),
            "different": list(plan.agreement.different),
            "unreadable_keys": list(plan.unreadable_keys),
            "set": sorted(k for k, w in plan.writes.items() if isinstance(w, Store)),
            "deleted": sorted(k for k, w in plan.writes.items() if isinstance(w, Delete)),
            "markers": self.markers,
            "attempts": self.attempts,
            "applied": self.applied,
        }


def plan(ledger: FreezeLedger, stored: Mapping[str, bytes], prefix: str, now: float) -> Plan:
    """The writes that make the registry (`stored`: freeze key -> value) hold the ledger."""
    base = f"{prefix}:freeze:"
    desired = {
        key: c
        for key, c in ledger.entries.items()
        if c.expires_at is None or to_ts(c.expires_at) > now
    }
    writes: dict[str, Write] = {}
    held: list[dict[str, Any]] = []
    unreadable: list[str] = []
    for rkey, value in stored.items():
        command = held_command(value)
        if command is None:
            unreadable.append(rkey)
        elif (command.expires_at is None or to_ts(command.expires_at) > now) and to_ts(
            command.effective_from
        ) <= now:
            held.append(orjson.loads(value))
        if rkey[len(base) :] not in desired:
            writes[rkey] = Delete()
    for command in desired.values():
        s = command.scope
        rkey = freeze_key(prefix, s.kind, s.id, s.drug_code)
        current = held_command(stored.get(rkey))
        if current is None or current.command_id != command.command_id:
            expires = epoch_ms(command.expires_at) if command.expires_at else None
            writes[rkey] = Store(command_value(command), expires)
    expected = ledger.active(now)
    return Plan(
        now=now,
        writes=writes,
        seen={rkey: stored.get(rkey) for rkey in writes},
        agreement=compare(expected, held),
        stored=len(stored),
        expected=expected,
        pending=tuple(sorted(set(desired) - set(expected))),
        unreadable_keys=tuple(sorted(unreadable)),
    )


async def rebuild(
    registry: FreezeRegistry,
    read: Callable[[], Awaitable[Iterable[tuple[str, bytes | None]]]],
    *,
    dry_run: bool = False,
    clock: Callable[[], float] = time.time,
    attempts: int = ATTEMPTS,
) -> Rebuild:
    """Read the commands (`read()` returns (where, value) pairs not read before), compare
    with the registry, and unless `dry_run` swap the differing keys and set the markers."""
    ledger = FreezeLedger()
    result = Rebuild(plan=plan(ledger, {}, registry.prefix, clock()))

    def feed(records: Iterable[tuple[str, bytes | None]]) -> None:
        for where, value in records:
            result.commands += 1
            try:
                if value is None:
                    raise ValueError("no value (tombstone)")
                data = orjson.loads(value)
                if not isinstance(data, dict):
                    raise ValueError("not a JSON object")
                ledger.apply(data)
            except ValueError as exc:
                result.unreadable.append((where, str(exc)))

    for attempt in range(1, attempts + 1):
        now = clock()
        result.attempts = attempt
        stored = await registry.stored()
        # What the registry showed was published before it was applied: read up to here.
        feed(await read())
        result.plan = plan(ledger, stored, registry.prefix, now)
        if dry_run:
            return result
        window = now - MARKER_TTL_SECONDS
        markers = [cid for cid, at in ledger.applied.items() if at >= window]
        if await registry.swap(result.plan.seen, result.plan.writes, markers, now):
            result.markers = len(markers)
            result.applied = True
            return result
        # a worker changed a key meanwhile: the next attempt reads what it published
    raise RebuildConflict(f"the registry kept changing; gave up after {attempts} attempts")
