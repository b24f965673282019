"""The worker's faust consumer: what it lets faust commit (built, never started: no broker)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

import faust
import pytest
from faust.exceptions import ValueDecodeError
from faust.types import TP

from claimstream.stream.consumer import (
    RESPONSE_BYTES,
    Bounds,
    Handover,
    consumer_class,
    map_large_allocations,
    put_now,
    start_delivery,
)

TP0 = TP("settlement.claims.v1", 0)


def _with_consumer(body: Callable[[Any], Any]) -> Any:
    """Run `body(consumer)` (awaited if it is a coroutine function) inside a loop; its
    result."""

    async def run() -> Any:
        app = faust.App("claimstream-test", broker="kafka://127.0.0.1:1", web_enabled=False)
        app.transport.Consumer = consumer_class(100)  # type: ignore[attr-defined]
        app.topics.acks_enabled_for = lambda topic: True  # type: ignore[method-assign]
        consumer = app.consumer
        try:
            result = body(consumer)
            if asyncio.iscoroutine(result):
                result = await result
            return result
        finally:
            consumer._thread.thread_loop.close()  # the consumer thread's loop, never run

    return asyncio.run(run())


class _Message:
    """What faust's `Consumer.ack` reads of a message."""

    def __init__(self, offset: int) -> None:
        self.tp = TP0
        self.topic = TP0.topic
        self.offset = offset
        self.acked = False


def _ack(consumer: Any, *offsets: int) -> None:
    for offset in offsets:
        consumer.ack(_Message(offset))


def _commit_all(consumer: Any) -> list[int]:
    """What faust's commit loop would commit, commit after commit, until nothing is left."""
    commits = []
    while (offset := consumer._new_offset(TP0)) is not None:
        commits.append(offset)
        consumer._committed_offset[TP0] = offset
    return commits


def test_commit_covers_acked_offsets_without_a_hole() -> None:
    def body(consumer: Any) -> None:
        consumer._committed_offset[TP0] = 5
        _ack(consumer, 5, 6, 7, 9)
        assert _commit_all(consumer)[0] == 8

    _with_consumer(body)


def test_commit_never_goes_beyond_the_highest_acked_offset() -> None:
    """After a seek faust may see a "skip" in the fetched offsets (records fetched before the
    seek still being handed over); the records in between, still queued for the agent, must not
    be committed as done."""

    def body(consumer: Any) -> None:
        consumer._committed_offset[TP0] = 5
        _ack(consumer, 5, 6, 7)
        # seek back to 5; a record fetched before the seek (offset 40) is then handed over:
        # faust notes "offsets 6..40 were skipped" (`Consumer._add_gap(tp, 6, 40)`)
        consumer._gap[TP0].addi(6, 41)
        assert max(_commit_all(consumer)) == 8  # faust alone: 41
        # the queued records are processed and acked: the commit moves on
        _ack(consumer, *range(8, 41))
        assert max(_commit_all(consumer)) == 41

    _with_consumer(body)


def test_nothing_acked_nothing_to_commit() -> None:
    def body(consumer: Any) -> None:
        assert consumer._new_offset(TP0) is None

    _with_consumer(body)


def test_a_partition_with_nothing_committed_resumes_at_its_first_unprocessed_offset() -> None:
    def body(consumer: Any) -> None:
        _ack(consumer, 0, 1, 2, 4)  # 3 was dropped in a rebalance: fetch it again
        assert consumer._first_unprocessed(TP0, 0) == 3
        assert consumer._first_unprocessed(TP0, 10) == 10  # the log starts later

    _with_consumer(body)


# -- which fetched records are handed to the agents -------------------------------------------


def _sought_at(offset: int) -> Handover:
    handover = Handover()
    handover.assigned([TP0])
    handover.sought(TP0, offset)
    return handover


def test_records_fetched_before_a_partition_is_sought_are_not_handed_over() -> None:
    handover = Handover()
    handover.assigned([TP0])
    handover.taken(TP0, 300, 301)
    assert handover.admit(TP0, 300) is False
    handover.sought(TP0, 150)
    assert handover.admit(TP0, 150) is True


def test_records_taken_while_the_partition_was_being_sought_are_fetched_again() -> None:
    handover = Handover()
    handover.assigned([TP0])
    handover.taken(TP0, 300, 303)  # dropped: not sought yet (nothing may follow them)
    handover.sought(TP0, 150)
    assert handover.behind() == {TP0: 150}


