"""One batch of records of one key kind through the engine: the stream worker's hot path.

Kept free of faust so it is unit-tested with plain lists and benchmarked on its own. The agent
feeds it `Record`s (raw bytes plus where they came from), it reads each key's state once via
`load`, runs every event through `Engine.step`, and returns what the batch produced: outputs,
records to forward to a repartition topic, and each changed key's state once (the agent writes
those to the changelog-backed table once per batch, not once per event).

Every event is processed inside its own `try`: a bug or bad datum in one event dead-letters that
event (reason `processing_error`) and the batch goes on, so one poison message never stops
consumption; the engine's step is all or nothing, so the key's state is as before that event
and its next event is processed normally.

Event time (docs/time.md). Before the rules, an event is refused when its time is outside the
configured plausible range (`implausible_timestamp`) or further ahead of `clock` than the
allowed skew (`future_timestamp`; the clock is the engine's wall clock unless one is given).
Each processor tracks the progress of the input partitions it reads (`align.Progress`) and
sweeps idle keys against the least of them, which no single record can move. With
`align=True` (doctor, institution and trace-code processors, once the stream carries the
headers below) re-keyed events wait in a `PendingBuffer` and reach the rules in event-time
order once the watermark reported by the input partitions' owners has passed them, so these
rules see the same sequence as `replay` however the partitions were paced. A dispensing goes
to the trace-code repartition topic once per code it carries, as its code's small view
(`tracecodes.slim`), which is also what `replay` steps.

What travels on the repartition topics (`Forward.headers`, `marker`):

* a forwarded event carries `cs-source` (`family/partition` of the input partition it was read
  from), `cs-progress` (that partition's progress after it, POSIX seconds, when known) and,
  when it was read from the input topic itself, `cs-offset` (its offset there: the same
  input record forwarded again after a restart carries the same one, `Aligner.accept`);
* a marker is a record without key or value, with header `cs-marker` holding a JSON object
  `{"family/partition": [progress or null, idle], ...}` for the input partitions its sender
  owns; the stream sends one to every partition of the aligned repartition topics (doctor,
  institution, trace code) every few seconds (`marker`), whether or not anything else flows.
"""

from __future__ import annotations

import logging
import math
import traceback
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field

import orjson

from claimstream.detection.align import (
    DEFAULT_IDLE_SECONDS,
    Aligner,
    Held,
    PendingBuffer,
    Progress,
    Reported,
    sources,
)
from claimstream.detection.decode import decode_event
from claimstream.detection.engine import Clock, Engine, StepResult
from claimstream.detection.tracecodes import slim
from claimstream.model.events import FAMILY_OF, Event, StateKind
from claimstream.model.indicators import InstitutionMonth
from claimstream.model.outputs import Alert, Command, DeadLetter
from claimstream.model.partitioning import partition_for
from claimstream.model.records import Record, origin
from claimstream.model.rejection import PROCESSING_ERROR, Rejection
from claimstream.rules.base import State

log = logging.getLogger(__name__)

SOURCE_HEADER = "cs-source"
PROGRESS_HEADER = "cs-progress"
OFFSET_HEADER = "cs-offset"
MARKER_HEADER = "cs-marker"
_FAMILIES = tuple(sorted(set(FAMILY_OF.values())))


@dataclass(frozen=True, slots=True)
class Forward:
    """A record to re-publish, keyed by the id of `kind`, on that kind's repartition topic,
    with `headers` (the event's source partition and its progress, see the module doc)."""

    kind: StateKind
    key: str
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(slots=True)
class Emitted:
    """An alert with the arrival time of the record that completed it (for latency metrics)."""

    alert: Alert
    arrived_at: float
    event_ts: float


@dataclass(slots=True)
class BatchResult:
    alerts: list[Emitted] = field(default_factory=list)
    shadow_alerts: list[Emitted] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    forwards: list[Forward] = field(default_factory=list)
    #: institutions' closed months (`institution_indicators`), to publish keyed by peer group
    records: list[InstitutionMonth] = field(default_factory=list)
    #: key -> (state, partition): the states to write back, once each
    writes: dict[str, tuple[State, int]] = field(default_factory=dict)
    #: events by (topic, event_type) for the consumed counter; undecodable ones as "unknown"
    consumed: dict[tuple[str, str], int] = field(default_factory=dict)
    events: int = 0
    duplicates: int = 0
    #: `align=True`: events that began waiting for the watermark in this batch, and those
    #: released to the rules (what the stream persists to survive a restart: docs/time.md)
    held: list[Held] = field(default_factory=list)
    released: list[Held] = field(default_factory=list)


