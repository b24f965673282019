"""The worker's faust consumer: what it lets faust commit (built, never started: no broker)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

import faust
import pytest
from faust.types import TP

from claimstream.stream.consumer import (
    RESPONSE_BYTES,
    Bounds,
    consumer_class,
    map_large_allocations,
)

TP0 = TP("settlement.claims.v1", 0)


def _with_consumer(body: Callable[[Any], Any]) -> None:
    """Run `body(consumer)` (awaited if it is a coroutine function) inside a loop."""

    async def run() -> None:
        app = faust.App("claimstream-test", broker="kafka://127.0.0.1:1", web_enabled=False)
        app.transport.Consumer = consumer_class(100)  # type: ignore[attr-defined]
        app.topics.acks_enabled_for = lambda topic: True  # type: ignore[method-assign]
        consumer = app.consumer
        try:
            result = body(consumer)
            if asyncio.iscoroutine(result):
                await result
        finally:
            consumer._thread.thread_loop.close()  # the consumer thread's loop, never run

    asyncio.run(run())


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
