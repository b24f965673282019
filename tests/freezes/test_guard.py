"""The registry guard (`freezes.guard`) against the in-process registry playing Redis: a loss, a
restart that kept the data, the lock, two rebuilds at once, failures."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

import orjson

from claimstream.freezes.base import Look, RegistryUnavailable
from claimstream.freezes.guard import Outcome, Read, RegistryGuard, Trigger
from claimstream.freezes.memory import MemoryRegistry
from claimstream.freezes.rebuild import Rebuild
from claimstream.model.outputs import Command
from claimstream.sanctions.ledger import FreezeLedger, compare
from tests.freezes.test_memory import SCOPES, _base, contract_command

c = contract_command
COMMANDS = [
    c("f", "FREEZE", -1, 1),
    c("s", "SUSPEND", -2, None, SCOPES[1]),
    c("u", "UNFREEZE", -0.5, None, SCOPES[2]),
    c("f2", "FREEZE", -1, 2, SCOPES[2]),
]


class Topic:
    """The commands topic: what was published, read by each opened reader from the start."""

    def __init__(self, commands: Iterable[Command] = ()) -> None:
        self.records: list[bytes] = [orjson.dumps(x.to_dict()) for x in commands]
        self.opened = 0
        self.fail: Exception | None = None

    def publish(self, command: Command) -> None:
        self.records.append(orjson.dumps(command.to_dict()))

    @contextlib.asynccontextmanager
    async def open(self) -> AsyncIterator[Read]:
        self.opened += 1
        if self.fail is not None:
            raise self.fail
        position = 0

        async def read() -> list[tuple[str, bytes | None]]:
            nonlocal position
            new = self.records[position:]
            start, position = position, len(self.records)
            return [(f"commands[0]@{start + n}", value) for n, value in enumerate(new)]

        yield read


@dataclass
class Events:
    """What the guard told the worker."""

    reached: list[bool] = field(default_factory=list)
    started: list[Trigger] = field(default_factory=list)
    ended: list[tuple[Trigger, Outcome]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    def reachable(self, error: Exception | None) -> None:
        self.reached.append(error is None)

    def rebuilding(self, trigger: Trigger) -> None:
        self.started.append(trigger)

    def rebuilt(self, trigger: Trigger, outcome: Outcome, result: Rebuild) -> None:
        self.ended.append((trigger, outcome))

    def failed(self, trigger: Trigger, error: Exception) -> None:
        self.failures.append(f"{trigger}: {error}")


def guard_of(registry: MemoryRegistry, topic: Topic) -> tuple[RegistryGuard, Events]:
    events = Events()
    return RegistryGuard(registry, topic.open, events, clock=lambda: _base), events  # type: ignore[arg-type]


async def worker_applies(registry: MemoryRegistry, topic: Topic, commands: list[Command]) -> None:
    """What a worker does: publish, then apply."""
    for command in commands:
        topic.publish(command)
    await registry.apply(commands, _base)


async def agrees_with_the_topic(registry: MemoryRegistry, topic: Topic) -> bool:
    ledger = FreezeLedger()
    for value in topic.records:
        ledger.apply(orjson.loads(value))
    held = [f.command for f in await registry.active(_base)]
    return compare(ledger.active(_base), held).ok


async def a_guarded_registry() -> tuple[MemoryRegistry, Topic, RegistryGuard, Events]:
    """A registry the worker filled and the guard has looked at once (it is marked)."""
    registry, topic = MemoryRegistry(), Topic()
    await worker_applies(registry, topic, COMMANDS)
    guard, events = guard_of(registry, topic)
    await guard.step()
    return registry, topic, guard, events


async def test_an_empty_registry_at_the_first_look_is_filled_from_the_topic() -> None:
    registry, topic = MemoryRegistry(), Topic(COMMANDS)
    guard, events = guard_of(registry, topic)
    result = await guard.step()
    assert result is not None and result.applied
    assert events.ended == [("start", "repaired")]
    assert await agrees_with_the_topic(registry, topic)


async def test_a_registry_that_lost_its_data_is_rebuilt_without_anyone_asking() -> None:
    registry, topic, guard, events = await a_guarded_registry()
    registry.restart(keep=False)
    assert not await agrees_with_the_topic(registry, topic)
    await guard.step()
    assert events.ended[-1] == ("lost", "repaired")
    assert await agrees_with_the_topic(registry, topic)


async def test_the_markers_are_back_after_a_rebuild_so_a_redelivery_changes_nothing() -> None:
    registry, _, guard, _ = await a_guarded_registry()
    registry.restart(keep=False)
    await guard.step()
    assert await registry.apply(COMMANDS[:1], _base) == ["duplicate"]


async def test_a_restart_that_kept_the_data_is_checked_and_nothing_is_written() -> None:
    registry, _topic, guard, events = await a_guarded_registry()
    registry.restart(keep=True)
    result = await guard.step()
    assert events.ended[-1] == ("restart", "clean")
    assert result is not None and result.plan.writes == {}


async def test_a_restart_from_an_older_snapshot_is_repaired() -> None:
    registry, topic, guard, events = await a_guarded_registry()
    older = dict(registry.data)
    await worker_applies(registry, topic, [c("s2", "SUSPEND", -0.1)])
    registry.restart(keep=True)
    registry.data = older  # the snapshot was taken before the SUSPEND
    await guard.step()
    assert events.ended[-1] == ("restart", "repaired")
    assert await agrees_with_the_topic(registry, topic)


async def test_an_untouched_registry_is_only_looked_at() -> None:
    _registry, topic, guard, events = await a_guarded_registry()
    opened = topic.opened
    assert await guard.step() is None
    assert topic.opened == opened and len(events.ended) == 1


async def test_answers_are_not_trusted_from_the_loss_until_the_rebuild() -> None:
    registry, _topic, guard, _ = await a_guarded_registry()
    assert guard.trusted() is None
    registry.restart(keep=False)
    registry.lock_holder = "another worker"  # it rebuilds; this one only waits
    await guard.step()
    assert guard.trusted() is not None
    registry.lock_holder = None
    await guard.step()
    assert guard.trusted() is None


async def test_a_worker_leaves_the_rebuild_to_the_lock_holder_and_sees_it_done() -> None:
    registry, topic, guard, events = await a_guarded_registry()
    other, _ = guard_of(registry, topic)
    registry.restart(keep=False)
    registry.lock_holder = other.token
    opened = topic.opened
    assert await guard.step() is None
    assert topic.opened == opened  # it did not read the topic
    registry.lock_holder = None
    await other.step()  # the holder's rebuild, which marks the registry
    assert await guard.step() is None
    assert guard.pending is None and events.ended == [("start", "clean")]  # its own first look


async def test_a_failed_rebuild_is_tried_again_at_the_next_look() -> None:
    registry, topic, guard, events = await a_guarded_registry()
    registry.restart(keep=False)
    topic.fail = ConnectionError("broker gone")
    await guard.step()
    assert events.failures == ["lost: broker gone"]
    assert registry.lock_holder is None  # released for the next attempt
    topic.fail = None
    await guard.step()
    assert events.ended[-1] == ("lost", "repaired")
    assert await agrees_with_the_topic(registry, topic)


async def test_a_registry_lost_during_its_rebuild_is_not_marked_whole() -> None:
    registry, topic = MemoryRegistry(), Topic(COMMANDS)
    guard, events = guard_of(registry, topic)

    @contextlib.asynccontextmanager
    async def lost_while_reading() -> AsyncIterator[Read]:
        async with topic.open() as read:

            async def read_then_lose() -> Iterable[tuple[str, bytes | None]]:
                records = await read()
                registry.restart(keep=False)  # Redis restarts empty mid-rebuild
                return records

            yield read_then_lose

    guard.commands = lost_while_reading
    await guard.step()
    assert events.failures and "not marked whole" in events.failures[0]
    guard.commands = topic.open
    await guard.step()
    assert events.ended == [("lost", "clean")]  # seen as a loss; the first swap had refilled it
    assert await agrees_with_the_topic(registry, topic)


class Unreachable(MemoryRegistry):
    async def look(self) -> Look:
        raise RegistryUnavailable("Redis at 127.0.0.1:1: connection refused")


async def test_an_unreachable_registry_is_reported_and_not_rebuilt() -> None:
    registry, topic = Unreachable(), Topic(COMMANDS)
    guard, events = guard_of(registry, topic)
    assert await guard.step() is None
    assert events.reached == [False] and topic.opened == 0


async def test_the_guard_keeps_looking_after_a_bug_in_a_step() -> None:
    class Buggy(MemoryRegistry):
        looks = 0

        async def look(self) -> Look:
            Buggy.looks += 1
            if Buggy.looks == 1:
                raise KeyError("a bug")
            return await super().look()

    guard, events = guard_of(Buggy(), Topic(COMMANDS))
    task = asyncio.create_task(guard.run(interval=0.001))
    try:
        for _ in range(1000):
            if events.ended:
                break
            await asyncio.sleep(0.001)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert events.ended == [("start", "repaired")]


async def test_answers_are_not_trusted_before_the_first_look() -> None:
    """A worker just started has not seen whether Redis lost its data: a freeze read then could
    be a miss, so it answers 503 until its guard has looked once."""
    registry, topic = MemoryRegistry(), Topic(COMMANDS)
    guard, _ = guard_of(registry, topic)
    assert guard.trusted() is not None
    await guard.step()  # the first look: empty, filled from the topic
    assert guard.trusted() is None