class KeyedProcessor:
    """Runs batches of one key kind (e.g. patient) against per-key states.

    `home_topics` are the topics whose records must already be keyed by this kind's id: a
    record there whose key is wrong or missing is not processed but forwarded (re-keyed) to
    the kind's repartition topic, so it is processed on the partition that owns its key.
    With `forwards=True` (the patient processor) each accepted event is also forwarded once,
    keyed by that kind's id, to the repartition topic of every other key kind the current
    engine needs (so a rule change that enables a doctor rule takes effect at once).

    `partitions` is the input topics' partition count (topics.toml): with it a re-keyed event
    without a `cs-source` header gets the source `replay` would give it. `align=True` holds
    re-keyed events until the watermark passes (doctor, institution, trace-code processors).
    """

    def __init__(
        self,
        engine: Engine,
        kind: StateKind,
        load: Callable[[str], State | None],
        *,
        home_topics: frozenset[str],
        forwards: bool = False,
        clock: Clock | None = None,
        partitions: int | None = None,
        align: bool = False,
        idle_after: float = DEFAULT_IDLE_SECONDS,
    ) -> None:
        self.engine = engine
        self.kind = kind
        self.load = load
        self.home_topics = home_topics
        self.forwards = forwards
        self.clock = clock
        self.partitions = partitions
        #: progress of the input partitions whose records this processor reads itself
        self.progress = Progress(idle_after)
        #: what the owners of the input partitions report (headers, markers), per channel
        self.reported = Reported()
        #: `align=True`: the partitions of the repartition topic this processor reads (`assign`)
        self.channels: frozenset[int] | None = None
        self.aligner: Aligner | None = Aligner(engine, kind, PendingBuffer()) if align else None
        #: per partition of this processor's input, the highest event time of an accepted
        #: record (for an aligned processor, of a released one): what the sanctions agent's
        #: detection watermark reads. Unlike `progress`, one record moves it, so the sanctions
        #: ladder's clock is only as safe as the future check keeps it (docs/time.md, limits)
        self.watermarks: dict[int, float] = {}
        #: where each key touched since start lives (its changelog partition)
        self.homes: dict[str, int] = {}
        #: what the last sweep's event-time timers found (`Rule.due`), with the states they
        #: changed: handed out by the next `process`, alerts and states together, so the
        #: state that no longer holds a timer is never stored without its alert
        self._swept = BatchResult()

    def now(self) -> float | None:
        clock = self.clock if self.clock is not None else self.engine.clock
        return None if clock is None else clock()

    # -- the batch ---------------------------------------------------------------------------

    def process(self, records: list[Record]) -> BatchResult:
        return finish(self.slices(records, len(records)))

    def slices(self, records: list[Record], size: int) -> Generator[None, None, BatchResult]:
        """`process`, `size` records at a time: the generator stops between slices and
        returns the batch's result, so the stream can answer checks meanwhile instead of
        waiting out a batch of thousands (docs/check.md, "Latency"). One result and one
        working set of states per batch, whatever the slices: the same result as `process`."""
        out, self._swept = self._swept, BatchResult()
        states: dict[str, State] = {key: state for key, (state, _) in out.writes.items()}
        now = self.now()
        size = max(1, size)
        for start in range(0, len(records), size):
            if start:
                yield
            for record in records[start : start + size]:
                try:
                    self._one(record, states, out, now)
                except Exception as exc:  # noqa: BLE001 - one bad event must not stop the stream
                    self._failed(record, exc, out)
        if self.aligner is not None:
            self._release(states, out)
        return out

    def _failed(self, record: Record, exc: Exception, out: BatchResult) -> None:
        log.exception("processing failed at %s", origin(record))
        detail = f"{type(exc).__name__}: {exc} | " + traceback.format_exc(limit=3)
        out.dead_letters.append(
            DeadLetter(PROCESSING_ERROR, detail[:2000], origin(record), record.value or b"")
        )

    def _one(
        self, record: Record, states: dict[str, State], out: BatchResult, now: float | None
    ) -> None:
        raw = record.value
        headers = dict(record.headers) if record.headers else None
        if headers is not None and MARKER_HEADER in headers:
            self._marker(headers[MARKER_HEADER], record.partition)
            return
        if raw is None:
            self._reject(record, out, Rejection("not_json", "the message has no value"))
            return
        decoded = decode_event(raw)
        if isinstance(decoded, Rejection):
            self._reject(record, out, decoded)
            return
        event: Event = decoded
        key = event.key(self.kind)
        if key is None:  # cannot happen for patient; a doctor-less event never reaches doctors
            return
        if record.topic in self.home_topics and record.key != key.encode():
            out.forwards.append(Forward(self.kind, key, raw))
            return
        engine = self.engine
        refused = engine.implausible(event)
        if refused is None and now is not None and self.aligner is None:
            refused = engine.in_future(event, now)  # judged once, where the event comes in
        if refused is not None:
            self._reject(record, out, refused)
            return
        counter_key = (record.topic, event.event_type)
        out.consumed[counter_key] = out.consumed.get(counter_key, 0) + 1
        out.events += 1
        if self.aligner is not None:
            self._aligned(record, headers, event, key, states, out)
            return
        partition = record.partition
        source = f"{FAMILY_OF[event.event_type]}/{partition}"
        self.progress.observe(source, event.ts, now if now is not None else 0.0)
        if event.ts > self.watermarks.get(partition, -math.inf):
            self.watermarks[partition] = event.ts
        # the input record's own offset travels with its forwards (not one of a record re-keyed
        # through the kind's repartition topic: that is another topic's offset)
        read = record.offset if record.topic in self.home_topics else None
        if not engine.routes(self.kind, event):
            self._forward_others(event, raw, source, read, out)
            return
        state = self._state(key, states)
        if _applied(state, record):
            out.duplicates += 1
            return
        result = engine.step(self.kind, state, event)
        if result.duplicate:
            out.duplicates += 1
            return
        if result.changed:
            state.setdefault("off", {})[record.topic] = record.offset
        # Late for the patient's rules is not late for its doctor's or institution's: they judge
        # it on their own (per key and input partition), so one event dated far ahead cannot,
        # by making a patient's later events late, keep them from anyone else's rules.
        self._forward_others(event, raw, source, read, out)
        if result.rejection is not None:
            self._reject(record, out, result.rejection, counted=True)
            return
        self._emit(result, key, state, record, event, out, record.partition)

    def _state(self, key: str, states: dict[str, State]) -> State:
        state = states.get(key)
        if state is None:
            state = self.load(key)
            if state is None:
                state = self.engine.new_state()
            states[key] = state
        return state

    def _emit(
        self,
        result: StepResult,
        key: str,
        state: State,
        record: Record,
        event: Event,
        out: BatchResult,
        partition: int,
    ) -> None:
        if result.changed:
            out.writes[key] = (state, partition)
            self.homes[key] = partition
        arrived = record.arrived_at
        for alert in result.alerts:
            out.alerts.append(Emitted(alert, arrived, event.ts))
        for alert in result.shadow_alerts:
            out.shadow_alerts.append(Emitted(alert, arrived, event.ts))
        out.commands.extend(result.commands)
        if result.records:
            out.records.extend(result.records)

    def _forward_others(
        self, event: Event, raw: bytes, source: str, read: int | None, out: BatchResult
    ) -> None:
        if not self.forwards:
            return
        kinds = self.engine.kinds_for(event)  # the kinds whose rules read it (`Engine.routes`)
        if not kinds or (len(kinds) == 1 and kinds[0] == self.kind):
            return
        headers: tuple[tuple[str, bytes], ...] = ((SOURCE_HEADER, source.encode()),)
        progress = self.progress.progress.get(source)
        if progress is not None:
            headers += ((PROGRESS_HEADER, repr(progress).encode()),)
        if read is not None:
            headers += ((OFFSET_HEADER, str(read).encode()),)
        for kind in kinds:
            if kind == self.kind:
                continue
            if kind == "trace_code":  # one small record per code (`tracecodes.slim`)
                for code in event.keys(kind):
                    value = orjson.dumps(slim(event, code))
                    out.forwards.append(Forward(kind, code, value, headers))
                continue
            other = event.key(kind)
            if other is not None:
                out.forwards.append(Forward(kind, other, raw, headers))

    def _reject(
        self, record: Record, out: BatchResult, rejection: Rejection, *, counted: bool = False
    ) -> None:
        if not counted:
            key = (record.topic, "unknown")
            out.consumed[key] = out.consumed.get(key, 0) + 1
        out.dead_letters.append(DeadLetter.of(rejection, record.value or b"", origin(record)))

    # -- alignment (doctor, institution and trace-code processors) ----------------------------

    def marker(self, partitions: Iterable[int]) -> tuple[tuple[str, bytes], ...]:
        """The headers of a marker reporting the input partitions `partitions` (those this
        worker owns) of every family: what the stream sends, on a timer, to every partition of
        the aligned repartition topics."""
        now = self.now()
        names = [f"{family}/{p}" for p in sorted(set(partitions)) for family in _FAMILIES]
        report = self.progress.report(names, now if now is not None else 0.0)
        body = {name: [mark, idle] for name, (mark, idle) in report.items()}
        return ((MARKER_HEADER, orjson.dumps(body)),)

    def assign(self, partitions: Iterable[int]) -> None:
        """The partitions of the repartition topic this processor now reads (on every
        rebalance): the watermark is the least over them, so nothing is released until each
        has reported every source."""
        self.channels = frozenset(partitions)

    def _marker(self, value: bytes, channel: int) -> None:
        try:
            body = orjson.loads(value)
        except orjson.JSONDecodeError:
            log.warning("a watermark marker that is not JSON was ignored")
            return
        if not isinstance(body, dict):
            return
        for name, report in body.items():
            if (
                isinstance(report, list)
                and len(report) == 2
                and (report[0] is None or isinstance(report[0], int | float))
                and isinstance(report[1], bool)
            ):
                self.reported.set(channel, name, report[0], idle=report[1])

    def _aligned(
        self,
        record: Record,
        headers: dict[str, bytes] | None,
        event: Event,
        key: str,
        states: dict[str, State],
        out: BatchResult,
    ) -> None:
        assert self.aligner is not None
        source = self._source(event, headers)
        if headers is not None and PROGRESS_HEADER in headers:
            try:
                progress: float | None = float(headers[PROGRESS_HEADER])
            except ValueError:
                progress = None
            self.reported.set(record.partition, source, progress, idle=False)
        else:
            self.reported.set(record.partition, source, None, idle=False)
        read: int | None = None
        if headers is not None and OFFSET_HEADER in headers:
            try:
                read = int(headers[OFFSET_HEADER])
            except ValueError:
                read = None
        state = self._state(key, states)
        outcome = self.aligner.accept(
            state, key, event, source, record, record.partition, record.offset, read
        )
        if outcome is None:
            return
        out.writes[key] = (state, record.partition)  # its lateness marks changed at least
        self.homes[key] = record.partition
        if isinstance(outcome, Held):
            out.held.append(outcome)
            return
        if outcome.duplicate:
            out.duplicates += 1
        elif outcome.rejection is not None:
            self._reject(record, out, outcome.rejection, counted=True)
        else:
            self._emit(outcome, key, state, record, event, out, record.partition)

    def _source(self, event: Event, headers: dict[str, bytes] | None) -> str:
        if headers is not None and SOURCE_HEADER in headers:
            return headers[SOURCE_HEADER].decode(errors="replace")
        family = FAMILY_OF[event.event_type]
        if self.partitions is None:
            return f"{family}/?"
        return f"{family}/{partition_for(event.patient_id, self.partitions)}"

    def watermark(self) -> float | None:
        """The reported watermark of the sources this kind's rules read (None: not yet)."""
        if self.aligner is None or self.partitions is None or self.channels is None:
            return None
        names = sources(self.partitions, self.aligner.families())
        return self.reported.watermark(self.channels, names)

    def _release(self, states: dict[str, State], out: BatchResult) -> None:
        assert self.aligner is not None
        if not self.aligner.buffer:
            return
        mark = self.watermark()
        if mark is None:
            return
        before = mark - self.engine.slack if mark != math.inf else math.inf

        def state_of(key: str) -> State:
            return self._state(key, states)

        for held, state, outcome in self.aligner.release(before, state_of):
            out.released.append(held)
            record: Record = held.tag
            if isinstance(outcome, Exception):
                self._failed(record, outcome, out)
                continue
            out.writes[held.key] = (state, held.home)
            self.homes[held.key] = held.home
            if held.ts > self.watermarks.get(held.home, -math.inf):
                self.watermarks[held.home] = held.ts
            if outcome.duplicate:
                out.duplicates += 1
            elif outcome.rejection is not None:
                self._reject(record, out, outcome.rejection, counted=True)
            else:
                self._emit(outcome, held.key, state, record, held.event, out, held.home)

    def restore(self, held: Iterable[Held]) -> None:
        """Put back events that were waiting when the worker stopped (from the stream's store)."""
        if self.aligner is not None:
            for entry in held:
                self.aligner.buffer.add(entry)

    def forget(self, keep: Callable[[int], bool]) -> list[Held]:
        """Drop the waiting events of partitions no longer assigned (`keep(partition)` False)."""
        if self.aligner is None:
            return []
        return self.aligner.buffer.drop(lambda held: keep(held.home))

    # -- idle keys ---------------------------------------------------------------------------

    def sweep_mark(self, partition: int) -> float | None:
        """What the keys of `partition` expire against: for the patient processor the least
        progress of that partition's four input topics (the only sources of its keys), for an
        aligned processor the reported watermark of every input partition."""
        if self.aligner is not None:
            if self.partitions is None or self.channels is None:
                return None
            return self.reported.floor(self.channels, sources(self.partitions))
        now = self.now()
        names = [f"{family}/{partition}" for family in _FAMILIES]
        return self.progress.floor(names, now if now is not None else 0.0)

    def sweep(
        self,
        keys: list[str],
        load: Callable[[str], State | None],
        partition_of: Callable[[str], int],
    ) -> tuple[dict[str, tuple[State, int]], dict[str, int]]:
        """Expire `keys` against their partition's watermark (`sweep_mark`).

        Returns (states to write back because they shrank, keys to delete with their
        partition). Keys of partitions without a watermark yet are left alone: without event
        time there is nothing to expire against.

        A key whose event-time timers fell due (`Rule.due`: alerts, records) is neither written
        nor deleted here: its alerts and state come out of the next `process`, together, so a
        stop in between leaves the timer in the stored state and the next sweep finds it
        again (under the same alert id).
        """
        writes: dict[str, tuple[State, int]] = {}
        deletes: dict[str, int] = {}
        engine = self.engine
        marks: dict[int, float | None] = {}
        for key in keys:
            partition = self.homes.get(key)
            if partition is None:
                partition = partition_of(key)
            if partition not in marks:
                marks[partition] = self.sweep_mark(partition)
            wm = marks[partition]
            if wm is None:
                continue
            state = load(key)
            if state is None:
                continue
            before = len(state["seen"]) + engine.size(state) + len(state.get("src", ()))
            found = StepResult()
            empty = engine.sweep(state, wm, found)
            if found.alerts or found.shadow_alerts or found.records:
                swept = self._swept
                now = self.now() or 0.0  # "arrived" when the sweep found it
                swept.alerts += [Emitted(a, now, wm) for a in found.alerts]
                swept.shadow_alerts += [Emitted(a, now, wm) for a in found.shadow_alerts]
                swept.records += found.records
                swept.writes[key] = (state, partition)
                self.homes[key] = partition
            elif empty:
                deletes[key] = partition
                self.homes.pop(key, None)
            elif len(state["seen"]) + engine.size(state) + len(state.get("src", ())) != before:
                writes[key] = (state, partition)
        return writes, deletes


def finish(steps: Generator[None, None, BatchResult]) -> BatchResult:
    """Run `KeyedProcessor.slices` to its end, without stopping: its batch's result."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            result: BatchResult = done.value
            return result


def _applied(state: State, record: Record) -> bool:
    """Whether `record` was applied to this key's stored state already: the state has taken a
    record at or after its offset in its topic (`"off"`, per topic; a key's records of one topic
    come from one partition, in order). After a restart the input is read again from the last
    commit while the state may be days of event time ahead (a backlog) and its dedup may have
    forgotten those ids: without this they would be refused as late instead of known as
    copies."""
    applied = state.get("off")
    return applied is not None and record.offset <= applied.get(record.topic, -1)
