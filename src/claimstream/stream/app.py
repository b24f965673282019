"""`create_app(settings)`: the faust app of one claimstream worker, built fresh on every call.

Wiring only; the work is in `pipeline` and `processor`. One agent per key kind the engine
needs: the patient agent reads the four co-partitioned input topics plus the patient
repartition topic (records keyed wrongly or not at all come back through it); doctor and
institution agents, created only when an enabled rule keys state by them, read their
repartition topics. Each agent takes batches with `take_events` (acked by faust only after the
batch is handled) and keeps per-key state in a plain, changelog-backed table named
`state-<kind>` with the co-partition group's partition count (so changelog partition p holds
exactly the keys of input partition p).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import faust
from aiokafka.partitioner import murmur2
from prometheus_client import CollectorRegistry

from claimstream.detection.engine import Engine
from claimstream.detection.processor import KeyedProcessor
from claimstream.detection.sinks.base import Sink
from claimstream.freezes.base import FreezeRegistry
from claimstream.freezes.redis import registry_from_url
from claimstream.freezes.sink import RegistrySink
from claimstream.kafka.sink import KafkaSink, OutputTopics
from claimstream.kafka.topology import Topology, load_topology
from claimstream.kafka.url import bootstrap_servers, broker_url
from claimstream.model.events import KEY_KINDS, KeyKind
from claimstream.observability.metrics import Metrics
from claimstream.stream.audit import install_audit
from claimstream.stream.batches import ack_all, queue_batches, records_of
from claimstream.stream.codec import PartitionPointer
from claimstream.stream.consumer import consumer_class
from claimstream.stream.gauges import install_gauges
from claimstream.stream.http.api import install_api
from claimstream.stream.http.sanctions_view import SanctionsView
from claimstream.stream.http.views import install_views
from claimstream.stream.pipeline import Counters, Pipeline
from claimstream.stream.publish import BatchPublisher
from claimstream.stream.sanctions import install_sanctions
from claimstream.stream.settings import Settings
from claimstream.stream.tables import raw_topic, state_table

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Runtime:
    """What the app's agents and views share; reachable as `app.claimstream` for tests."""

    settings: Settings
    topology: Topology
    engine: Engine
    registry: FreezeRegistry
    metrics: Metrics
    sinks: list[Sink]
    counters: Counters = field(default_factory=Counters)
    pipelines: dict[KeyKind, Pipeline] = field(default_factory=dict)
    input_topics: frozenset[str] = frozenset()
    #: the sanctions tables' read side (None while sanctions are disabled), for the API
    sanctions: SanctionsView | None = None
    started: bool = False

    async def ensure_started(self) -> None:
        """Open sink connections once, from the agent's loop (faust has no async app init)."""
        if self.started:
            return
        for sink in self.sinks:
            await sink.start()
        self.started = True

    async def stop(self) -> None:
        for pipeline in self.pipelines.values():
            pipeline.stopping = True
        if self.started:
            for sink in self.sinks:
                try:
                    await sink.stop()
                except Exception:  # shutting down: log and go on
                    log.exception("stopping sink %s", sink.name)
            self.started = False


