"""Sanctions in the stream: alerts and people's actions in, escalation decisions out.

Three agents, each a thin shell around a pure processor of `claimstream.sanctions.processor`
(read it for the data flow and the records' shapes):

* `claimstream.sanctions-route`: alerts.v1 -> repartition.alert, keyed by alert_id;
* `claimstream.sanctions-index`: repartition.alert + actions.v1 (co-partitioned) against the
  table `alert-index`; fans alerts, verdicts and remediations out to every subject the alert
  concerns, unfreezes to their scope, on repartition.subject; counts verdicts per rule;
* `claimstream.sanctions-subject`: repartition.subject against the table `state-subject`
  (one `Escalation` state per `kind:id`); commands go to every sink (commands topic and freeze
  registry, as detection's do), warnings / grade changes / points changes to
  claimstream.sanctions.v1, keyed `kind:id`.

Per batch, as in `Pipeline`: process (pure; a bad record is dead-lettered with its origin and
the batch goes on), publish forwards and notices and wait for them, hand commands and dead
letters to the sinks (retried until they succeed), then write each changed key's state once,
batched per changelog partition; the batch is acked last. A timer ticks the subjects of the
assigned partitions forward in event time (freeze expiry -> UNFREEZE, ageing out), to the
detection's low watermark (see `SanctionsRuntime.tick_watermark`), under the same lock as the
subject agent so the two never interleave on a state.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka.partitioner import murmur2

from claimstream.detection.sinks.base import Outputs
from claimstream.model.records import Record
from claimstream.sanctions import view as answers
from claimstream.sanctions.ladder import Escalation
from claimstream.sanctions.processor import (
    ACTIONS,
    ALERTS,
    NOTICES,
    PRECISION_PREFIX,
    REPARTITION_ALERT,
    REPARTITION_SUBJECT,
    IndexProcessor,
    Result,
    RouteProcessor,
    SubjectProcessor,
    precision,
)
from claimstream.stream.batches import ack_all, queue_batches, records_of
from claimstream.stream.retry import write_until_done
from claimstream.stream.tables import TableWriter, raw_topic, state_table

if TYPE_CHECKING:
    import faust

    from claimstream.stream.app import Runtime
    from claimstream.stream.publish import BatchPublisher, Out

log = logging.getLogger(__name__)


class SanctionsRuntime:
    """The wiring's shared parts; also the `SanctionsView` the API reads (`runtime.sanctions`)."""

    def __init__(
        self,
        app: Any,
        runtime: Runtime,
        publisher: BatchPublisher,
        escalation: Escalation,
        subject_table: Any,
        index_table: Any,
        alert_partitions: int,
        subject_partitions: int,
    ) -> None:
        self.app = app
        self.runtime = runtime
        self.publisher = publisher
        self.escalation = escalation
        self.table = subject_table
        self.index_table = index_table
        self.alert_partitions = alert_partitions
        self.subject_partitions = subject_partitions
        settings = runtime.settings
        self.tick_delay = settings.sanctions_tick_delay
        self.route = RouteProcessor()
        horizon = max(escalation.keep_seconds(k) for k in ("patient", "doctor", "institution"))
        self.index = IndexProcessor(escalation, _copying(index_table), horizon)
        self.subjects = SubjectProcessor(
            escalation, _copying(subject_table), settings.sanctions_alerts_per_subject
        )
        self.lock = asyncio.Lock()
        #: (topic, partition) -> next offset to read, for "has the sanctions flow caught up"
        self.positions: dict[tuple[str, int], int] = {}
        self._tick_cursor: list[str] = []
        self._index_cursor: list[str] = []
        self._last_index_sweep = time.monotonic()
        #: the event time the subjects were last ticked to
        self.ticked_to: float | None = None
        #: (kind, partition) -> (detection watermark, wall time it last moved)
        self._detection: dict[tuple[str, int], tuple[float, float]] = {}
        self._previous_low: float | None = None
        #: wall seconds after which a detection partition that has not moved is quiet
        self.idle = max(3.0, 3 * settings.sanctions_tick_interval)

    # -- SanctionsView ----------------------------------------------------------------------

    def key_of(self, kind: str, id_: str) -> str:
        return f"{kind}:{id_}"

    def _state(self, kind: str, id_: str) -> dict[str, Any] | None:
        state: dict[str, Any] | None = self.table.data.get(self.key_of(kind, id_))
        return state

    def _now(self) -> float:
        wm = self.watermark()
        return wm if wm is not None else float("-inf")

    def subject(self, kind: str, id_: str) -> dict[str, Any] | None:
        state = self._state(kind, id_)
        return None if state is None else answers.subject(state, self._now(), self.escalation)

    def alerts(self, kind: str, id_: str, status: str | None = None) -> list[dict[str, Any]] | None:
        state = self._state(kind, id_)
        return None if state is None else answers.alerts(state, status)

    def institution(self, id_: str) -> dict[str, Any] | None:
        state = self._state("institution", id_)
        if state is None:
            return None
        return answers.institution(state, self._now(), self.escalation)

    # -- event time -------------------------------------------------------------------------

    def watermark(self) -> float | None:
        """Event time "now" of the subjects: the time they were last ticked to (answers use
        it, or the subject's own later time)."""
        return self.ticked_to

    def detection_low(self, wall: float) -> float | None:
        """The detection's low watermark: the least event time among the worker's detection
        partitions, leaving out quiet ones (not moved for `idle` seconds and read to their end,
        so they hold no alert back); the greatest when all are quiet (nothing in flight)."""
        seen = self._detection
        for kind, pipeline in self.runtime.pipelines.items():
            for partition, wm in list(pipeline.processor.watermarks.items()):
                key = (kind, partition)
                last = seen.get(key)
                if last is None or last[0] != wm:
                    seen[key] = (wm, wall)
        if not seen:
            return None
        behind = self._detection_backlog()
        active = [
            wm for key, (wm, moved) in seen.items() if wall - moved <= self.idle or key in behind
        ]
        return min(active) if active else max(wm for wm, _ in seen.values())

    def _detection_backlog(self) -> set[tuple[str, int]]:
        """(kind, partition) of the detection inputs not yet processed and committed to the
        end of what the consumer knows is there."""
        consumer = self.app.consumer
        committed = getattr(consumer, "_committed_offset", {})
        topics: dict[str, str] = dict.fromkeys(self.runtime.input_topics, "patient")
        for name in self.runtime.pipelines:
            topics[f"claimstream.repartition.{name}"] = name
        behind: set[tuple[str, int]] = set()
        for tp in consumer.assignment():
            kind = topics.get(tp.topic)
            if kind is None:
                continue
            try:
                highwater = consumer.highwater(tp)
            except Exception:  # noqa: BLE001, S112 - revoked meanwhile
                continue
            if highwater is not None and (committed.get(tp) or 0) < highwater:
                behind.add((kind, tp.partition))
        return behind

    def tick_watermark(self, wall: float) -> float | None:
        """Where the next tick may move the subjects, or None (not now).

        The detection's low watermark as it was at the previous tick (so the alerts of the
        batches behind it have been published since), less `tick_delay`, and only while the
        sanctions agents have read everything there is on their topics: then no alert or
        action of an earlier time is still on its way to a subject.
        """
        previous, self._previous_low = self._previous_low, self.detection_low(wall)
        if previous is None or not self.caught_up():
            return None
        return previous - self.tick_delay

    def caught_up(self) -> bool:
        """Whether every assigned partition of the sanctions topics is read to its end (as
        far as the last fetch knows)."""
        consumer = self.app.consumer
        committed = getattr(consumer, "_committed_offset", {})
        topics = (ALERTS, REPARTITION_ALERT, ACTIONS, REPARTITION_SUBJECT)
        for tp in consumer.assignment():
            if tp.topic not in topics:
                continue
            try:
                highwater = consumer.highwater(tp)
            except Exception:  # noqa: BLE001, S112 - revoked meanwhile
                continue
            if highwater is None:
                continue
            read = max(self.positions.get((tp.topic, tp.partition), 0), committed.get(tp) or 0)
            if read < highwater:
                return False
        return True

    def seen(self, records: Iterable[Record]) -> None:
        positions = self.positions
        for r in records:
            key = (r.topic, r.partition)
            if r.offset + 1 > positions.get(key, 0):
                positions[key] = r.offset + 1

    def alert_partition(self, key: str) -> int:
        """Partition of an alert-index key (an alert_id) in the "sanctions" group."""
        return int(murmur2(key.encode()) & 0x7FFFFFFF) % self.alert_partitions

    def subject_partition(self, key: str) -> int:
        """Partition of a state-subject key (`kind:id`) in the "subject" group."""
        return int(murmur2(key.encode()) & 0x7FFFFFFF) % self.subject_partitions

    def assigned(self, topic: str) -> set[int]:
        return {tp.partition for tp in self.app.consumer.assignment() if tp.topic == topic}

    # -- outputs ----------------------------------------------------------------------------

    async def emit(self, result: Result, writer: TableWriter | None) -> None:
        """Forwards and notices (awaited), commands and dead letters (sinks), then state."""
        publish: list[Out] = [(t, k.encode(), v, None) for t, k, v in result.forwards]
        publish += [(NOTICES, k.encode(), orjson.dumps(n), None) for k, n in result.notices]
        if publish:
            await self.publisher.send_and_wait(publish)
        outputs = Outputs(commands=result.commands, dead_letters=result.dead_letters)
        if outputs:
            for sink in self.runtime.sinks:
                await write_until_done(
                    f"sink {sink.name}", functools.partial(sink.write, outputs), self._stopping
                )
        if writer is not None:
            await writer.write(result.writes, result.deletes)
        metrics = self.runtime.metrics
        for letter in result.dead_letters:
            metrics.dead_letter(letter.reason)
        for command in result.commands:
            metrics.command_issued(command)
        for rule, verdict in result.verdicts:
            metrics.review_recorded(rule, verdict)
        for _key, notice in result.notices:
            metrics.sanction_notice(str(notice.get("schema", "")))

    def _stopping(self) -> bool:
        return any(p.stopping for p in self.runtime.pipelines.values())

    # -- periodic work ----------------------------------------------------------------------

    async def tick(self, writer: TableWriter, slice_: int) -> int:
        """Tick one slice of the assigned subjects at the watermark; returns keys visited."""
        if self.app.rebalancing or getattr(self.app, "in_recovery", False):
            return 0
        now = self.tick_watermark(time.time())
        if now is None or (self.ticked_to is not None and now < self.ticked_to):
            return 0
        self.ticked_to = now
        async with self.lock:
            await self.runtime.ensure_started()
            if not self._tick_cursor:
                self._tick_cursor = list(self.table.data.keys())
            chunk = self._tick_cursor[-slice_:]
            del self._tick_cursor[-slice_:]
            owned = self.assigned(REPARTITION_SUBJECT)
            keys = [k for k in chunk if self.subject_partition(k) in owned]
            result = self.subjects.tick(keys, now, self.subject_partition)
            await self.emit(result, writer)
            return len(keys)

    async def sweep_index(self, writer: TableWriter, interval: float, slice_: int) -> None:
        """Forget alert-index entries past the horizon (inside the index agent, between batches)."""
        if time.monotonic() - self._last_index_sweep < interval:
            return
        self._last_index_sweep = time.monotonic()
        if not self._index_cursor:
            self._index_cursor = list(self.index_table.data.keys())
        chunk = self._index_cursor[-slice_:]
        del self._index_cursor[-slice_:]
        owned = self.assigned(REPARTITION_ALERT)
        keys = [k for k in chunk if self.alert_partition(k) in owned]
        await writer.write({}, self.index.sweep(keys, self.alert_partition))
        if self._index_cursor:
            self._last_index_sweep -= interval

    def sample_precision(self) -> None:
        """Set the per-rule review gauges from the assigned partitions' counts."""
        data = self.index_table.data
        counts = precision(
            data.get(f"{PRECISION_PREFIX}{p}") for p in self.assigned(REPARTITION_ALERT)
        )
        self.runtime.metrics.set_reviewed_alerts(counts)


