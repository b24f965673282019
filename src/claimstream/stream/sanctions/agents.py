"""`install_sanctions`: the three sanctions agents, their two tables and the tick timer."""

from __future__ import annotations

import logging
from typing import Any

from claimstream.kafka.topology import Topology
from claimstream.observability.metrics import Metrics
from claimstream.sanctions.ladder import Escalation
from claimstream.sanctions.processor import (
    ACTIONS,
    ALERTS,
    NOTICES,
    REPARTITION_ALERT,
    REPARTITION_SUBJECT,
)
from claimstream.sanctions.settings import SanctionSettings
from claimstream.sanctions.signatures import ActionVerifier
from claimstream.stream.batches import Batching, ack_all, queue_batches, records_of
from claimstream.stream.publish import BatchPublisher
from claimstream.stream.sanctions.runtime import (
    ALERT_INDEX,
    SUBJECT_STATE,
    SanctionsRuntime,
    Watermarks,
)
from claimstream.stream.sinks import SinkSet
from claimstream.stream.tables import TableWriter, raw_topic, state_table

log = logging.getLogger(__name__)


def install_sanctions(
    app: Any,
    *,
    topology: Topology,
    settings: SanctionSettings,
    publisher: BatchPublisher,
    sinks: SinkSet,
    metrics: Metrics,
    watermarks: Watermarks,
    detection_topics: dict[str, str],
    verifier: ActionVerifier,
    batching: Batching,
    sweep_interval: float,
    sweep_slice: int,
    tick_interval: float,
    tick_delay: float,
    alerts_per_subject: int,
) -> SanctionsRuntime:
    """Add the sanctions agents and tables to `app`; returns their shared runtime (the API's
    `SanctionsView`). People's actions are applied only when `verifier` accepts them
    (`claimstream.stream.sanctions.keys`)."""
    for name in (ALERTS, ACTIONS, REPARTITION_ALERT, REPARTITION_SUBJECT, NOTICES):
        topology.topic(name)  # KeyError if topics.toml no longer declares it
    index_table, index_changelog, alert_partitions = state_table(app, topology, ALERT_INDEX)
    subject_table, subject_changelog, subject_partitions = state_table(app, topology, SUBJECT_STATE)
    sanctions = SanctionsRuntime(
        app,
        publisher,
        Escalation(settings),
        subject_table,
        index_table,
        alert_partitions,
        subject_partitions,
        sinks=sinks,
        metrics=metrics,
        watermarks=watermarks,
        detection_topics=detection_topics,
        verifier=verifier,
        tick_delay=tick_delay,
        tick_interval=tick_interval,
        alerts_per_subject=alerts_per_subject,
    )
    index_writer = TableWriter(index_table, index_changelog, REPARTITION_ALERT, publisher)
    subject_writer = TableWriter(subject_table, subject_changelog, REPARTITION_SUBJECT, publisher)
    batch, within = batching.size, batching.within

    async def route(stream: Any) -> None:
        await sinks.ensure_started()
        async for events in queue_batches(app, stream, batch, within):
            records = records_of(events)
            await sanctions.emit(sanctions.route.process(records), None)
            sanctions.seen(records)
            ack_all(events)

    async def index(stream: Any) -> None:
        await sinks.ensure_started()
        async for events in queue_batches(app, stream, batch, within):
            records = records_of(events)
            await sanctions.emit(sanctions.index.process(records), index_writer)
            sanctions.seen(records)
            ack_all(events)
            sanctions.sample_precision()
            await sanctions.sweep_index(index_writer, sweep_interval, sweep_slice)

    async def subject(stream: Any) -> None:
        await sinks.ensure_started()
        async for events in queue_batches(app, stream, batch, within):
            records = records_of(events)
            async with sanctions.lock:
                await sanctions.emit(sanctions.subjects.process(records), subject_writer)
            sanctions.seen(records)
            ack_all(events)

    async def tick() -> None:
        try:
            await sanctions.tick(subject_writer, sweep_slice)
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
    app.timer(tick_interval)(tick)
    return sanctions