def test_a_record_after_a_hole_is_held_back_and_the_partition_sought_back_to_the_hole() -> None:
    handover = _sought_at(150)
    handover.taken(TP0, 150, 154)
    assert handover.admit(TP0, 150) is True
    assert [handover.admit(TP0, o) for o in (152, 153)] == [False, False]  # 151 never came
    assert handover.behind() == {TP0: 151}


def test_a_hole_still_there_when_fetched_again_is_a_gap_in_the_log_and_passed_over() -> None:
    handover = _sought_at(150)
    handover.taken(TP0, 152, 153)
    assert handover.admit(TP0, 152) is False
    handover.moved(TP0, 150)
    handover.taken(TP0, 152, 154)  # 150 and 151 are not in the log (a marker, say)
    assert handover.admit(TP0, 152) is True
    assert handover.admit(TP0, 153) is True
    assert handover.behind() == {}


def test_a_record_beyond_the_hole_is_no_gap_when_the_first_one_after_the_seek_was_lost() -> None:
    handover = _sought_at(150)
    handover.moved(TP0, 150)
    handover.taken(TP0, 150, 151)  # taken, then dropped by faust (the partition was paused)
    handover.taken(TP0, 151, 152)
    assert handover.admit(TP0, 151) is False
    assert handover.behind() == {TP0: 150}


def test_records_handed_over_already_are_not_handed_over_again() -> None:
    handover = _sought_at(150)
    assert handover.admit(TP0, 150) is True
    assert handover.admit(TP0, 150) is False


def test_a_seek_back_hands_the_records_over_again_from_the_offset_sought() -> None:
    handover = _sought_at(150)
    assert handover.admit(TP0, 150) is True
    handover.sought(TP0, 150)  # faust seeks to the committed offset after a rebalance
    assert handover.admit(TP0, 150) is True


def test_a_partition_it_was_never_told_about_passes_everything() -> None:
    assert Handover().admit(TP0, 7) is True


def test_a_partition_handed_over_in_order_is_never_sought_back() -> None:
    handover = _sought_at(150)
    handover.taken(TP0, 150, 152)
    assert [handover.admit(TP0, o) for o in (150, 151)] == [True, True]
    assert handover.behind() == {}


def test_after_a_restart_the_agents_get_a_partition_from_its_committed_offset_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The audit SIGKILL test's failure, replayed at the consumer: while the successor's
    tables recovered, records of the partition were taken out of aiokafka past its committed
    offset (150), and faust resumed the partition before seeking it, so records from 300 on
    reached the agents first (the audit chain then took 150..299 for re-reads). Now nothing is
    handed over before the seek, the partition is sought back to 150 though nothing more is
    fetched, and the agents get 150, 151, 152."""
    from aiokafka.structs import ConsumerRecord
    from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer

    def record(offset: int) -> Any:
        return ConsumerRecord(TP0.topic, 0, offset, 0, 0, b"k", b"v", None, 1, 1, [])

    responses: list[list[int]] = [[300, 301, 302], [], [150, 151, 152]]
    seeks: list[dict[TP, int]] = []

    async def fetch(self: Any, timeout: float) -> Any:  # noqa: ASYNC109 (one response)
        offsets = responses.pop(0)
        return ({TP0: [record(o) for o in offsets]} if offsets else {}), {TP0}

    async def committed(self: Any) -> dict[TP, int]:
        return {TP0: 150}

    async def assigned(self: Any, assigned: set[TP], generation_id: int = 0) -> None:
        return None

    monkeypatch.setattr(AIOKafkaConsumer, "_wait_next_records", fetch)
    monkeypatch.setattr(AIOKafkaConsumer, "seek_to_committed", committed)
    monkeypatch.setattr(AIOKafkaConsumer, "on_partitions_assigned", assigned)
    monkeypatch.setattr(AIOKafkaConsumer, "highwater", lambda self, tp: 1000)

    async def body(consumer: Any) -> list[int]:
        async def seek_wait(partitions: dict[TP, int]) -> None:
            seeks.append(dict(partitions))

        consumer.assignment = lambda: {TP0}
        consumer.seek_wait = seek_wait
        consumer.resume_flow()
        await consumer.on_partitions_assigned({TP0}, 1)
        handed = [m.offset async for _, m in consumer.getmany(1.0)]  # during the seek
        await consumer.seek_to_committed()
        while responses:
            handed += [m.offset async for _, m in consumer.getmany(1.0)]
        return handed

    assert _with_consumer(body) == [150, 151, 152]
    assert seeks == [{TP0: 150}]


# -- how fetched records are delivered to the agents' channels --------------------------------


def test_a_delivery_that_needs_no_wait_is_done_when_started() -> None:
    done: list[int] = []

    async def deliver() -> None:
        done.append(1)

    assert start_delivery(deliver()) is None
    assert done == [1]


def test_a_delivery_that_waits_is_carried_on_from_where_it_stopped() -> None:
    async def body() -> list[str]:
        room: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        steps: list[str] = []

        async def deliver() -> str:
            steps.append("started")
            steps.append(await room)
            return "delivered"

        rest = start_delivery(deliver())
        assert rest is not None
        asyncio.get_running_loop().call_soon(room.set_result, "room")
        steps.append(await rest)
        return steps

    assert asyncio.run(body()) == ["started", "room", "delivered"]


def test_cancelling_the_rest_of_a_delivery_cancels_the_delivery() -> None:
    async def body() -> list[str]:
        steps: list[str] = []

        async def deliver() -> None:
            try:
                await asyncio.Event().wait()  # a channel that never has room
                steps.append("delivered")
            except asyncio.CancelledError:
                steps.append("cancelled")
                raise

        rest = start_delivery(deliver())
        assert rest is not None
        task = asyncio.ensure_future(rest)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return steps

    assert asyncio.run(body()) == ["cancelled"]


class _Channel:
    """The conductor's delivery, reduced to what matters here: wait for flow control, then put
    the record into an agent's bounded queue (waiting while it is full)."""

    def __init__(self, app: Any, room: int) -> None:
        self.app = app
        self.queue: asyncio.Queue[int] = asyncio.Queue(maxsize=room)
        self.delivered: list[int] = []
        self.cancelled: list[int] = []
        #: set when a delivery waits for room
        self.full = asyncio.Event()

    async def __call__(self, message: Any) -> None:
        try:
            await self.app.flow_control.acquire()
            if self.queue.full():
                self.full.set()
            await self.queue.put(message.offset)
        except asyncio.CancelledError:
            self.cancelled.append(message.offset)
            raise
        self.delivered.append(message.offset)