def _copying(table: Any) -> Callable[[str], Any]:
    """A loader that hands the processors a copy: the stored state changes only when a batch's
    outputs are out and its writes are made, so a batch that failed half-way and is processed
    again meets the state it met the first time (the memory store returns the stored object
    itself)."""

    def load(key: str) -> Any:
        value = table.data.get(key)
        return None if value is None else orjson.loads(orjson.dumps(value))

    return load


def install_sanctions(app: faust.App, runtime: Runtime, publisher: BatchPublisher) -> None:
    """Add the sanctions agents and tables to `app` and set `runtime.sanctions`."""
    settings = runtime.settings
    escalation = Escalation(settings.sanctions)
    topology = runtime.topology
    for name in (ALERTS, ACTIONS, REPARTITION_ALERT, REPARTITION_SUBJECT, NOTICES):
        topology.topic(name)  # KeyError if topics.toml no longer declares it
    index_table, index_changelog, alert_partitions = state_table(
        app, runtime.topology, "alert-index"
    )
    subject_table, subject_changelog, subject_partitions = state_table(
        app, runtime.topology, "state-subject"
    )
    sanctions = SanctionsRuntime(
        app,
        runtime,
        publisher,
        escalation,
        subject_table,
        index_table,
        alert_partitions,
        subject_partitions,
    )
    index_writer = TableWriter(index_table, index_changelog, REPARTITION_ALERT, publisher)
    subject_writer = TableWriter(subject_table, subject_changelog, REPARTITION_SUBJECT, publisher)
    batch, within = settings.batch_size, settings.batch_within

    async def route(stream: Any) -> None:
        await runtime.ensure_started()
        async for events in queue_batches(app, stream, batch, within):
            records = records_of(events)
            await sanctions.emit(sanctions.route.process(records), None)
            sanctions.seen(records)
            ack_all(events)

    async def index(stream: Any) -> None:
        await runtime.ensure_started()
        async for events in queue_batches(app, stream, batch, within):
            records = records_of(events)
            await sanctions.emit(sanctions.index.process(records), index_writer)
            sanctions.seen(records)
            ack_all(events)
            sanctions.sample_precision()
            await sanctions.sweep_index(index_writer, settings.sweep_interval, settings.sweep_slice)

    async def subject(stream: Any) -> None:
        await runtime.ensure_started()
        async for events in queue_batches(app, stream, batch, within):
            records = records_of(events)
            async with sanctions.lock:
                await sanctions.emit(sanctions.subjects.process(records), subject_writer)
            sanctions.seen(records)
            ack_all(events)

    async def tick() -> None:
        try:
            await sanctions.tick(subject_writer, settings.sweep_slice)
            sanctions.sample_precision()  # also right after a rebalance, before any review
        except Exception:  # the next tick tries again; the state was not written
            log.exception("sanctions tick failed")

    app.agent(
        raw_topic(app, ALERTS, partitions=alert_partitions),
        name="claimstream.sanctions-route",
        concurrency=1,
    )(route)
    app.agent(
        raw_topic(app, REPARTITION_ALERT, ACTIONS, partitions=alert_partitions),
        name="claimstream.sanctions-index",
        concurrency=1,
    )(index)
    app.agent(
        raw_topic(app, REPARTITION_SUBJECT, partitions=subject_partitions),
        name="claimstream.sanctions-subject",
        concurrency=1,
    )(subject)
    app.timer(settings.sanctions_tick_interval)(tick)
    runtime.sanctions = sanctions
