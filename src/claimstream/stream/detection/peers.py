"""`install_peers`: the peer-group agent (issue #15), the stream's half of `detection.peers`.

The institution pipeline publishes each institution's closed month on
`claimstream.indicators.v1`, keyed by peer group (`pipeline.py`, step 3). This agent reads that
topic; partition p of it and of the `peer-groups` table's changelog form the co-partition group
"peers", so the worker that reads a group's records is the only writer of its state: the group's
last `months_kept` months and the latest month compared. Each record goes through the same
`PeerStage` as `replay`'s (the engine in force, so `claimstream rules set peer_outlier ...`
applies from the next batch); its alerts go to every sink, like detection's (alerts topic,
registry, the sanctions agents behind the alerts topic).

Per batch, in the at-least-once order of `Pipeline`: the stage over the records (pure), the
alerts to the sinks (retried until they succeed), then each changed group's state written once
to the table and its changelog partition; the batch is acked after that. A crash before the
state is written replays the batch: a redelivered record of a month still open replaces itself,
one of a month closed meanwhile is recognised as the same record, and the alerts have
deterministic ids. A record that is not an `InstitutionMonth` is dead-lettered
(`processing_error`) and counted `invalid`.

The benchmark endpoint reads the table through `PeerGroups` (`peer_group`, `months`: the
`MonthsSource` of `detection.benchmark`) once it is recovered. It sees the groups of the
indicators partitions this worker is assigned (whether faust's standby copies,
`CLAIMSTREAM_STANDBY_REPLICAS`, are readable this way was not checked); with several workers the
route forwards a read to the worker owning the institution's group when the reference data
places the institution (`stream/http/benchmark.py`).

No institution id or group appears in a log line or a metric label: the metrics are
`claimstream_indicator_records_total{outcome}`, `claimstream_peer_groups_evaluated_total` and
`claimstream_peer_outliers_total{indicator}`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson

from claimstream.detection.engine import Engine
from claimstream.detection.peers import PeerStage, closed_through, stored_months
from claimstream.detection.sinks.base import Outputs, Sink
from claimstream.kafka.topology import Topology
from claimstream.model.indicators import InstitutionMonth
from claimstream.model.outputs import DeadLetter
from claimstream.model.records import Record, origin
from claimstream.model.rejection import PROCESSING_ERROR
from claimstream.observability.metrics import Metrics
from claimstream.rules.base import State
from claimstream.stream.batches import Batching, each_batch, records_of
from claimstream.stream.codec import PartitionPointer
from claimstream.stream.publish import BatchPublisher
from claimstream.stream.retry import write_until_done
from claimstream.stream.sinks import SinkSet
from claimstream.stream.tables import TableWriter, raw_topic, state_table

log = logging.getLogger(__name__)
INDICATORS_TOPIC = "claimstream.indicators.v1"
TABLE = "peer-groups"


@dataclass(slots=True)
class PeerCounters:
    """Running totals for `/status`."""

    batches: int = 0
    records: int = 0
    stored: int = 0
    duplicate: int = 0
    late: int = 0
    invalid: int = 0
    months_compared: int = 0
    alerts: int = 0

    def to_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class PeerGroups:
    """The agent's work on one batch, and the read the benchmark endpoint uses (`months`)."""

    def __init__(
        self,
        table: Any,
        engine: Callable[[], Engine],
        *,
        sinks: Sequence[Sink],
        publisher: BatchPublisher,
        changelog_topic: str,
        pointer: PartitionPointer,
        metrics: Metrics | None = None,
    ) -> None:
        self.table = table
        self.engine = engine
        self.sinks = tuple(sinks)
        self.writer = TableWriter(table, changelog_topic, pointer, publisher)
        self.metrics = metrics
        self.counters = PeerCounters()
        self.stopping = False
        #: True once faust has recovered the table after the first assignment: the benchmark
        #: answers 503 before (`stream/http/benchmark.py`)
        self.ready = False

    # -- the benchmark's read (`detection.benchmark.MonthsSource`) -----------------------------

    def peer_group(self, institution_id: str) -> str | None:
        """The group of the institution's latest month held here (None: none held). A scan of
        the groups this worker holds: a few hundred at most (levels times regions)."""
        best: tuple[str, str] | None = None
        for group, state in list(self.table.data.items()):
            for label, members in (state or {}).get("months", {}).items():
                if institution_id in members and (best is None or label > best[0]):
                    best = (label, group)
        return None if best is None else best[1]

    def months(self, peer_group: str) -> list[InstitutionMonth]:
        """The group's stored institution months, by month then institution (the last 13; the
        ones after `closed_through` may still be filling). Empty when this worker does not
        hold the group: its partition of the indicators topic is another worker's."""
        return stored_months(self.table.data.get(peer_group))

    def closed_through(self, peer_group: str) -> str | None:
        """The latest month compared for the group (None: none yet, or not held here)."""
        return closed_through(self.table.data.get(peer_group))

    # -- the batch -----------------------------------------------------------------------------

    async def handle(self, records: list[Record]) -> None:
        stage = PeerStage(self.engine())
        states: dict[str, tuple[State, int]] = {}
        outputs = Outputs()
        evaluated = 0
        c = self.counters
        for record in records:
            c.records += 1
            try:
                month = InstitutionMonth.from_dict(orjson.loads(record.value or b""))
            except (ValueError, KeyError, TypeError) as exc:
                self._invalid(record, exc, outputs)
                continue
            key = month.peer_group
            held = states.get(key)
            if held is None:
                stored = self.table.data.get(key)
                # a copy: the stored object stays as it was until the batch's write
                state = stage.new_state() if stored is None else orjson.loads(orjson.dumps(stored))
            else:
                state = held[0]
            step = stage.on_record(state, month)
            self._count(step.outcome)
            if step.outcome == "stored":
                states[key] = (state, record.partition)
            evaluated += step.evaluated
            outputs.alerts += step.result.alerts
            outputs.shadow_alerts += step.result.shadow_alerts
        if outputs:
            for sink in self.sinks:
                await write_until_done(
                    f"sink {sink.name}", partial(sink.write, outputs), self._stopping
                )
        if states:
            await self.writer.write(states)
        c.batches += 1
        c.months_compared += evaluated
        c.alerts += len(outputs.alerts) + len(outputs.shadow_alerts)
        m = self.metrics
        if m is None:
            return
        if evaluated:
            m.peer_groups_compared(evaluated)
        now = time.time()
        for alert in outputs.alerts:
            m.alert_emitted(alert, "enforce", emitted_at=now)
            m.violation_amount(alert.rule, alert.amount, "stream")
            m.peer_outlier(str(alert.details.get("indicator")))
        for alert in outputs.shadow_alerts:
            m.alert_emitted(alert, "shadow", emitted_at=now)
            m.peer_outlier(str(alert.details.get("indicator")))
        for letter in outputs.dead_letters:
            m.dead_letter(letter.reason)

    def _count(self, outcome: str) -> None:
        c = self.counters
        setattr(c, outcome, getattr(c, outcome) + 1)
        if self.metrics is not None:
            self.metrics.indicator_record(outcome)

    def _invalid(self, record: Record, exc: Exception, outputs: Outputs) -> None:
        log.warning("a record of %s is not an institution month: %s", record.topic, type(exc))
        detail = f"not an institution month record: {type(exc).__name__}: {exc}"[:2000]
        outputs.dead_letters.append(
            DeadLetter(PROCESSING_ERROR, detail, origin(record), record.value or b"")
        )
        self._count("invalid")

    def _stopping(self) -> bool:
        return self.stopping


