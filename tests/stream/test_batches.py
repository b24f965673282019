"""The batch reader against faust's flow control, with stand-ins for the app and its consumer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from mode.utils.queues import FlowControlEvent, ThrowableQueue

from claimstream.stream.batches import ack_all, queue_batches, records_of

TOPIC = "settlement.claims.v1"


@dataclass
class Message:
    offset: int
    generation_id: int
    topic: str = TOPIC
    tracked: bool = False
    acked: bool = False


@dataclass
class Event:
    message: Message

    def ack(self) -> None:
        self.message.acked = True


@dataclass
class Consumer:
    pending: set[int] = field(default_factory=set)

    def track_message(self, message: Message) -> None:
        self.pending.add(message.offset)

    @property
    def _unacked_messages(self) -> Any:
        consumer = self

        class _View:
            def discard(self, message: Message) -> None:
                consumer.pending.discard(message.offset)

        return _View()


class Topics:
    acking_topics = frozenset({TOPIC})


class App:
    def __init__(self) -> None:
        self.flow_control = FlowControlEvent(initially_suspended=False)
        self.consumer = Consumer()
        self.consumer_generation_id = 1
        self.topics = Topics()


class Channel:
    def __init__(self, queue: ThrowableQueue[Any]) -> None:
        self.queue = queue


class Stream:
    def __init__(self, queue: ThrowableQueue[Any]) -> None:
        self.channel = Channel(queue)
        self.should_stop = False


def _setup() -> tuple[App, Stream, ThrowableQueue[Any]]:
    app = App()
    queue: ThrowableQueue[Any] = ThrowableQueue(flow_control=app.flow_control, clear_on_resume=True)
    return app, Stream(queue), queue


def _offsets(events: list[Any]) -> list[int]:
    return [e.message.offset for e in events]


async def _next(batches: Any) -> list[Any]:
    batch: list[Any] = await asyncio.wait_for(batches.__anext__(), 2)
    return batch


def test_records_survive_a_flow_resume() -> None:
    """faust clears agent queues on every resume; records there were not always fetched again."""

    async def run() -> None:
        app, stream, queue = _setup()
        batches = queue_batches(app, stream, 100, 0.01)
        queue.put_nowait(Event(Message(0, 1)))
        assert _offsets(await _next(batches)) == [0]
        for offset in (1, 2, 3):
            queue.put_nowait(Event(Message(offset, 1)))
        app.flow_control.resume()  # what faust does at the end of every recovery
        assert _offsets(await _next(batches)) == [1, 2, 3]

    asyncio.run(run())


def test_messages_are_pending_from_the_moment_they_are_taken() -> None:
    async def run() -> None:
        app, stream, queue = _setup()
        batches = queue_batches(app, stream, 100, 0.01)
        for offset in (5, 6):
            queue.put_nowait(Event(Message(offset, 1)))
        batch = await _next(batches)
        assert app.consumer.pending == {5, 6}
        assert all(e.message.tracked for e in batch)
        ack_all(batch)
        assert all(e.message.acked for e in batch)

    asyncio.run(run())


def test_records_of_an_older_generation_or_during_a_rebalance_are_dropped_unacked() -> None:
    async def run() -> None:
        app, stream, queue = _setup()
        batches = queue_batches(app, stream, 100, 0.01)
        old = Event(Message(7, 1))
        queue.put_nowait(old)
        app.consumer_generation_id = 2  # a rebalance happened since it was fetched
        app.flow_control.suspend()  # and another one is under way
        suspended = Event(Message(8, 2))
        queue.put_nowait(suspended)
        await asyncio.sleep(0.05)
        app.flow_control.resume()
        queue.put_nowait(Event(Message(7, 2)))  # fetched again after the seek
        assert _offsets(await _next(batches)) == [7]
        for dropped in (old, suspended):
            assert not dropped.message.tracked and not dropped.message.acked
        assert app.consumer.pending == {7}

    asyncio.run(run())


def test_a_stopped_agent_leaves_its_unfinished_batch_unacked_and_not_pending() -> None:
    async def run() -> None:
        app, stream, queue = _setup()
        batches = queue_batches(app, stream, 100, 0.5)
        queue.put_nowait(Event(Message(1, 1)))
        task = asyncio.ensure_future(_next(batches))
        await asyncio.sleep(0.05)  # the batch is being filled
        assert app.consumer.pending == {1}
        await queue.throw(StopAsyncIteration())  # how faust's Actor.cancel stops an agent
        try:
            await task
        except StopAsyncIteration:
            pass
        else:
            raise AssertionError("the reader should have ended")
        assert app.consumer.pending == set()

    asyncio.run(run())


def test_records_keep_their_kafka_headers() -> None:
    """The repartition topics' event-time progress travels in headers (docs/time.md)."""

    @dataclass
    class Consumed:
        key: bytes | None
        value: bytes | None
        topic: str
        partition: int
        offset: int
        headers: Any

    headers = [("cs-source", b"claims/3"), ("cs-progress", b"1700000000.0")]
    forwarded = Event(Consumed(b"D1", b"{}", TOPIC, 3, 7, headers))  # type: ignore[arg-type]
    plain = Event(Consumed(b"P1", b"{}", TOPIC, 3, 8, None))  # type: ignore[arg-type]
    first, second = records_of([forwarded, plain])
    assert first.headers == tuple(headers)
    assert (first.key, first.partition, first.offset) == (b"D1", 3, 7)
    assert second.headers == ()