async def _drain(consumer: Any, deliver: Callable[[Any], Any], fetches: list[list[int]]) -> int:
    """Run the consumer's fetch loop over `fetches` (one list of offsets of TP0 each) until
    they are used up, delivering with `deliver`; how many times `wait_first` was called."""
    from aiokafka.structs import ConsumerRecord

    fetcher = type("Fetcher", (), {"_stopped": asyncio.Event()})()

    async def fetch(timeout: float) -> Any:  # noqa: ASYNC109 (one response)
        if not fetches:
            fetcher._stopped.set()
            return {}, {TP0}
        records = [
            ConsumerRecord(TP0.topic, 0, o, 0, 0, b"k", b"v", None, 1, 1, [])
            for o in fetches.pop(0)
        ]
        return {TP0: records}, {TP0}

    async def nothing(*args: Any) -> Any:
        return {}

    waits = 0
    wait_first = consumer.wait_first

    async def counted(*coros: Any) -> Any:
        nonlocal waits
        waits += 1
        return await wait_first(*coros)

    consumer.assignment = lambda: {TP0}
    consumer._wait_next_records = fetch
    consumer.highwater = lambda tp: 10_000
    consumer.perform_seek = nothing  # what faust does when it fetched with the flow suspended
    consumer.wait_first = counted
    consumer.callback = deliver
    await consumer._drain_messages(fetcher)
    return waits


def _flowing(consumer: Any) -> None:
    consumer.resume_flow()
    consumer.app.flow_control.resume()


def test_records_are_delivered_in_offset_order_without_wait_first_while_the_channel_has_room() -> (
    None
):
    async def body(consumer: Any) -> tuple[list[int], int]:
        _flowing(consumer)
        channel = _Channel(consumer.app, room=100)
        waits = await _drain(consumer, channel, [[0, 1, 2], [3, 4]])
        return channel.delivered, waits

    assert _with_consumer(body) == ([0, 1, 2, 3, 4], 0)