def install_peers(
    app: Any,
    *,
    topology: Topology,
    engine: Callable[[], Engine],
    sinks: SinkSet,
    publisher: BatchPublisher,
    metrics: Metrics,
    batching: Batching,
) -> PeerGroups:
    """Add the peer-group agent and its `peer-groups` table to `app`."""
    spec = topology.topic(INDICATORS_TOPIC)  # KeyError if topics.toml no longer declares it
    table, changelog, partitions = state_table(app, topology, TABLE)
    if spec.partitions != partitions:
        raise ValueError(
            f"{INDICATORS_TOPIC} has {spec.partitions} partitions and {changelog} {partitions}: "
            "partition p of both must hold the same peer groups (co-partition group 'peers')"
        )
    peers = PeerGroups(
        table,
        engine,
        sinks=sinks.sinks,
        publisher=publisher,
        changelog_topic=changelog,
        pointer=PartitionPointer(INDICATORS_TOPIC),
        metrics=metrics,
    )

    async def handle(events: list[Any]) -> None:
        await peers.handle(records_of(events))

    async def compare(stream: Any) -> None:
        await sinks.ensure_started()
        await each_batch(app, stream, batching, handle)

    async def recovered() -> None:
        peers.ready = True

    table.on_recover(recovered)
    topic = raw_topic(app, INDICATORS_TOPIC, partitions=spec.partitions)
    app.agent(topic, name="claimstream.peers", concurrency=1)(compare)
    return peers
