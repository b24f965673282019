"""`install_detection`: the detection agents and their state tables on a faust app.

One agent per key kind the engine knows: the patient agent reads the four co-partitioned input
topics plus the patient repartition topic (records keyed wrongly or not at all come back
through it); the doctor, institution and trace-code agents read their repartition topics (a
dispensing reaches the trace-code one once per code it carries). Every kind gets
its agent and table even when no enabled rule needs it yet: a rule enabled at run time (control
topic) then finds its state's home already there. Each agent takes batches (acked by faust only
after the batch is handled) and keeps per-key state in a plain, changelog-backed table named
`state-<kind>` with the co-partition group's partition count (so changelog partition p holds
exactly the keys of input partition p).

Event time across the re-keying (docs/time.md §5-§7). The patient agent forwards each accepted
event with its source partition and that partition's progress as headers, and a timer sends a
watermark marker to every partition of the aligned (doctor, institution, trace-code)
repartition topics about once a second (`markers.py`). Their processors are aligned: each event
waits until the watermark the input partitions' owners report has passed it by the alignment
slack, then reaches the rules in event-time order, so they see what `replay` sees however the
backlog is paced. The events waiting live in memory and in the table `pending-<kind>`; after
every rebalance (once faust has recovered the tables, before any batch) each aligned pipeline
is told its partitions and takes the waiting events of the new ones from that table.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from claimstream.detection import align
from claimstream.detection.engine import Engine
from claimstream.detection.processor import KeyedProcessor
from claimstream.kafka.security import KafkaSecurity
from claimstream.kafka.topology import Topology
from claimstream.model.events import STATE_KINDS, StateKind
from claimstream.model.partitioning import partition_for
from claimstream.observability.metrics import Metrics
from claimstream.reference.suspensions import Suspensions
from claimstream.rules.base import State
from claimstream.stream.assignment import owned_partitions
from claimstream.stream.batches import Batching, each_batch, records_of
from claimstream.stream.codec import PartitionPointer
from claimstream.stream.detection.markers import (
    ClockMark,
    SourceWatch,
    family_of_topic,
    marker_headers,
)
from claimstream.stream.detection.peers import INDICATORS_TOPIC, PeerGroups
from claimstream.stream.detection.pipeline import Counters, Pipeline
from claimstream.stream.publish import BatchPublisher, OutWithHeaders
from claimstream.stream.sinks import SinkSet
from claimstream.stream.tables import raw_topic, state_table

log = logging.getLogger(__name__)

REPARTITION: dict[StateKind, str] = {k: f"claimstream.repartition.{k}" for k in STATE_KINDS}
#: the kinds whose processors hold events until the input partitions' watermark passes them
ALIGNED: tuple[StateKind, ...] = align.ALIGNED
#: wall seconds between two watermark markers
MARKER_INTERVAL = 1.0


@dataclass(slots=True)
class Detection:
    """What the detection agents show the rest of the worker: their pipelines (tables,
    event-time watermarks), running totals, and the engine in force."""

    engine: Engine
    input_topics: frozenset[str]
    counters: Counters = field(default_factory=Counters)
    pipelines: dict[StateKind, Pipeline] = field(default_factory=dict)
    #: the peer-group agent (issue #15): `peers.months(peer_group)` is the benchmark's read
    peers: PeerGroups | None = None

    def topic_kinds(self) -> dict[str, str]:
        """Every topic the agents read -> the key kind whose agent reads it."""
        kinds: dict[str, str] = dict.fromkeys(self.input_topics, "patient")
        for kind in self.pipelines:
            kinds[REPARTITION[kind]] = kind
        return kinds

    def watermarks(self) -> Iterator[ClockMark]:
        """What the sanctions ladder's clock follows (docs/time.md §7 item 6), no single record
        moving it while its partition is active:

        * each input partition this worker reads: the progress confirmed by two consecutive
          records (its latest record's time once it is quiet);
        * each aligned kind, per partition of its topic this worker reads: while events wait,
          the point up to which they have been released (the watermark less the slack), since
          the alerts of the events behind it are out and those of the rest are not.
        """
        patient = self.pipelines.get("patient")
        if patient is not None and patient.watch is not None:
            progress = patient.processor.progress
            families = patient.watch.families
            for topic, partition in list(patient.watch.heard):
                source = f"{families.get(topic, '?')}/{partition}"
                last = progress.last(source)
                if last is not None:
                    confirmed = progress.progress.get(source)
                    yield ClockMark(topic, partition, confirmed, last)
        for kind in ALIGNED:
            pipeline = self.pipelines.get(kind)
            if pipeline is None or pipeline.processor.aligner is None:
                continue
            processor = pipeline.processor
            waiting = bool(processor.aligner.buffer) if processor.aligner is not None else False
            mark = processor.watermark()
            released = None if mark is None or mark == math.inf else mark - processor.engine.slack
            for partition in sorted(processor.channels or ()):
                yield ClockMark(REPARTITION[kind], partition, released, None, waiting)

    def tables(self) -> list[Any]:
        return [pipeline.table for pipeline in self.pipelines.values()]

    def state(self, kind: StateKind, key: str) -> State | None:
        """The state of `key` as the `kind` agent stores it (the pre-settlement check's copy
        source; with `CLAIMSTREAM_COMPACT_STATE=false` the memory store hands out the stored
        object itself: do not change it)."""
        pipeline = self.pipelines.get(kind)
        return None if pipeline is None else pipeline.load(key)

    def use(self, engine: Engine) -> None:
        """Put `engine` in force for every pipeline's next batch (the patient pipeline's
        next slice of its batch: `Pipeline._process`); per-key state carries over."""
        self.engine = engine
        for pipeline in self.pipelines.values():
            pipeline.processor.engine = engine
            if pipeline.processor.aligner is not None:
                pipeline.processor.aligner.engine = engine

    def status(self) -> dict[str, Any]:
        """Running totals for `/status`."""
        body: dict[str, Any] = self.counters.to_dict()
        body["config_version"] = self.engine.config.version  # the one in force
        body["records_by_kind"] = {k: p.records for k, p in self.pipelines.items()}
        aligned = {k: p for k, p in self.pipelines.items() if p.processor.aligner is not None}
        # events waiting for the input partitions' watermark, and those taken back from
        # `pending-<kind>` after rebalances (docs/time.md §7)
        body["waiting_by_kind"] = {k: p.waiting() for k, p in aligned.items()}
        body["restored_by_kind"] = {k: p.restored for k, p in aligned.items()}
        if self.peers is not None:
            body["peers"] = self.peers.counters.to_dict()
        return body

    def stop(self) -> None:
        for pipeline in self.pipelines.values():
            pipeline.stopping = True
        if self.peers is not None:
            self.peers.stopping = True


def install_detection(
    app: Any,
    *,
    topology: Topology,
    engine: Engine,
    sinks: SinkSet,
    publisher: BatchPublisher,
    metrics: Metrics,
    batching: Batching,
    sweep_interval: float,
    sweep_slice: int,
    compact_state: bool = False,
) -> Detection:
    """Add one detection agent and state table per key kind to `app`, the watermark markers'
    timer, and (aligned kinds) the `pending-<kind>` tables."""
    inputs = tuple(spec.name for spec in topology.by_role("input"))
    for name in REPARTITION.values():
        topology.topic(name)  # KeyError if topics.toml no longer declares it
    detection = Detection(engine, frozenset(inputs))
    partitions = topology.default_partitions
    input_partitions = topology.topic(inputs[0]).partitions
    idle_after = engine.config.source_idle_seconds
    for kind in STATE_KINDS:
        patient = kind == "patient"
        aligned = kind in ALIGNED
        topics = (*inputs, REPARTITION[kind]) if patient else (REPARTITION[kind],)
        table, changelog, _ = state_table(app, topology, f"state-{kind}", encoded=compact_state)
        waiting, waiting_changelog = None, None
        if aligned:
            waiting, waiting_changelog, _ = state_table(app, topology, f"pending-{kind}")
        pipeline = Pipeline(
            KeyedProcessor(
                engine,
                kind,
                table.data.get,
                home_topics=frozenset(inputs) if patient else frozenset(),
                forwards=patient,
                clock=time.time,
                partitions=input_partitions,
                align=aligned,
                idle_after=idle_after,
            ),
            table,
            sinks=sinks.sinks,
            publisher=publisher,
            repartition_topics=REPARTITION,
            changelog_topic=changelog,
            pointer=PartitionPointer(topics[0]),
            metrics=metrics,
            counters=detection.counters,
            sweep_interval=sweep_interval,
            sweep_slice=sweep_slice,
            pending_table=waiting,
            pending_changelog=waiting_changelog,
            watch=SourceWatch(family_of_topic(inputs), idle_after) if patient else None,
            # institution_indicators' closed months, to the peer-group agent (`peers.py`)
            indicators_topic=INDICATORS_TOPIC if kind == "institution" else None,
        )
        detection.pipelines[kind] = pipeline
        _add_agent(app, kind, topics, pipeline, sinks, batching, partitions)
        _on_rebalance(app, table, pipeline, frozenset(topics))
    _send_markers(app, detection, publisher, topology, metrics)
    return detection


def _on_rebalance(app: Any, table: Any, pipeline: Pipeline, topics: frozenset[str]) -> None:
    """After every rebalance, once faust has recovered the tables and before the agents get a
    batch: tell the pipeline which partitions of its topics it now reads."""

    async def recovered() -> None:
        owned = {tp for tp in app.consumer.assignment() if tp.topic in topics}
        watch = pipeline.watch
        if watch is not None:
            watch.assigned(((tp.topic, tp.partition) for tp in owned), time.time())
        restored = pipeline.rebalanced({tp.partition for tp in owned})
        if restored:
            log.warning(
                "%s: %d events waiting for the watermark restored from the pending table",
                pipeline.processor.kind,
                restored,
            )

    table.on_recover(recovered)


def _send_markers(
    app: Any,
    detection: Detection,
    publisher: BatchPublisher,
    topology: Topology,
    metrics: Metrics,
) -> None:
    """Every `MARKER_INTERVAL`: one marker to every partition of the aligned repartition
    topics, reporting the input partitions this worker reads (`markers.py`); and the aligned
    kinds' gauges."""
    patient = detection.pipelines["patient"]
    watch = patient.watch
    assert watch is not None
    targets = [
        (REPARTITION[kind], topology.topic(REPARTITION[kind]).partitions) for kind in ALIGNED
    ]

    async def tick() -> None:
        try:
            now = time.time()
            for kind in ALIGNED:
                mark = detection.pipelines[kind].processor.watermark()
                if mark is not None and mark != math.inf:
                    metrics.set_aligned_lag(kind, now - mark)
            if app.rebalancing or getattr(app, "in_recovery", False):
                return
            consumer = app.consumer
            owned = [
                (tp.topic, tp.partition)
                for tp in consumer.assignment()
                if tp.topic in detection.input_topics
            ]
            if not owned:
                return
            committed = {
                (tp.topic, tp.partition): offset
                for tp, offset in getattr(consumer, "_committed_offset", {}).items()
            }
            tps = {(tp.topic, tp.partition): tp for tp in consumer.assignment()}

            def end(where: tuple[str, int]) -> int | None:
                highwater: int | None = consumer.highwater(tps[where])
                return highwater

            async with patient.lock:
                body = watch.report(
                    owned, patient.processor.progress.progress, end, committed, time.time()
                )
                headers = marker_headers(body)
                records: list[OutWithHeaders] = [
                    (topic, None, None, p, headers)
                    for topic, count in targets
                    for p in range(count)
                ]
                await publisher.send_and_wait(records)
        except Exception:  # the next tick tries again; markers only carry progress
            log.exception("sending watermark markers failed")

    app.timer(MARKER_INTERVAL)(tick)


