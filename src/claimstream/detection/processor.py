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

Before the rules, an event is refused when its time is outside the configured plausible range
(`implausible_timestamp`) or further ahead of `clock` than the allowed skew
(`future_timestamp`; the clock is the engine's wall clock unless one is given). `replay` has
no "now" and never makes the second check, so replaying history keeps working.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from claimstream.detection.decode import decode_event
from claimstream.detection.engine import Clock, Engine
from claimstream.model.events import Event, KeyKind
from claimstream.model.outputs import Alert, Command, DeadLetter
from claimstream.model.records import Record, origin
from claimstream.model.rejection import PROCESSING_ERROR, Rejection
from claimstream.rules.base import State

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Forward:
    """A record to re-publish, keyed by the id of `kind`, on that kind's repartition topic."""

    kind: KeyKind
    key: str
    value: bytes


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
    #: key -> (state, partition): the states to write back, once each
    writes: dict[str, tuple[State, int]] = field(default_factory=dict)
    #: events by (topic, event_type) for the consumed counter; undecodable ones as "unknown"
    consumed: dict[tuple[str, str], int] = field(default_factory=dict)
    events: int = 0
    duplicates: int = 0


class KeyedProcessor:
    """Runs batches of one key kind (e.g. patient) against per-key states.

    `home_topics` are the topics whose records must already be keyed by this kind's id: a
    record there whose key is wrong or missing is not processed but forwarded (re-keyed) to
    the kind's repartition topic, so it is processed on the partition that owns its key.
    With `forwards=True` (the patient processor) each accepted event is also forwarded once,
    keyed by that kind's id, to the repartition topic of every other key kind the current
    engine needs (so a rule change that enables a doctor rule takes effect at once).
    """

    def __init__(
        self,
        engine: Engine,
        kind: KeyKind,
        load: Callable[[str], State | None],
        *,
        home_topics: frozenset[str],
        forwards: bool = False,
        clock: Clock | None = None,
    ) -> None:
        self.engine = engine
        self.kind = kind
        self.load = load
        self.home_topics = home_topics
        self.forwards = forwards
        self.clock = clock
        #: highest event time seen per partition: the watermark idle keys are swept against
        self.watermarks: dict[int, float] = {}
        #: where each key touched since start lives (its changelog partition)
        self.homes: dict[str, int] = {}

    def now(self) -> float:
        return self.clock() if self.clock is not None else self.engine.clock()

    def process(self, records: list[Record]) -> BatchResult:
        out = BatchResult()
        states: dict[str, State] = {}
        now = self.now()
        for record in records:
            try:
                self._one(record, states, out, now)
            except Exception as exc:  # one bad event must not stop the stream
                log.exception("processing failed at %s", origin(record))
                detail = f"{type(exc).__name__}: {exc} | " + traceback.format_exc(limit=3)
                out.dead_letters.append(
                    DeadLetter(PROCESSING_ERROR, detail[:2000], origin(record), record.value or b"")
                )
        return out

    def _one(self, record: Record, states: dict[str, State], out: BatchResult, now: float) -> None:
        raw = record.value
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
        refused = self.engine.implausible(event) or self.engine.in_future(event, now)
        if refused is not None:
            self._reject(record, out, refused)
            return
        counter_key = (record.topic, event.event_type)
        out.consumed[counter_key] = out.consumed.get(counter_key, 0) + 1
        out.events += 1
        partition = record.partition
        wm = self.watermarks.get(partition)
        if wm is None or event.ts > wm:
            self.watermarks[partition] = event.ts
        engine = self.engine
        if not engine.routes(self.kind, event):
            self._forward_others(event, raw, out)
            return
        state = states.get(key)
        if state is None:
            state = self.load(key)
            if state is None:
                state = engine.new_state()
            states[key] = state
        result = engine.step(self.kind, state, event)
        if result.duplicate:
            out.duplicates += 1
            return
        if result.rejection is not None:
            self._reject(record, out, result.rejection, counted=True)
            return
        self._forward_others(event, raw, out)
        if result.changed:
            out.writes[key] = (state, partition)
            self.homes[key] = partition
        arrived = record.arrived_at
        for alert in result.alerts:
            out.alerts.append(Emitted(alert, arrived, event.ts))
        for alert in result.shadow_alerts:
            out.shadow_alerts.append(Emitted(alert, arrived, event.ts))
        out.commands.extend(result.commands)

    def _forward_others(self, event: Event, raw: bytes, out: BatchResult) -> None:
        if not self.forwards:
            return
        engine = self.engine
        for kind in engine.key_kinds:
            if kind == self.kind:
                continue
            other = event.key(kind)
            if other is not None and engine.routes(kind, event):
                out.forwards.append(Forward(kind, other, raw))

    def _reject(
        self, record: Record, out: BatchResult, rejection: Rejection, *, counted: bool = False
    ) -> None:
        if not counted:
            key = (record.topic, "unknown")
            out.consumed[key] = out.consumed.get(key, 0) + 1
        out.dead_letters.append(DeadLetter.of(rejection, record.value or b"", origin(record)))

    def sweep(
        self,
        keys: list[str],
        load: Callable[[str], State | None],
        partition_of: Callable[[str], int],
    ) -> tuple[dict[str, tuple[State, int]], dict[str, int]]:
        """Expire `keys` against their partition's watermark.

        Returns (states to write back because they shrank, keys to delete with their
        partition). Keys of partitions with no watermark yet (nothing consumed since start)
        are left alone: without event time there is nothing to expire against.
        """
        writes: dict[str, tuple[State, int]] = {}
        deletes: dict[str, int] = {}
        engine = self.engine
        for key in keys:
            partition = self.homes.get(key)
            if partition is None:
                partition = partition_of(key)
            wm = self.watermarks.get(partition)
            if wm is None:
                continue
            state = load(key)
            if state is None:
                continue
            before = len(state["seen"]) + engine.size(state)
            if engine.sweep(state, wm):
                deletes[key] = partition
                self.homes.pop(key, None)
            elif len(state["seen"]) + engine.size(state) != before:
                writes[key] = (state, partition)
        return writes, deletes
