"""`registry.rebuild` against the in-process registry: plan, swap, and a worker racing it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from claimstream.freezes.base import Write
from claimstream.freezes.memory import MemoryRegistry
from claimstream.freezes.rebuild import rebuild
from claimstream.sanctions.ledger import FreezeLedger, compare
from tests.freezes.test_guard import COMMANDS, Topic, agrees_with_the_topic, worker_applies
from tests.freezes.test_memory import SCOPES, _base, contract_command


def records(*commands: object) -> list[tuple[str, bytes | None]]:
    return [(f"t[0]@{n}", orjson.dumps(c.to_dict())) for n, c in enumerate(commands)]  # type: ignore[attr-defined]


async def test_rebuild_fills_an_empty_registry_and_sets_markers() -> None:
    c = contract_command
    commands = [
        c("f", "FREEZE", -1, 1),
        c("u", "UNFREEZE", -0.5),
        c("s", "SUSPEND", -1, None, SCOPES[1]),
    ]
    registry = MemoryRegistry()

    async def read() -> list[tuple[str, bytes | None]]:
        return records(*commands)

    result = await rebuild(registry, read, clock=lambda: _base)
    assert result.applied and result.markers == 3
    assert result.plan.agreement.missing == ("patient:P1:INS",)
    held = [f.command for f in await registry.active(_base)]
    assert compare(FreezeLedger.rebuild(commands).active(_base), held).ok
    assert await registry.apply(commands[:1], _base) == ["duplicate"]


async def test_dry_run_changes_nothing() -> None:
    registry = MemoryRegistry()

    async def read() -> list[tuple[str, bytes | None]]:
        return [*records(contract_command("f", "FREEZE", -1, 1)), ("t[0]@9", None)]

    result = await rebuild(registry, read, dry_run=True, clock=lambda: _base)
    assert not result.applied and result.plan.agreement.missing == ("institution:H1",)
    assert result.unreadable == [("t[0]@9", "no value (tombstone)")]
    assert await registry.active(_base) == []


class RacedRegistry(MemoryRegistry):
    """A worker applies a newer command between the rebuild's read and its first swap."""

    def __init__(self, command: object) -> None:
        super().__init__()
        self.command = command
        self.swaps = 0

    async def swap(
        self,
        seen: Mapping[str, bytes | None],
        writes: Mapping[str, Write],
        markers: Iterable[str],
        now: float,
    ) -> bool:
        self.swaps += 1
        if self.swaps == 1:
            await self.apply([self.command], now)  # type: ignore[list-item]
        return await super().swap(seen, writes, markers, now)


async def test_a_worker_racing_the_rebuild_is_not_overwritten() -> None:
    c = contract_command
    first = c("f", "FREEZE", -1, 1)
    newer = c("s", "SUSPEND", -0.5)  # published, then applied by a worker, during the rebuild
    registry = RacedRegistry(newer)
    batches = [records(first), records(newer)]

    async def read() -> list[tuple[str, bytes | None]]:
        return batches.pop(0) if batches else []

    result = await rebuild(registry, read, clock=lambda: _base)
    assert result.applied and result.attempts == 2 and result.commands == 2
    assert [f.command["command_id"] for f in await registry.active(_base)] == ["cmd-s"]


# -- a rebuild racing a worker or another rebuild (the guard runs one on every worker) ---------


class Interrupted(MemoryRegistry):
    """A registry whose first `stored()` lets `meanwhile` run first: whatever happens between a
    rebuild's reads."""

    def __init__(self) -> None:
        super().__init__()
        self.meanwhile: Any = None

    async def stored(self) -> dict[str, bytes]:
        if self.meanwhile is not None:
            meanwhile, self.meanwhile = self.meanwhile, None
            await meanwhile()
        return await super().stored()


NEWER = contract_command("s3", "SUSPEND", -0.1)  # the scope of COMMANDS[0]


async def test_a_worker_applying_a_command_during_a_rebuild_is_not_undone() -> None:
    registry, topic = Interrupted(), Topic(COMMANDS)

    async def worker() -> None:
        await worker_applies(registry, topic, [NEWER])

    registry.meanwhile = worker
    async with topic.open() as read:
        await rebuild(registry, read, clock=lambda: _base)
    held = await registry.lookup("institution", "H1", now=_base)
    assert [f.command["command_id"] for f in held] == ["cmd-s3"]


async def test_two_rebuilds_at_once_leave_what_the_whole_topic_says() -> None:
    """Rebuild B runs (and a worker applies a newer command) while rebuild A is between its
    reads: A must not put back what it read before them."""
    registry, topic = Interrupted(), Topic(COMMANDS)

    async def rebuild_b_then_worker() -> None:
        async with topic.open() as read:
            await rebuild(registry, read, clock=lambda: _base)
        await worker_applies(registry, topic, [NEWER])

    registry.meanwhile = rebuild_b_then_worker
    async with topic.open() as read:
        await rebuild(registry, read, clock=lambda: _base)
    assert await agrees_with_the_topic(registry, topic)
    held = await registry.lookup("institution", "H1", now=_base)
    assert [f.command["command_id"] for f in held] == ["cmd-s3"]
