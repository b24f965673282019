"""What the agent does with one batch: process, publish, write state, in the at-least-once order.

Order per batch (the agent acks the batch's events only after `handle` returns, and faust
commits only acked offsets, after flushing the producer):

1. run the records through the `KeyedProcessor` (pure; per-event errors become dead letters);
2. forward re-keyed records to the repartition topics, with their `cs-source` and
   `cs-progress` headers, and wait for their delivery (steps 1 and 2 under `lock`, which the
   watermark markers take too, so a marker never overtakes the forwards it speaks for);
3. hand alerts, commands and dead letters to every sink, each retried until it succeeds
   (a sink that is down stalls consumption rather than lose an output), and publish the
   institutions' closed months (`institution_indicators`) on the indicators topic keyed by
   peer group, waiting for their delivery likewise (the state of step 5 no longer holds them);
4. aligned kinds (doctor, institution): write the events that began to wait to
   `pending-<kind>` and wait for their delivery: the key states of step 5 count them (their
   source's lateness mark), so a restart that found those states but not the waiting events
   would judge them late when it reads them again;
5. write each changed key's state to its table once, in its own partition's changelog;
6. aligned kinds: once the states of step 5 are on the broker (checked at this step of later
   batches, so the agent never waits for it), delete the events released (`pending.py`).

A crash anywhere before the commit replays the batch: outputs have deterministic ids and the
registry is idempotent, and the replayed events find the state as of the last committed batch
(or later, which the engine's per-key dedup makes harmless), so nothing is lost or doubled.
The patient batch's events are then forwarded again, at new offsets of the repartition topics,
when its states were not delivered (or its dedup forgot them); the aligned kinds know those
copies by the input offset they carry even once their own dedup has forgotten the ids
(`cs-offset`, docs/time.md §7 item 4).
Events that were waiting when the worker stopped are put back from `pending-<kind>` after the
next rebalance (`rebalanced`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson

from claimstream.detection.processor import MARKER_HEADER, BatchResult, KeyedProcessor
from claimstream.detection.sinks.base import Outputs, Sink
from claimstream.model.events import StateKind
from claimstream.model.records import Record
from claimstream.observability.metrics import Metrics
from claimstream.rules.base import State
from claimstream.stream.codec import PartitionPointer
from claimstream.stream.detection import pending
from claimstream.stream.detection.markers import SourceWatch
from claimstream.stream.encoded import holds_bytes
from claimstream.stream.publish import BatchPublisher, Out
from claimstream.stream.retry import write_until_done
from claimstream.stream.tables import TableWriter

log = logging.getLogger(__name__)
#: records processed between two turns of the event loop (`KeyedProcessor.slices`): at tens of
#: microseconds a record, a few milliseconds, so a check is not kept waiting by a whole batch
PROCESS_SLICE = 128
#: keys an idle-key sweep expires (decodes, and writes back where they changed) between two
#: turns of the event loop (`Pipeline.sweep`): at tens of microseconds a key, about a millisecond
SWEEP_STEP = 64


@dataclass(slots=True)
class Counters:
    """Running totals for `/status` and the demo (metrics has the same as Prometheus series)."""

    records: int = 0
    events: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    forwarded: int = 0
    alerts: int = 0
    shadow_alerts: int = 0
    commands: int = 0
    batches: int = 0
    swept_keys: int = 0
    last_batch_at: float = 0.0
    #: wall seconds spent handling batches (the rest is faust and waiting for input)
    busy_seconds: float = 0.0
    process_seconds: float = 0.0
    output_seconds: float = 0.0
    state_seconds: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in self.__slots__}


class Pipeline:
    """Processing of one key kind's input stream against its table."""

    def __init__(
        self,
        processor: KeyedProcessor,
        table: Any,
        *,
        sinks: Sequence[Sink],
        publisher: BatchPublisher,
        repartition_topics: Mapping[StateKind, str],
        changelog_topic: str,
        pointer: PartitionPointer,
        metrics: Metrics | None = None,
        counters: Counters | None = None,
        sweep_interval: float = 30.0,
        sweep_slice: int = 20_000,
        pending_table: Any = None,
        pending_changelog: str | None = None,
        watch: SourceWatch | None = None,
        indicators_topic: str | None = None,
    ) -> None:
        self.processor = processor
        #: where the institutions' closed months go (None: this kind makes none)
        self.indicators_topic = indicators_topic
        self.table = table
        self.sinks = tuple(sinks)
        self.publisher = publisher
        self.repartition_topics = dict(repartition_topics)
        self.changelog_topic = changelog_topic
        self.pointer = pointer
        self.writer = TableWriter(table, changelog_topic, pointer, publisher)
        if holds_bytes(table):  # the processor reads the states its last batch wrote as they
            processor.load = self.writer.read  # are, not decoded again (`TableWriter.read`)
        self.metrics = metrics
        self.counters = counters or Counters()
        self.sweep_interval = sweep_interval
        self.sweep_slice = sweep_slice
        self._last_sweep = time.monotonic()
        self._sweep_cursor: list[str] = []
        self.stopping = False
        #: records this pipeline handled (the shared counters add up all key kinds); watermark
        #: markers are not counted
        self.records = 0
        #: held from processing a batch until its forwards are delivered, and by the markers
        self.lock = asyncio.Lock()
        #: aligned kinds: the table of the events waiting for the watermark, and its writer
        self.pending_table = pending_table
        self.pending_writer = (
            None
            if pending_table is None or pending_changelog is None
            else TableWriter(pending_table, pending_changelog, pointer, publisher)
        )
        #: the patient pipeline: when each input partition was last read (the markers' idleness)
        self.watch = watch
        self._unaligned = 0
        #: aligned kinds: waiting events taken back from `pending-<kind>` since start
        self.restored = 0
        #: released events to delete from `pending-<kind>` once their batch's states are
        #: delivered: (those states' delivery futures, entries), in batch order
        self._deletes: list[tuple[list[Any], dict[str, int]]] = []

    # -- state access, partition-correct ---------------------------------------------------

    def load(self, key: str) -> State | None:
        value: State | None = self.table.data.get(key)
        return value

    async def write(
        self, writes: Mapping[str, tuple[State, int]], deletes: Mapping[str, int]
    ) -> None:
        """Store each state locally and append it to its partition's changelog, batched."""
        await self.writer.write(writes, deletes)

    def _stopping(self) -> bool:
        return self.stopping

    # -- the batch ---------------------------------------------------------------------------

    async def handle(self, records: list[Record]) -> BatchResult:
        started = time.perf_counter()
        async with self.lock:
            result, computing = await self._process(records)
            processed = time.perf_counter()
            if result.forwards:
                await self.publisher.send_and_wait(
                    (self.repartition_topics[f.kind], f.key.encode(), f.value, None, f.headers)
                    for f in result.forwards
                )
            if self.watch is not None:
                self.watch.seen(records, time.time())
        outputs = Outputs(
            alerts=[e.alert for e in result.alerts],
            shadow_alerts=[e.alert for e in result.shadow_alerts],
            commands=result.commands,
            dead_letters=result.dead_letters,
        )
        if outputs:
            for sink in self.sinks:
                await write_until_done(
                    f"sink {sink.name}", partial(sink.write, outputs), self._stopping
                )
        if result.records and self.indicators_topic is not None:
            topic = self.indicators_topic
            out: list[Out] = [
                (topic, r.peer_group.encode(), orjson.dumps(r.to_dict()), None)
                for r in result.records
            ]
            await write_until_done(
                topic, partial(self.publisher.send_and_wait, out), self._stopping
            )
        written = time.perf_counter()
        writes: dict[str, tuple[Any, int]] = {}
        deletes: dict[str, int] = {}
        if self.pending_writer is not None and (result.held or result.released):
            writes, deletes = pending.changes(result)
            if writes:  # step 4 may not count an event that a restart would not find waiting
                await asyncio.gather(*await self.pending_writer.write(writes))
        stored = await self.writer.write(result.writes, {}, remember=True)
        if self.pending_writer is not None and (deletes or self._deletes):
            if deletes:
                self._deletes.append((stored, deletes))
            await self.flush_deletes()
        done = time.perf_counter()
        c = self.counters
        c.busy_seconds += done - started
        c.process_seconds += computing
        c.output_seconds += written - processed
        c.state_seconds += done - written
        self._count(records, result)
        return result

    async def _process(self, records: list[Record]) -> tuple[BatchResult, float]:
        """The processor's result for `records`, computed `PROCESS_SLICE` records at a time
        with a turn of the event loop between slices, and the seconds the computing took.

        Only the patient pipeline is sliced: an aligned one's waiting events are taken back
        and dropped by `rebalanced`, outside the lock, which must not fall between two slices
        of a batch (it falls between batches, or between a batch's computing and its writes,
        as before)."""
        whole = self.processor.aligner is not None
        steps = self.processor.slices(records, len(records) if whole else PROCESS_SLICE)
        spent = 0.0
        while True:
            began = time.perf_counter()
            try:
                next(steps)
            except StopIteration as finished:
                spent += time.perf_counter() - began
                result: BatchResult = finished.value
                return result, spent
            spent += time.perf_counter() - began
            await asyncio.sleep(0)  # a check waiting for the loop is answered now

    async def flush_deletes(self) -> int:
        """Delete the released events whose batch's key states are delivered (in batch order);
        returns how many. Waiting for the delivery in the batch itself would stall the agent,
        and with it the consumer every agent shares, for a broker round trip per batch; a crash
        before a deletion only leaves an entry whose event the key has seen (a duplicate)."""
        assert self.pending_writer is not None
        ready: dict[str, int] = {}
        while self._deletes:
            stored, deletes = self._deletes[0]
            if not all(future.done() for future in stored):
                break
            self._deletes.pop(0)
            if any(future.exception() is not None for future in stored):
                continue  # the state writer raises on its next write; keep the entries
            ready.update(deletes)
        if ready:
            await self.pending_writer.write({}, ready)
        return len(ready)

    def rebalanced(self, partitions: Iterable[int]) -> int:
        """After a rebalance (tables recovered, before any batch): the processor reads
        `partitions` of its topic from now on. An aligned processor forgets the waiting events
        of partitions it no longer has and takes those of the partitions it now has from
        `pending-<kind>` (its own are already held: nothing is doubled). Returns the number of
        waiting events restored."""
        processor = self.processor
        if processor.aligner is None:
            return 0
        owned = frozenset(partitions)
        processor.assign(owned)
        processor.forget(lambda partition: partition in owned)
        if self.pending_table is None:
            return 0
        before = len(processor.aligner.buffer)
        waiting, stale = pending.split(
            pending.entries(list(self.pending_table.data.items()), owned), self.load
        )
        processor.restore(waiting)
        if stale:  # released, their key's state stored, the deletion not: delete it now
            self._deletes.append(([], {pending.entry_key(h): h.home for h in stale}))
        restored = len(processor.aligner.buffer) - before
        self.restored += restored
        return restored

    def waiting(self) -> int:
        """Events waiting for the watermark (aligned kinds; 0 for the others)."""
        aligner = self.processor.aligner
        return 0 if aligner is None else len(aligner.buffer)

    def _count(self, records: list[Record], result: BatchResult) -> None:
        c = self.counters
        aligner = self.processor.aligner
        if aligner is not None:  # markers are not records of events
            records = [r for r in records if r.value is not None or not _is_marker(r)]
        self.records += len(records)
        c.batches += 1
        c.records += len(records)
        c.events += result.events
        c.duplicates += result.duplicates
        c.dead_letters += len(result.dead_letters)
        c.forwarded += len(result.forwards)
        c.alerts += len(result.alerts)
        c.shadow_alerts += len(result.shadow_alerts)
        c.commands += len(result.commands)
        c.last_batch_at = time.time()
        m = self.metrics
        if m is None:
            return
        if aligner is not None:
            kind = self.processor.kind
            m.set_events_waiting(kind, len(aligner.buffer))
            if aligner.unaligned != self._unaligned:
                m.events_unaligned(kind, max(0, aligner.unaligned - self._unaligned))
                self._unaligned = aligner.unaligned
        m.batch(len(records))
        for (topic, event_type), n in result.consumed.items():
            m.event_consumed(topic, event_type, n)
        for letter in result.dead_letters:
            m.dead_letter(letter.reason)
        now = time.time()
        for emitted in result.alerts:
            m.alert_emitted(
                emitted.alert,
                "enforce",
                emitted_at=now,
                arrived_at=emitted.arrived_at,
                event_ts=emitted.event_ts,
            )
            m.violation_amount(emitted.alert.rule, emitted.alert.amount, "stream")
        for emitted in result.shadow_alerts:
            m.alert_emitted(
                emitted.alert,
                "shadow",
                emitted_at=now,
                arrived_at=emitted.arrived_at,
                event_ts=emitted.event_ts,
            )
        for command in result.commands:
            m.command_issued(command)

    # -- idle keys ---------------------------------------------------------------------------

    def sweep_due(self) -> bool:
        return time.monotonic() - self._last_sweep >= self.sweep_interval

    async def sweep(self, assigned: Callable[[], Iterable[int]], partition_of: Any) -> int:
        """Expire one slice of keys of the assigned partitions; returns keys removed.

        Runs inside the agent between batches (table writes need the agent's context), a
        bounded slice (`sweep_slice` keys) at a time so a large table never stalls consumption
        for long, and the slice `SWEEP_STEP` keys at a time with a turn of the event loop
        between steps: each step's states are decoded, expired and, where they changed,
        written (store and changelog) before the next step starts, so a check waits for one
        step (about a millisecond), not for the slice (a 20 000-state slice took ~0.3 s of one
        synchronous pass), and the slice's decoded states are never all held at once.
        `assigned` is asked again at every step: a rebalance can land during a loop turn, and
        a key of a partition given away meanwhile must not be written here any more.
        """
        self._last_sweep = time.monotonic()
        if not self._sweep_cursor:
            self._sweep_cursor = list(self.table.data.keys())
        chunk = self._sweep_cursor[-self.sweep_slice :]
        del self._sweep_cursor[-self.sweep_slice :]

        def home(key: str) -> int:
            known = self.processor.homes.get(key)
            return int(partition_of(key)) if known is None else known

        removed = 0
        for at in range(0, len(chunk), SWEEP_STEP):
            owned = set(assigned())
            keys = [k for k in chunk[at : at + SWEEP_STEP] if home(k) in owned]
            writes, deletes = self.processor.sweep(keys, self.load, home)
            await self.write(writes, deletes)
            self.counters.swept_keys += len(deletes)
            removed += len(deletes)
            await asyncio.sleep(0)  # a check waiting for the loop is answered now
        if self._sweep_cursor:  # more to do: come back after the next batch
            self._last_sweep -= self.sweep_interval
        return removed


def _is_marker(record: Record) -> bool:
    return any(name == MARKER_HEADER for name, _ in record.headers)