def test_a_record_waiting_for_room_is_delivered_once_the_agent_makes_room() -> None:
    async def body(consumer: Any) -> tuple[list[int], list[int], int]:
        _flowing(consumer)
        channel = _Channel(consumer.app, room=2)
        taken: list[int] = []

        async def agent() -> None:
            while len(taken) < 5:
                taken.append(await channel.queue.get())

        running = asyncio.ensure_future(agent())
        waits = await _drain(consumer, channel, [[0, 1, 2, 3, 4]])
        await running
        return channel.delivered, taken, waits

    delivered, taken, waits = _with_consumer(body)
    assert (delivered, taken) == ([0, 1, 2, 3, 4], [0, 1, 2, 3, 4])
    assert waits >= 1


def test_a_record_waiting_for_room_when_its_partition_is_revoked_is_not_delivered() -> None:
    """faust's revocation suspends the flow; a delivery waiting for room in a full channel is
    cancelled then, and nothing more of that fetch is delivered (it is fetched again from the
    committed offset after the rebalance)."""

    async def body(consumer: Any) -> tuple[list[int], list[int]]:
        _flowing(consumer)
        channel = _Channel(consumer.app, room=2)

        async def revoke() -> None:
            await channel.full.wait()  # record 2 waits for room
            consumer.app.on_rebalance_start()
            await consumer.on_partitions_revoked({TP0})

        revoking = asyncio.ensure_future(revoke())
        # a delivery the revocation failed to cancel would wait forever: fail instead
        await asyncio.wait_for(_drain(consumer, channel, [[0, 1, 2, 3, 4]]), timeout=60)
        await revoking
        return channel.delivered, channel.cancelled

    assert _with_consumer(body) == ([0, 1], [2])


def test_a_rebalance_starting_between_two_records_stops_their_delivery() -> None:
    """The fetch loop lets the event loop run every 100 records; a rebalance that starts then
    suspends the flow, and the record next in line goes through `wait_first` as in faust,
    which drops it; the rest of the fetch is not delivered."""

    async def body(consumer: Any) -> tuple[list[int], list[int], int]:
        _flowing(consumer)
        channel = _Channel(consumer.app, room=1000)

        def suspend() -> None:
            consumer.stop_flow()
            consumer.app.flow_control.suspend()

        async def deliver(message: Any) -> None:
            if message.offset == 0:  # the rebalance starts at the loop's next turn
                asyncio.get_running_loop().call_soon(suspend)
            await channel(message)

        waits = await _drain(consumer, deliver, [list(range(150))])
        return channel.delivered, channel.cancelled, waits

    delivered, cancelled, waits = _with_consumer(body)
    assert delivered == list(range(100))
    assert (cancelled, waits) == ([100], 1)


def test_an_error_delivering_a_record_ends_the_fetch_loop() -> None:
    async def body(consumer: Any) -> None:
        _flowing(consumer)

        async def broken(message: Any) -> None:
            raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            await _drain(consumer, broken, [[0]])

    _with_consumer(body)


def test_a_callback_returning_no_coroutine_is_awaited_under_wait_first_as_in_faust() -> None:
    async def body(consumer: Any) -> tuple[list[int], int]:
        _flowing(consumer)
        called: list[int] = []

        def deliver(message: Any) -> asyncio.Future[None]:
            called.append(message.offset)
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

        waits = await _drain(consumer, deliver, [[0, 1]])
        return called, waits

    assert _with_consumer(body) == ([0, 1], 2)


def test_fausts_fetch_loop_is_still_the_one_the_consumer_copies() -> None:
    """`_drain_messages` is faust-streaming 0.15's fetch loop but for the delivery: should a
    faust release change that loop, this fails and the copy must be reviewed."""
    import inspect

    from faust.transport.consumer import Consumer as FaustConsumer

    source = "".join(inspect.getsource(FaustConsumer._drain_messages).split())
    steps = [
        "ait=cast(AsyncIterator,getmany(timeout=1.0))",
        "awaitself.sleep(0)",
        "ifnum_since_yield>yield_every:",
        "ifr_offsetisNoneoroffset>=r_offset:",
        "awaitself._add_gap(tp,r_offset+1,offset)",
        "ifself._n_acked>=commit_every:",
        "awaitself.wait_first(callback(message),self.suspend_flow.wait())",
        "set_read_offset(tp,offset)",
        "exceptself.consumer_stopped_errors:",
    ]
    positions = [source.find(step) for step in steps]
    assert -1 not in positions, [s for s, p in zip(steps, positions, strict=True) if p == -1]
    assert positions == sorted(positions)
    assert source.count("await") == 6  # nothing else awaited


# -- records put straight into the channel queues (`put_now`) --------------------------------


