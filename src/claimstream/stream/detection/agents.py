"""`install_detection`: the detection agents and their state tables on a faust app.

One agent per key kind the engine knows: the patient agent reads the four co-partitioned input
topics plus the patient repartition topic (records keyed wrongly or not at all come back
through it); the doctor and institution agents read their repartition topics. Every kind gets
its agent and table even when no enabled rule needs it yet: a rule enabled at run time (control
topic) then finds its state's home already there. Each agent takes batches (acked by faust only
after the batch is handled) and keeps per-key state in a plain, changelog-backed table named
`state-<kind>` with the co-partition group's partition count (so changelog partition p holds
exactly the keys of input partition p).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from aiokafka.partitioner import murmur2

from claimstream.detection.engine import Engine
from claimstream.detection.processor import KeyedProcessor
from claimstream.kafka.security import KafkaSecurity
from claimstream.kafka.topology import Topology
from claimstream.model.events import KEY_KINDS, KeyKind
from claimstream.observability.metrics import Metrics
from claimstream.reference.suspensions import Suspensions
from claimstream.rules.base import State
from claimstream.stream.batches import Batching, each_batch, records_of
from claimstream.stream.codec import PartitionPointer
from claimstream.stream.detection.pipeline import Counters, Pipeline
from claimstream.stream.publish import BatchPublisher
from claimstream.stream.sinks import SinkSet
from claimstream.stream.tables import raw_topic, state_table

log = logging.getLogger(__name__)

REPARTITION: dict[KeyKind, str] = {kind: f"claimstream.repartition.{kind}" for kind in KEY_KINDS}


@dataclass(slots=True)
class Detection:
    """What the detection agents show the rest of the worker: their pipelines (tables,
    event-time watermarks), running totals, and the engine in force."""

    engine: Engine
    input_topics: frozenset[str]
    counters: Counters = field(default_factory=Counters)
    pipelines: dict[KeyKind, Pipeline] = field(default_factory=dict)

    def topic_kinds(self) -> dict[str, str]:
        """Every topic the agents read -> the key kind whose agent reads it."""
        kinds: dict[str, str] = dict.fromkeys(self.input_topics, "patient")
        for kind in self.pipelines:
            kinds[REPARTITION[kind]] = kind
        return kinds

    def watermarks(self) -> Iterator[tuple[str, int, float]]:
        """(kind, partition, event-time watermark) of every partition processed so far."""
        for kind, pipeline in self.pipelines.items():
            for partition, wm in list(pipeline.processor.watermarks.items()):
                yield kind, partition, wm

    def tables(self) -> list[Any]:
        return [pipeline.table for pipeline in self.pipelines.values()]

    def state(self, kind: KeyKind, key: str) -> State | None:
        """The state of `key` as the `kind` agent stores it (the pre-settlement check's copy
        source; the memory store hands out the stored object itself: do not change it)."""
        pipeline = self.pipelines.get(kind)
        return None if pipeline is None else pipeline.load(key)

    def use(self, engine: Engine) -> None:
        """Put `engine` in force for every pipeline's next batch (per-key state carries over)."""
        self.engine = engine
        for pipeline in self.pipelines.values():
            pipeline.processor.engine = engine

    def status(self) -> dict[str, Any]:
        """Running totals for `/status`."""
        body: dict[str, Any] = self.counters.to_dict()
        body["config_version"] = self.engine.config.version  # the one in force
        body["records_by_kind"] = {k: p.records for k, p in self.pipelines.items()}
        return body

    def stop(self) -> None:
        for pipeline in self.pipelines.values():
            pipeline.stopping = True


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
) -> Detection:
    """Add one detection agent and state table per key kind to `app`."""
    inputs = tuple(spec.name for spec in topology.by_role("input"))
    for name in REPARTITION.values():
        topology.topic(name)  # KeyError if topics.toml no longer declares it
    detection = Detection(engine, frozenset(inputs))
    partitions = topology.default_partitions
    for kind in KEY_KINDS:
        patient = kind == "patient"
        topics = (*inputs, REPARTITION[kind]) if patient else (REPARTITION[kind],)
        table, changelog, _ = state_table(app, topology, f"state-{kind}")
        pipeline = Pipeline(
            KeyedProcessor(
                engine,
                kind,
                table.data.get,
                home_topics=frozenset(inputs) if patient else frozenset(),
                forwards=patient,
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
        )
        detection.pipelines[kind] = pipeline
        _add_agent(app, kind, topics, pipeline, sinks, batching, partitions)
    return detection


def _add_agent(
    app: Any,
    kind: KeyKind,
    topic_names: tuple[str, ...],
    pipeline: Pipeline,
    sinks: SinkSet,
    batching: Batching,
    partitions: int,
) -> None:
    own_topics = frozenset(topic_names)

    def assigned() -> set[int]:
        return {tp.partition for tp in app.consumer.assignment() if tp.topic in own_topics}

    def partition_of(key: str) -> int:
        return int(murmur2(key.encode()) & 0x7FFFFFFF) % partitions

    async def handle(events: list[Any]) -> None:
        await pipeline.handle(records_of(events))
        if pipeline.sweep_due():
            await pipeline.sweep(assigned(), partition_of)

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
        metrics.set_rule_config_version(snapshot.version)
        log.warning("detection configuration version %s in force", snapshot.version)

    watcher = ControlWatcher(bootstrap, apply, security=security)

    async def follow() -> None:
        await watcher.run()

    app.task(follow)
