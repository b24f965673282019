"""Batches of events straight from an agent's channel queue, acked only after they are handled.

faust's `Stream` iterates one event at a time (a context switch, processors, sensors and an
ack per event); `take_events` sits on top of that and, measured here against Tansu, caps a
do-nothing agent at about 9 000 events/s. Reading the channel's queue in bulk does the same
bookkeeping per event that `Stream.__aiter__` does (drop messages fetched before the current
rebalance, track the message as pending, ack when done) without the per-event machinery:
about 13 000 events/s for the same do-nothing agent. Acks happen in `ack_all`, which the
agent calls after the batch's outputs and state are handed over, so at-least-once holds:
faust commits only offsets whose messages were acked, after flushing the producer.

Two departures from faust's own stream, so that no fetched record is skipped (the first is
why the SIGKILL-and-restart test lost events) and none is processed during a rebalance:

* The queue is **not cleared when faust resumes flow.** faust clears every agent queue on each
  `flow_control.resume()` (and cancels a delivery waiting for room in it), assuming that it
  has just sought every partition back to its committed offset, so anything cleared is
  fetched again. It is not: the seek ends a few loop turns before the clear, and records
  fetched after a partition's seek and queued before the clear were gone for good (as was all
  of a partition with nothing committed yet, which was not sought at all; see `consumer.py`).
  The agent then processed offset n+3 after n; faust's commit either stalled at the hole or,
  for a one-offset hole right after the committed offset (`Consumer._new_offset` tolerates a
  difference of 1), committed past it. Kept in the queue, those records are processed (or,
  fetched twice, recognised as duplicates by the engine).
* A message is tracked as pending the moment it is taken from the queue, not when its batch is
  complete, so a rebalance (`Consumer.wait_empty`) waits for the batch being assembled too and
  no batch is processed while faust recovers tables. Messages fetched before the current
  rebalance, or taken while one is under way (flow suspended), are dropped unacked: after
  every rebalance each partition is sought back to its committed offset, so they are fetched
  again.

Set `CLAIMSTREAM_BATCH_READER=take` to use faust's `take_events` instead (its queue is
cleared on resume as faust intends, so it can skip records after a rebalance).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from claimstream.model.records import Record

_POLL = 0.002


@dataclass(frozen=True, slots=True)
class Batching:
    """How an agent takes its input: up to `size` events, waiting at most `within` seconds;
    `reader` "queue" (`queue_batches`, the default) or "take" (faust's `take_events`)."""

    size: int = 4000
    within: float = 0.05
    reader: str = "queue"


async def each_batch(
    app: Any, stream: Any, batching: Batching, handle: Callable[[list[Any]], Awaitable[None]]
) -> None:
    """Hand every batch of `stream` to `handle`, acking it only after `handle` returned."""
    if batching.reader == "take":  # faust's own batching, acked after the body
        async for events in stream.take_events(batching.size, batching.within):
            await handle(events)
        return
    async for events in queue_batches(app, stream, batching.size, batching.within):
        await handle(events)
        ack_all(events)


def keep_on_resume(app: Any, queue: Any) -> None:
    """Stop faust from clearing `queue` whenever it resumes flow (see the module docstring).

    `FlowControlEvent.resume()` clears the queues it manages (a private `WeakSet`); a queue
    removed from it keeps its records across rebalances, and the batch reader drops the stale
    ones itself by generation.
    """
    managed = getattr(app.flow_control, "_queues", None)
    if managed is not None:
        managed.discard(queue)


async def queue_batches(
    app: Any, stream: Any, max_: int, within: float
) -> AsyncIterator[list[Any]]:
    """Yield lists of up to `max_` events, waiting at most `within` s to fill one."""
    queue = stream.channel.queue
    keep_on_resume(app, queue)
    consumer = app.consumer
    acking = app.topics.acking_topics
    flow = app.flow_control
    loop = asyncio.get_running_loop()

    def take(event: Any, batch: list[Any]) -> None:
        message = event.message
        if message.generation_id != app.consumer_generation_id or not flow.is_active():
            # Fetched before the current rebalance (or one is under way): not ours to ack.
            # Whoever owns the partition next starts from the committed offset, which does
            # not include it.
            return
        if message.topic in acking and not message.tracked:
            message.tracked = True
            consumer.track_message(message)
        batch.append(event)

    while not stream.should_stop:
        batch: list[Any] = []
        try:
            take(await queue.get(), batch)
            if not batch:
                continue
            deadline = loop.time() + within
            while len(batch) < max_:
                if not queue.empty():
                    take(queue.get_nowait(), batch)
                elif loop.time() < deadline:
                    await asyncio.sleep(_POLL)
                else:
                    break
        except StopAsyncIteration:
            # faust stops an actor by throwing this into its channel (Actor.cancel); end the
            # iteration as faust's own Stream does. Events already taken are left unacked (and
            # no longer pending, so a graceful stop does not wait for them): committed by
            # nobody, they are consumed again after the restart.
            for event in batch:
                consumer._unacked_messages.discard(event.message)
            return
        yield batch


def ack_all(events: list[Any]) -> None:
    for event in events:
        event.ack()


def records_of(events: list[Any]) -> list[Record]:
    """The `Record`s of a batch of faust events, stamped with their arrival (wall) time, with
    their Kafka headers (the repartition topics' event-time progress, docs/time.md)."""
    now = time.time()
    return [
        Record(m.key, m.value, m.topic, m.partition, m.offset, now, tuple(m.headers or ()))
        for m in (event.message for event in events)
    ]