class _Topic:
    """An agent's channel as faust's conductor handler uses it: a decode, a bounded queue
    managed by the app's flow control, a waiting put for when the queue is full."""

    key_type = bytes
    value_type = bytes

    def __init__(self, app: Any, room: int, broken: bool = False) -> None:
        from mode.utils.queues import FlowControlQueue

        self.queue: Any = FlowControlQueue(maxsize=room, flow_control=app.flow_control)
        self.broken = broken
        self.decode_errors: list[int] = []
        #: set when the conductor waits for room in the queue
        self.waiting = asyncio.Event()

    async def decode(self, message: Any, *, propagate: bool = False) -> tuple[str, int]:
        if self.broken:
            raise ValueDecodeError("not JSON")
        return ("event", message.offset)

    async def put(self, event: Any) -> None:
        self.waiting.set()
        await self.queue.put(event)

    async def on_value_decode_error(self, exc: Exception, message: Any) -> None:
        self.decode_errors.append(message.offset)

    def taken(self) -> list[int]:
        out = []
        while not self.queue.empty():
            out.append(self.queue.get_nowait()[1])
        return out


class _Record:
    """What `put_now` reads and writes of a message."""

    def __init__(self, offset: int) -> None:
        self.tp = TP0
        self.offset = offset
        self.refcount = 0


def _handler(app: Any, *channels: _Topic) -> Any:
    """faust's conductor handler for TP0 delivering to `channels`, registered with the
    conductor as it is after an assignment."""
    from faust.transport.conductor import ConductorHandler

    handler = ConductorHandler(app.topics, TP0, set(channels))
    app.topics._tp_to_callback[TP0] = handler
    return handler


def test_a_record_is_put_into_the_queue_of_every_channel_of_its_partition() -> None:
    async def body(consumer: Any) -> tuple[bool, list[int], list[int], int]:
        one, two = _Topic(consumer.app, room=10), _Topic(consumer.app, room=10)
        record = _Record(7)
        done = put_now(_handler(consumer.app, one, two), record)
        return done, one.taken(), two.taken(), record.refcount

    assert _with_consumer(body) == (True, [7], [7], 2)


def test_a_record_for_a_full_channel_is_left_untouched_to_the_conductor() -> None:
    async def body(consumer: Any) -> tuple[bool, list[int], int]:
        roomy, full = _Topic(consumer.app, room=10), _Topic(consumer.app, room=1)
        full.queue.put_nowait(("event", 0))
        record = _Record(7)
        done = put_now(_handler(consumer.app, roomy, full), record)
        return done, roomy.taken(), record.refcount

    assert _with_consumer(body) == (False, [], 0)


def test_a_record_that_fails_to_decode_is_left_untouched_to_the_conductor() -> None:
    async def body(consumer: Any) -> tuple[bool, list[int], int]:
        fine, broken = _Topic(consumer.app, room=10), _Topic(consumer.app, room=10, broken=True)
        record = _Record(7)
        done = put_now(_handler(consumer.app, fine, broken), record)
        return done, fine.taken(), record.refcount

    assert _with_consumer(body) == (False, [], 0)


def test_records_go_straight_into_the_channel_queue_in_offset_order_while_it_has_room() -> None:
    async def body(consumer: Any) -> tuple[list[int], int]:
        _flowing(consumer)
        channel = _Topic(consumer.app, room=100)
        _handler(consumer.app, channel)
        waits = await _drain_conducted(consumer, [[0, 1, 2], [3, 4]])
        return channel.taken(), waits

    assert _with_consumer(body) == ([0, 1, 2, 3, 4], 0)


async def _drain_conducted(consumer: Any, fetches: list[list[int]]) -> int:
    """`_drain` delivering through the app's real conductor (and so `put_now`)."""
    return await _drain(consumer, consumer.app.topics.on_message, fetches)


def test_a_record_for_a_full_queue_waits_for_room_through_the_conductor_in_order() -> None:
    async def body(consumer: Any) -> tuple[list[int], int]:
        _flowing(consumer)
        channel = _Topic(consumer.app, room=2)
        _handler(consumer.app, channel)
        taken: list[int] = []

        async def agent() -> None:
            while len(taken) < 5:
                taken.append((await channel.queue.get())[1])

        running = asyncio.ensure_future(agent())
        waits = await _drain_conducted(consumer, [[0, 1, 2, 3, 4]])
        await running
        return taken, waits

    taken, waits = _with_consumer(body)
    assert taken == [0, 1, 2, 3, 4]
    assert waits >= 1


