"""One aligned (doctor) pipeline with fakes for faust: what reaches `pending-doctor`, when."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson

from claimstream.detection.config import DetectionConfig
from claimstream.detection.engine import Engine
from claimstream.detection.processor import KeyedProcessor
from claimstream.devtools.simulate import generate
from claimstream.model.records import Record
from claimstream.stream.codec import PartitionPointer
from claimstream.stream.detection.pipeline import SWEEP_STEP, Pipeline

TOPIC = "claimstream.repartition.doctor"
STATES = "claimstream-state-doctor-changelog"
PENDING = "claimstream-pending-doctor-changelog"


class Publisher:
    """Keeps what is sent; the delivery of key states resolves only when the test says so,
    any other at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []
        self.deliveries: list[asyncio.Future[None]] = []

    async def send(self, records: Any) -> list[Any]:
        records = list(records)
        self.sent.extend(records)
        delivery: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if any(r[0] == STATES for r in records):
            self.deliveries.append(delivery)
        else:
            delivery.set_result(None)
        return [delivery]

    def deliver_all(self) -> None:
        for delivery in self.deliveries:
            if not delivery.done():
                delivery.set_result(None)


def pipeline(publisher: Publisher) -> Pipeline:
    states: dict[str, Any] = {}
    processor = KeyedProcessor(
        Engine(DetectionConfig.default(), None),
        "doctor",
        states.get,
        home_topics=frozenset(),
        partitions=8,
        align=True,
    )
    out = Pipeline(
        processor,
        SimpleNamespace(data=states),
        sinks=[],
        publisher=publisher,  # type: ignore[arg-type]
        repartition_topics={},
        changelog_topic=STATES,
        pointer=PartitionPointer(TOPIC),
        pending_table=SimpleNamespace(data={}),
        pending_changelog=PENDING,
    )
    out.rebalanced([0])
    return out


def visits() -> list[Record]:
    found = [e for e in generate(400, seed=4) if e["event_type"] == "consultation"][:3]
    return [
        Record(v["doctor_id"].encode(), orjson.dumps(v), TOPIC, 0, n, 0.0, ())
        for n, v in enumerate(found)
    ]


def marker(offset: int) -> Record:
    body = orjson.dumps({f"consultations/{p}": [None, True] for p in range(8)})  # all idle
    return Record(None, None, TOPIC, 0, offset, 0.0, (("cs-marker", body),))


def to(publisher: Publisher, topic: str) -> list[tuple[Any, ...]]:
    return [r for r in publisher.sent if r[0] == topic]


def test_released_events_leave_the_pending_table_only_once_their_key_states_are_delivered() -> None:
    async def run() -> None:
        publisher = Publisher()
        pipe = pipeline(publisher)
        assert pipe.pending_table is not None
        await pipe.handle(visits())
        waiting = dict(pipe.pending_table.data)
        assert len(waiting) == 3 and len(to(publisher, PENDING)) == 3
        publisher.deliver_all()

        await pipe.handle([marker(3)])  # everything is released: the states are sent
        assert to(publisher, STATES)
        assert pipe.pending_table.data == waiting  # their delivery is not confirmed yet
        assert all(value is not None for _, _, value, _ in to(publisher, PENDING))

        publisher.deliver_all()
        await pipe.handle([marker(4)])
        assert pipe.pending_table.data == {}
        tombstones = [key for _, key, value, _ in to(publisher, PENDING) if value is None]
        assert sorted(tombstones) == sorted(key.encode() for key in waiting)

    asyncio.run(run())


def test_a_restart_puts_back_the_waiting_events_of_the_assigned_partitions() -> None:
    async def run() -> None:
        publisher = Publisher()
        first = pipeline(publisher)
        await first.handle(visits())
        assert first.pending_table is not None
        second = pipeline(Publisher())
        second.pending_table = SimpleNamespace(data=dict(first.pending_table.data))
        assert second.rebalanced([1]) == 0
        assert second.rebalanced([0, 1]) == 3
        assert second.waiting() == 3
        assert second.rebalanced([0, 1]) == 0  # those it holds are not doubled

    asyncio.run(run())


def test_waiting_events_are_delivered_to_the_pending_table_before_their_keys_states_are_sent() -> (
    None
):
    """A restart that found the states (their sources' lateness marks) but not the waiting
    events would judge them late when it reads them again."""

    async def run() -> None:
        publisher = Publisher()
        pipe = pipeline(publisher)
        await pipe.handle(visits())
        topics = [r[0] for r in publisher.sent]
        assert topics == [PENDING] * 3 + [STATES] * (len(topics) - 3)
        assert STATES in topics

    asyncio.run(run())


class Sweeping:
    """A processor stand-in for the sweep: every key it is given has expired. Notes the keys
    of each call and how many records the publisher had been sent by then."""

    def __init__(self, publisher: Publisher) -> None:
        self.publisher = publisher
        self.homes: dict[str, int] = {}
        self.calls: list[tuple[int, int]] = []  # (keys, records sent before the call)

    def sweep(self, keys: list[str], load: Any, partition_of: Any) -> tuple[dict[str, Any], Any]:
        self.calls.append((len(keys), len(self.publisher.sent)))
        return {}, {key: partition_of(key) for key in keys}


def sweeper(keys: int) -> tuple[Pipeline, Sweeping, Publisher, dict[str, Any]]:
    publisher = Publisher()
    processor = Sweeping(publisher)
    states: dict[str, Any] = {f"P{i}": {"seen": {}} for i in range(keys)}
    pipe = Pipeline(
        processor,  # type: ignore[arg-type]
        SimpleNamespace(data=states),
        sinks=[],
        publisher=publisher,  # type: ignore[arg-type]
        repartition_topics={},
        changelog_topic=STATES,
        pointer=PartitionPointer(TOPIC),
    )
    return pipe, processor, publisher, states


async def test_a_sweep_expires_its_slice_a_step_at_a_time_each_step_on_the_changelog_first() -> (
    None
):
    n = 3 * SWEEP_STEP + 5
    pipe, processor, publisher, states = sweeper(n)
    assert await pipe.sweep(lambda: [0], lambda key: 0) == n
    assert processor.calls == [
        (SWEEP_STEP, 0),
        (SWEEP_STEP, SWEEP_STEP),
        (SWEEP_STEP, 2 * SWEEP_STEP),
        (5, 3 * SWEEP_STEP),
    ]
    assert states == {}
    tombstones = [
        key for topic, key, value, _ in publisher.sent if topic == STATES and value is None
    ]
    assert sorted(tombstones) == sorted(f"P{i}".encode() for i in range(n))


async def test_the_event_loop_turns_between_the_steps_of_a_sweep() -> None:
    pipe, processor, _, _ = sweeper(3 * SWEEP_STEP)
    steps_seen: list[int] = []

    async def watch() -> None:  # what another task (a check) sees when the loop turns
        while True:
            steps_seen.append(len(processor.calls))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)
    await pipe.sweep(lambda: [0], lambda key: 0)
    watcher.cancel()
    assert {1, 2} <= set(steps_seen)


async def test_a_sweep_writes_no_key_of_a_partition_given_away_between_its_steps() -> None:
    pipe, _, _, states = sweeper(3 * SWEEP_STEP)
    owned = [{0}, set(), set()]  # a rebalance takes partition 0 away after the first step
    asked = iter(owned)

    removed = await pipe.sweep(lambda: next(asked), lambda key: 0)

    assert removed == SWEEP_STEP
    assert len(states) == 2 * SWEEP_STEP
