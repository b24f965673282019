"""`SanctionsRuntime`: what the three sanctions agents share, and the read side the API asks.

Per batch, as in `Pipeline`: process (pure; a bad record is dead-lettered with its origin and
the batch goes on), publish forwards and notices and wait for them, hand commands and dead
letters to the sinks (retried until they succeed), then write each changed key's state once,
batched per changelog partition; the batch is acked last. A timer ticks the subjects of the
assigned partitions forward in event time (freeze expiry -> UNFREEZE, ageing out), to the
detection's low watermark (see `SanctionsRuntime.tick_watermark`), under the same lock as the
subject agent so the two never interleave on a state.

The detection's low watermark is as robust as detection's own (docs/time.md §7 item 6): each
input partition counts with its progress confirmed by two consecutive records, so no single
record (one dated 2099, or a day ahead) moves the ladder's clock while its partition is active;
once it has gone quiet (nothing for `idle` seconds and read to its end) its latest record
counts, so a single event past local midnight still ends the day once nothing follows it. The
doctor and institution agents hold the clock at the point up to which they have released their
events while any event waits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import orjson

from claimstream.detection.sinks.base import Outputs
from claimstream.model.partitioning import partition_for
from claimstream.model.records import Record
from claimstream.observability.metrics import Metrics
from claimstream.sanctions import view as answers
from claimstream.sanctions.ladder import Escalation
from claimstream.sanctions.processor import (
    ACTIONS,
    ALERTS,
    NOT_AN_ALERT,
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
from claimstream.sanctions.signatures import REFUSED, ActionVerifier
from claimstream.stream.assignment import owned_partitions
from claimstream.stream.detection.markers import ClockMark
from claimstream.stream.sinks import SinkSet
from claimstream.stream.tables import TableWriter

if TYPE_CHECKING:
    from claimstream.stream.publish import BatchPublisher, Out

#: the sanctions tables: alert id -> alert and its review; `kind:id` -> the subject's state
ALERT_INDEX = "alert-index"
SUBJECT_STATE = "state-subject"
#: what the detection's inputs say of event time (`stream.detection.agents.Detection.watermarks`)
Watermarks = Callable[[], Iterable[ClockMark]]

log = logging.getLogger(__name__)


class SanctionsRuntime:
    """The agents' shared parts; also the `SanctionsView` the API reads.

    `app` is asked only for its consumer (assignment, high watermarks, committed offsets) and
    whether it is rebalancing or recovering; `watermarks` are the detection agents' progress,
    which the ticks follow, and `detection_topics` (topic -> key kind) the topics they read.
    """

    def __init__(
        self,
        app: Any,
        publisher: BatchPublisher,
        escalation: Escalation,
        subject_table: Any,
        index_table: Any,
        alert_partitions: int,
        subject_partitions: int,
        *,
        sinks: SinkSet,
        metrics: Metrics,
        watermarks: Watermarks,
        detection_topics: Mapping[str, str],
        verifier: ActionVerifier,
        tick_delay: float = 60.0,
        tick_interval: float = 10.0,
        alerts_per_subject: int = 1000,
    ) -> None:
        self.app = app
        self.publisher = publisher
        self.escalation = escalation
        self.table = subject_table
        self.index_table = index_table
        self.alert_partitions = alert_partitions
        self.subject_partitions = subject_partitions
        self.sinks = sinks
        self.metrics = metrics
        self.watermarks = watermarks
        self.detection_topics = dict(detection_topics)
        self.tick_delay = tick_delay
        self.route = RouteProcessor()
        horizon = max(escalation.keep_seconds(k) for k in ("patient", "doctor", "institution"))
        verify = verifier.check
        self.index = IndexProcessor(escalation, _copying(index_table), horizon, verify=verify)
        self.subjects = SubjectProcessor(
            escalation, _copying(subject_table), alerts_per_subject, verify=verify
        )
        self.lock = asyncio.Lock()
        #: (topic, partition) -> next offset to read, for "has the sanctions flow caught up"
        self.positions: dict[tuple[str, int], int] = {}
        self._tick_cursor: list[str] = []
        self._index_cursor: list[str] = []
        self._last_index_sweep = time.monotonic()
        #: the event time the subjects were last ticked to
        self.ticked_to: float | None = None
        #: (topic, partition) -> (its latest record's event time, wall time that last moved)
        self._detection: dict[tuple[str, int], tuple[float | None, float]] = {}
        self._previous_low: float | None = None
        #: wall seconds after which a detection partition that has not moved is quiet
        self.idle = max(3.0, 3 * tick_interval)

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

    def alert(self, alert_id: str) -> dict[str, Any] | None:
        if alert_id.startswith(NOT_AN_ALERT):
            return None  # a partition's review counts or a feedback's mark, not an alert
        entry: dict[str, Any] | None = self.index_table.data.get(alert_id)
        return None if entry is None else indexed_alert(entry)

    # -- event time -------------------------------------------------------------------------

    def watermark(self) -> float | None:
        """Event time "now" of the subjects: the time they were last ticked to (answers use
        it, or the subject's own later time)."""
        return self.ticked_to

    def detection_low(self, wall: float) -> float | None:
        """The detection's low watermark (None: nothing can be said yet).

        The least confirmed progress among the worker's active detection inputs: an input
        partition is active until it has not moved for `idle` seconds and is read to its end;
        an aligned kind's partition while events wait or it has records to read. When none is
        active (nothing in flight), the greatest latest-record time of all.
        """
        seen = self._detection
        behind = self._detection_backlog()
        marks = list(self.watermarks())
        if not marks:
            return None
        active: list[float | None] = []
        lasts: list[float] = []
        for mark in marks:
            key = (mark.topic, mark.partition)
            if mark.waiting is None:
                before = seen.get(key)
                if before is None or before[0] != mark.last:
                    seen[key] = before = (mark.last, wall)
                holds = wall - before[1] <= self.idle or key in behind
            else:
                holds = mark.waiting or key in behind
            if holds:
                active.append(mark.confirmed)
            if mark.last is not None:
                lasts.append(mark.last)
        if active:
            known = [m for m in active if m is not None]
            return min(known) if len(known) == len(active) else None
        return max(lasts) if lasts else None

    def _detection_backlog(self) -> set[tuple[str, int]]:
        """(topic, partition) of the detection inputs not yet processed and committed to the
        end of what the consumer knows is there."""
        consumer = self.app.consumer
        committed = getattr(consumer, "_committed_offset", {})
        topics = self.detection_topics
        behind: set[tuple[str, int]] = set()
        for tp in consumer.assignment():
            if tp.topic not in topics:
                continue
            try:
                highwater = consumer.highwater(tp)
            except Exception:  # noqa: BLE001, S112 - revoked meanwhile
                continue
            if highwater is not None and (committed.get(tp) or 0) < highwater:
                behind.add((tp.topic, tp.partition))
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
        return partition_for(key, self.alert_partitions)

    def subject_partition(self, key: str) -> int:
        """Partition of a state-subject key (`kind:id`) in the "subject" group."""
        return partition_for(key, self.subject_partitions)

    def assigned(self, topic: str) -> set[int]:
        return owned_partitions(self.app, topic) or set()

    # -- outputs ----------------------------------------------------------------------------

    async def emit(self, result: Result, writer: TableWriter | None) -> None:
        """Forwards and notices (awaited), commands and dead letters (sinks), then state."""
        publish: list[Out] = [(t, k.encode(), v, None) for t, k, v in result.forwards]
        publish += [(NOTICES, k.encode(), orjson.dumps(n), None) for k, n in result.notices]
        if publish:
            await self.publisher.send_and_wait(publish)
        outputs = Outputs(commands=result.commands, dead_letters=result.dead_letters)
        if outputs:
            await self.sinks.write(outputs)
        if writer is not None:
            await writer.write(result.writes, result.deletes)
        metrics = self.metrics
        for letter in result.dead_letters:
            metrics.dead_letter(letter.reason)
            if letter.reason in REFUSED:
                metrics.action_refused(letter.reason)
        for command in result.commands:
            metrics.command_issued(command)
        for rule, verdict in result.verdicts:
            metrics.review_recorded(rule, verdict)
        for rule, handling in result.overrides:
            metrics.check_override(rule, handling)
        for _key, notice in result.notices:
            metrics.sanction_notice(str(notice.get("schema", "")))

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
            await self.sinks.ensure_started()
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
        self.metrics.set_reviewed_alerts(counts)


def indexed_alert(entry: dict[str, Any]) -> dict[str, Any]:
    """An `alert-index` entry as the API shows an alert: alert.v1 plus its review `status`
    (open until a verdict, then confirmed or false_positive) and `remediated`, the shape of a
    subject's alerts."""
    return {
        **entry["alert"],
        "status": entry.get("verdict") or "open",
        "remediated": bool(entry.get("remediated")),
    }


def _copying(table: Any) -> Callable[[str], Any]:
    """A loader that hands the processors a copy: the stored state changes only when a batch's
    outputs are out and its writes are made, so a batch that failed half-way and is processed
    again meets the state it met the first time (the memory store returns the stored object
    itself)."""

    def load(key: str) -> Any:
        value = table.data.get(key)
        return None if value is None else orjson.loads(orjson.dumps(value))

    return load