def _add_agent(
    app: Any,
    kind: StateKind,
    topic_names: tuple[str, ...],
    pipeline: Pipeline,
    sinks: SinkSet,
    batching: Batching,
    partitions: int,
) -> None:
    def assigned() -> set[int]:
        return owned_partitions(app, *topic_names) or set()

    def partition_of(key: str) -> int:
        return partition_for(key, partitions)

    async def handle(events: list[Any]) -> None:
        await pipeline.handle(records_of(events))
        if pipeline.sweep_due():
            await pipeline.sweep(assigned, partition_of)

    async def detect(stream: Any) -> None:
        await sinks.ensure_started()
        await each_batch(app, stream, batching, handle)

    topic = raw_topic(app, *topic_names, partitions=partitions)
    app.agent(topic, name=f"claimstream.detect-{kind}", concurrency=1)(detect)


def follow_control_topic(
    app: Any,
    bootstrap: str,
    detection: Detection,
    metrics: Metrics,
    security: KafkaSecurity | None = None,
    suspensions: Suspensions | None = None,
) -> None:
    """Apply every configuration snapshot published on the control topic (`claimstream rules`).

    The snapshot replaces the engine of every pipeline between two batches (all on the event
    loop, so no batch sees two configurations); per-key state carries over, since a rule's
    state is stored under its own name and state version. `security`: the worker's Kafka TLS
    and SASL settings.
    """
    from claimstream.kafka.control import ControlWatcher, Snapshot

    def apply(snapshot: Snapshot) -> None:
        detection.use(Engine(snapshot.config, time.time, suspensions))
        metrics.name_rules(snapshot.config.custom_rules)
        metrics.set_rule_config_version(snapshot.version)
        log.warning("detection configuration version %s in force", snapshot.version)

    watcher = ControlWatcher(bootstrap, apply, security=security)

    async def follow() -> None:
        await watcher.run()

    app.task(follow)