def test_a_record_waiting_for_room_when_its_partition_is_revoked_is_dropped() -> None:
    async def body(consumer: Any) -> list[int]:
        _flowing(consumer)
        channel = _Topic(consumer.app, room=2)
        _handler(consumer.app, channel)

        async def revoke() -> None:
            await channel.waiting.wait()  # record 2 waits for room
            consumer.app.on_rebalance_start()
            await consumer.on_partitions_revoked({TP0})

        revoking = asyncio.ensure_future(revoke())
        await asyncio.wait_for(_drain_conducted(consumer, [[0, 1, 2, 3, 4]]), timeout=60)
        await revoking
        return channel.taken()

    assert _with_consumer(body) == [0, 1]


def test_with_the_apps_flow_suspended_a_record_waits_in_the_conductor_until_it_resumes() -> None:
    async def body(consumer: Any) -> tuple[list[int], int]:
        _flowing(consumer)
        consumer.app.flow_control.suspend()  # the consumer's flow still runs
        channel = _Topic(consumer.app, room=100)
        _handler(consumer.app, channel)
        asyncio.get_running_loop().call_later(0.05, consumer.app.flow_control.resume)
        waits = await _drain_conducted(consumer, [[0, 1]])
        return channel.taken(), waits

    taken, waits = _with_consumer(body)
    assert taken == [0, 1]
    assert waits >= 1


def test_with_the_producer_buffer_over_its_bound_a_record_is_left_to_the_conductor() -> None:
    async def body(consumer: Any) -> tuple[bool, list[int]]:
        _flowing(consumer)
        channel = _Topic(consumer.app, room=100)
        _handler(consumer.app, channel)
        consumer.app.producer.buffer.max_messages = -1  # "more than it may hold"
        now = consumer._put_now(consumer.app.topics.on_message)
        return now(_Record(0)), channel.taken()

    assert _with_consumer(body) == (False, [])


def test_only_the_conductors_callback_is_bypassed() -> None:
    async def body(consumer: Any) -> Any:
        async def other(message: Any) -> None: ...

        return consumer._put_now(other)

    assert _with_consumer(body) is None


# -- bounds on what a worker holds of input it has not processed yet --------------------------


def _bounded_app(**changes: Any) -> Any:
    from claimstream.freezes.memory import MemoryRegistry
    from claimstream.stream.app import create_app
    from claimstream.stream.settings import Settings

    settings = Settings(
        sanctions_enabled=False, audit_enabled=False, control_enabled=False, web_enabled=False
    ).replace(**changes)
    return create_app(settings, registry=MemoryRegistry(), sinks=[])


def test_the_bounds_follow_the_batch_size_and_fetch_size() -> None:
    bounds = Bounds.for_batches(batch_size=3000, fetch_bytes=32768)
    assert bounds == Bounds(
        channel_events=6000,
        poll_records=3000,
        partition_fetch_bytes=32768,
        response_bytes=RESPONSE_BYTES,
        producer_messages=12_000,
    )


def test_the_worker_app_carries_the_bounds() -> None:
    async def run() -> None:
        app = _bounded_app(batch_size=3000, fetch_bytes=32768)
        bounds = Bounds.for_batches(3000, 32768)
        assert app.conf.stream_buffer_maxsize == bounds.channel_events
        assert app.conf.broker_max_poll_records == bounds.poll_records
        assert app.conf.consumer_max_fetch_size == bounds.partition_fetch_bytes
        assert app.producer.buffer.max_messages == bounds.producer_messages
        app.consumer._thread.thread_loop.close()

    asyncio.run(run())


def test_the_aiokafka_consumer_is_built_with_the_bounds() -> None:
    async def run() -> None:
        app = _bounded_app(batch_size=3000, fetch_bytes=32768, fetch_wait_ms=80)
        thread = app.consumer._thread
        consumer = thread._create_worker_consumer(app.transport)
        try:
            assert consumer._fetch_max_bytes == RESPONSE_BYTES  # faust leaves aiokafka's 50 MB
            assert consumer._max_partition_fetch_bytes == 32768
            assert consumer._max_poll_records == 3000
            assert consumer._fetch_max_wait_ms == 80
        finally:
            await consumer.stop()
            thread.thread_loop.close()

    asyncio.run(run())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_large_allocations_get_their_own_mapping_on_glibc() -> None:
    assert map_large_allocations() is True
