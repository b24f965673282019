"""The audit agent: alerts, commands and people's actions appended to the audit hash chain.

One agent reads `claimstream.alerts.v1`, `claimstream.commands.v1` and
`claimstream.actions.v1`; the work is in `claimstream.audit.intake` (pure). Partition p of the
three topics, of `claimstream.audit.v1` and of the `audit-chain` table's changelog belong to one
co-partition group: faust's assignor (`PartitionAssignor._get_copartitioned_groups`) puts every
subscribed topic with the same partition count and the same subscribing workers in one group
and `CopartitionedAssignor` gives partition p of every topic of a group to the same worker, the
changelog's partition p included (as its active). So the worker that owns input partition p is
the only writer of audit partition p and of its chain state. The audit topic's partition count
is checked against the inputs' at start (it is an output, not subscribed).

Per batch, in the at-least-once order of `Pipeline`:

1. `AuditIntake.process` (pure): per source partition chain, records in source offset order;
   unreadable records become dead letters;
2. the audit records go to `claimstream.audit.v1` partition p, and the batch waits for their
   delivery (retried until it succeeds: a record must not be dropped);
3. dead letters go to every sink, retried likewise;
4. each changed partition's chain state is stored once in the table and its changelog
   partition p, and the checkpointer notes the new chain heads (a signed checkpoint of a
   partition is written outside Kafka at most every interval, and at shutdown);
5. the caller acks the batch; faust commits only acked offsets, after flushing the producer.

A crash between 2 and 5 makes the next owner recompute the same records from the last stored
state (exact copies on the topic, which `claimstream audit verify` counts as redelivery); a
crash after 4 leaves inputs whose offset is below the stored chain offset, which are skipped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import orjson

from claimstream.audit.chain import AuditChain
from claimstream.audit.checkpoint import Checkpointer
from claimstream.audit.intake import SOURCES, AuditIntake, Input, IntakeResult
from claimstream.audit.settings import WriterSettings
from claimstream.detection.sinks.base import Outputs, Sink
from claimstream.kafka.topology import Topology
from claimstream.observability.metrics import Metrics
from claimstream.stream.batches import Batching, each_batch
from claimstream.stream.codec import PartitionPointer
from claimstream.stream.publish import Out
from claimstream.stream.retry import write_until_done
from claimstream.stream.sinks import SinkSet
from claimstream.stream.tables import TableWriter, raw_topic, state_table

if TYPE_CHECKING:
    from claimstream.stream.publish import BatchPublisher

log = logging.getLogger(__name__)
AUDIT_TOPIC = "claimstream.audit.v1"
TABLE = "audit-chain"


@dataclass(slots=True)
class AuditCounters:
    batches: int = 0
    inputs: int = 0
    records: int = 0
    redelivered: int = 0
    dead_letters: int = 0

    def to_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class AuditWriter:
    """Runs a batch through the intake and hands its outputs and state over, in order."""

    def __init__(
        self,
        intake: AuditIntake,
        table: Any,
        *,
        publisher: BatchPublisher,
        sinks: Sequence[Sink],
        audit_topic: str,
        changelog_topic: str,
        pointer: PartitionPointer,
        metrics: Any = None,
        checkpoints: Checkpointer | None = None,
    ) -> None:
        self.intake = intake
        self.checkpoints = checkpoints
        self.table = table
        self.publisher = publisher
        self.sinks = tuple(sinks)
        self.audit_topic = audit_topic
        self.changelog_topic = changelog_topic
        self.pointer = pointer
        self.metrics = metrics
        self.counters = AuditCounters()
        self.stopping = False
        self.writer = TableWriter(table, changelog_topic, pointer, publisher)

    async def handle(self, inputs: list[Input]) -> IntakeResult:
        result = self.intake.process(inputs)
        if result.records:
            out: list[Out] = [
                (self.audit_topic, r["record_id"].encode(), orjson.dumps(r), p)
                for p, r in result.records
            ]
            await write_until_done(
                self.audit_topic, partial(self.publisher.send_and_wait, out), self._stopping
            )
        if result.dead_letters:
            outputs = Outputs(dead_letters=result.dead_letters)
            for sink in self.sinks:
                await write_until_done(
                    f"sink {sink.name}", partial(sink.write, outputs), self._stopping
                )
        await self.write(result.states)
        if self.checkpoints is not None:
            self.checkpoints.observe(result.states)
        c = self.counters
        c.batches += 1
        c.inputs += len(inputs)
        c.records += len(result.records)
        c.redelivered += result.redelivered
        c.dead_letters += len(result.dead_letters)
        if self.metrics is not None:
            for letter in result.dead_letters:
                self.metrics.dead_letter(letter.reason)
        return result

    def _stopping(self) -> bool:
        return self.stopping

    async def write(self, states: dict[int, Any]) -> None:
        """Store each partition's chain state and append it to changelog partition p."""
        await self.writer.write({str(p): (state, p) for p, state in states.items()})


def install_audit(
    app: Any,
    *,
    topology: Topology,
    publisher: BatchPublisher,
    sinks: SinkSet,
    metrics: Metrics,
    batching: Batching,
    keys: WriterSettings | None = None,
) -> AuditWriter:
    """Add the audit agent and its chain-state table to `app`; returns its writer.

    With `keys`, records carry an HMAC under the ring's current key and signed checkpoints go
    to the configured directory; without them (or in the unkeyed mode) the trail is unkeyed.
    """
    partitions = topology.default_partitions
    sources = tuple(SOURCES)
    for name in (*sources, AUDIT_TOPIC):
        spec = topology.topic(name)  # KeyError if topics.toml no longer declares it
        if spec.partitions != partitions:
            raise ValueError(
                f"{name} has {spec.partitions} partitions, the audit needs {partitions} "
                "(partition p of the audited topics is chained in audit partition p)"
            )
    table, changelog_name, _ = state_table(app, topology, TABLE)
    topic = raw_topic(app, *sources, partitions=partitions)
    key = keys.hmac.current if keys is not None and keys.hmac is not None else None
    checkpoints = keys.checkpointer() if keys is not None else None
    writer = AuditWriter(
        AuditIntake(lambda p: table.data.get(str(p)), chain=AuditChain(dedup_days=None, key=key)),
        table,
        publisher=publisher,
        sinks=sinks.sinks,
        audit_topic=AUDIT_TOPIC,
        changelog_topic=changelog_name,
        pointer=PartitionPointer(sources[0]),
        metrics=metrics,
        checkpoints=checkpoints,
    )

    async def stopping(sender: Any, *args: Any, **kwargs: Any) -> None:
        writer.stopping = True
        if checkpoints is not None:
            checkpoints.flush(force=True)

    app.on_before_shutdown.connect(cast(Any, stopping))

    async def handle(events: list[Any]) -> None:
        inputs = [
            Input(m.topic, m.partition, m.offset, m.value)
            for m in (event.message for event in events)
        ]
        started = time.perf_counter()
        await writer.handle(inputs)
        log.debug("audit batch of %d in %.3f s", len(inputs), time.perf_counter() - started)

    async def audit(stream: Any) -> None:
        await sinks.ensure_started()
        await each_batch(app, stream, batching, handle)

    app.agent(topic, name="claimstream.audit", concurrency=1)(audit)
    if checkpoints is not None and keys is not None:

        async def checkpoint_due() -> None:
            checkpoints.flush()  # partitions quiet since their last batch, once due

        app.timer(keys.interval)(checkpoint_due)
    return writer