def create_app(
    settings: Settings,
    *,
    sinks: Sequence[Sink] | None = None,
    registry: FreezeRegistry | None = None,
    metrics: Metrics | None = None,
    topology: Topology | None = None,
) -> faust.App:
    """A new faust app for `settings`.

    `sinks` replaces the default output sinks (Kafka topics + freeze registry); `registry`
    the freeze registry (default: Redis at `settings.redis_url`, else in-process); `metrics` a
    `Metrics` on a registry the caller owns (default: a fresh one, served at `/metrics`).
    """
    topology = topology or load_topology(settings.topics_file, partitions=settings.partitions)
    partitions = topology.default_partitions
    engine = Engine(settings.detection, time.time)
    registry = registry or registry_from_url(settings.redis_url, settings.redis_prefix)
    metrics = metrics or Metrics(CollectorRegistry())
    app = faust.App(
        settings.app_id,
        broker=broker_url(settings.broker_url),
        store=settings.store,
        datadir=settings.data_dir,
        autodiscover=False,
        topic_partitions=partitions,
        topic_replication_factor=topology.topics[0].replication_factor,
        topic_allow_declare=False,  # topics are code: `claimstream topics apply` creates them
        processing_guarantee=settings.processing_guarantee,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.commit_interval,
        stream_buffer_maxsize=max(4096, settings.batch_size * 2),
        broker_max_poll_records=max(500, settings.batch_size),
        consumer_max_fetch_size=settings.fetch_bytes,
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=min(3.0, settings.session_timeout / 5),
        producer_linger_ms=0,
        web_enabled=settings.web_enabled,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        key_serializer="raw",
        value_serializer="raw",
        table_cleanup_interval=3600.0,
    )
    # Every table write is a changelog record queued in faust's producer buffer, and faust
    # stops feeding agents while that buffer holds more than `max_messages` (default 100):
    # with one write per key per batch that throttles consumption to a crawl.
    app.producer.buffer.max_messages = max(10_000, settings.batch_size * 4)
    cast(Any, app.transport).Consumer = consumer_class(settings.fetch_wait_ms)
    # On Tansu every topic we write ends each flush with a one-record batch: its high
    # watermark (the last batch's base offset + 1) bounds what consumers can fetch too, so the
    # tail of a multi-record batch of alerts, commands or re-keyed events would stay invisible
    # until the next write to that partition, and of a changelog, to recovery.
    written = frozenset(
        spec.name for spec in topology.topics if spec.role in ("changelog", "output", "repartition")
    )
    publisher = BatchPublisher(
        app,
        {spec.name: spec.partitions for spec in topology.topics},
        single_record_topics=written if settings.broker_flavor == "tansu" else frozenset(),
    )
    if sinks is None:
        outputs = OutputTopics()
        sinks = [KafkaSink(publisher, outputs), RegistrySink(registry)]
    runtime = Runtime(settings, topology, engine, registry, metrics, list(sinks))
    app.claimstream = runtime  # type: ignore[attr-defined]
    inputs = tuple(spec.name for spec in topology.by_role("input"))
    runtime.input_topics = frozenset(inputs)
    repartition: dict[KeyKind, str] = {
        kind: f"claimstream.repartition.{kind}" for kind in KEY_KINDS
    }
    for name in repartition.values():
        topology.topic(name)  # KeyError if topics.toml no longer declares it
    # Every key kind gets its agent and table even when no enabled rule needs it yet: a rule
    # enabled at run time (control topic) then finds its state's home already there.
    _add_kind(
        app, runtime, "patient", (*inputs, repartition["patient"]), frozenset(inputs), True,
        publisher, repartition, partitions,
    )  # fmt: skip
    for kind in ("doctor", "institution"):
        _add_kind(
            app, runtime, kind, (repartition[kind],), frozenset(), False,
            publisher, repartition, partitions,
        )  # fmt: skip
    if settings.control_enabled:
        _follow_control_topic(app, runtime)
    if settings.sanctions_enabled:
        install_sanctions(app, runtime, publisher)
    if settings.audit_enabled:
        install_audit(app, runtime, publisher)
    install_views(app, runtime)
    install_api(app, runtime, publisher)
    install_gauges(app, runtime, settings.gauge_interval)
    metrics.worker_started(
        app_id=settings.app_id, store=settings.store, config_version=settings.detection.version
    )

    async def _close(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        await runtime.stop()

    app.on_before_shutdown.connect(cast(Any, _close))

    return app


def _add_kind(
    app: faust.App,
    runtime: Runtime,
    kind: KeyKind,
    topic_names: tuple[str, ...],
    home_topics: frozenset[str],
    forwards: bool,
    publisher: BatchPublisher,
    repartition: dict[KeyKind, str],
    partitions: int,
) -> None:
    settings = runtime.settings
    table, changelog_name, _ = state_table(app, runtime.topology, f"state-{kind}")
    topic = raw_topic(app, *topic_names, partitions=partitions)
    pipeline = Pipeline(
        KeyedProcessor(
            runtime.engine,
            kind,
            table.data.get,
            home_topics=home_topics,
            forwards=forwards,
        ),
        table,
        sinks=runtime.sinks,
        publisher=publisher,
        repartition_topics=repartition,
        changelog_topic=changelog_name,
        pointer=PartitionPointer(topic_names[0]),
        metrics=runtime.metrics,
        counters=runtime.counters,
        sweep_interval=settings.sweep_interval,
        sweep_slice=settings.sweep_slice,
    )
    runtime.pipelines[kind] = pipeline
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
        await runtime.ensure_started()
        if settings.batch_reader == "take":  # faust's own batching, acked after the body
            async for events in stream.take_events(settings.batch_size, settings.batch_within):
                await handle(events)
            return
        batches = queue_batches(app, stream, settings.batch_size, settings.batch_within)
        async for events in batches:
            await handle(events)
            ack_all(events)

    app.agent(topic, name=f"claimstream.detect-{kind}", concurrency=1)(detect)


def _follow_control_topic(app: faust.App, runtime: Runtime) -> None:
    """Apply every configuration snapshot published on the control topic (`claimstream rules`).

    The snapshot replaces the engine of every pipeline between two batches (all on the event
    loop, so no batch sees two configurations); per-key state carries over, since a rule's
    state is stored under its own name and state version.
    """
    from claimstream.kafka.control import ControlWatcher, Snapshot

    def apply(snapshot: Snapshot) -> None:
        engine = Engine(snapshot.config, time.time)
        runtime.engine = engine
        for pipeline in runtime.pipelines.values():
            pipeline.processor.engine = engine
        runtime.metrics.set_rule_config_version(snapshot.version)
        log.warning("detection configuration version %s in force", snapshot.version)

    watcher = ControlWatcher(bootstrap_servers(runtime.settings.broker_url), apply)

    async def follow() -> None:
        await watcher.run()

    app.task(follow)
