"""In-memory driver of the engine over one stream of events: `replay`, tests, the benchmark.

Two ways to drive it:

* `feed(event, tag)` / `finish()`: what the worker does, in one process (`replay`). Patient
  rules see each event at once; doctor, institution and trace-code rules (a dispensing's view
  per code, `tracecodes`) see each key's events in event-time order once the watermark of the
  input partitions has passed them (`align`), exactly as the worker's do whatever the pacing;
  idle keys are swept against that watermark, which no single record can drag forward. Needs
  the input partition count (`partitions`, from topics.toml), since an event's partition is
  part of how its time is judged.
* `process(event)`: every rule sees every event as it comes, and idle keys are swept against
  the highest event time seen. For a rule's tests and for rule development on a hand-built
  timeline (`claimstream.testing.run`), where "in the order given" is the point; one event
  dated far ahead expires everyone's state here, which is why `replay` does not use it.

Both refuse an event outside the configured plausible range (`implausible_timestamp`). Keys'
states are kept in a dict; a sweep every `sweep_every` events keeps memory flat on an endless
stream.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass, field
from typing import Any

from claimstream.detection.align import (
    ALIGNED,
    DEFAULT_IDLE_RECORDS,
    Aligner,
    Progress,
    SourceOf,
    sources,
)
from claimstream.detection.config import DetectionConfig
from claimstream.detection.engine import Clock, Engine, StepResult
from claimstream.detection.tracecodes import views
from claimstream.model.events import FAMILY_OF, Event, StateKind
from claimstream.model.indicators import InstitutionMonth
from claimstream.model.outputs import Alert, Command
from claimstream.model.partitioning import partition_for
from claimstream.model.rejection import PROCESSING_ERROR
from claimstream.reference.suspensions import Suspensions
from claimstream.rules.base import State

log = logging.getLogger(__name__)
FAMILIES = tuple(sorted(set(FAMILY_OF.values())))
#: `feed` looks at the watermark every this many records: when held events are released
#: changes nothing but how long they wait (and replay has no one waiting)
_RELEASE_EVERY = 64


@dataclass(slots=True)
class Stats:
    events: int = 0
    duplicates: int = 0
    late: int = 0


@dataclass(slots=True)
class Fed:
    """What `feed` or `finish` produced: outputs, and the events refused, each with its tag."""

    alerts: list[Alert] = field(default_factory=list)
    shadow_alerts: list[Alert] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    #: institutions' closed months (`institution_indicators`), for the peer stage
    records: list[InstitutionMonth] = field(default_factory=list)
    #: (reason, detail, tag) of each refused event: late, implausible, processing errors
    refused: list[tuple[str, str, Any]] = field(default_factory=list)
    duplicates: int = 0

    def add(self, result: StepResult, tag: Any) -> None:
        if result.alerts:
            self.alerts += result.alerts
        if result.shadow_alerts:
            self.shadow_alerts += result.shadow_alerts
        if result.commands:
            self.commands += result.commands
        if result.records:
            self.records += result.records
        if result.duplicate:
            self.duplicates += 1
        elif result.rejection is not None:
            self.refused.append((result.rejection.reason, result.rejection.detail, tag))

    def failed(self, exc: BaseException, tag: Any) -> None:
        detail = f"{type(exc).__name__}: {exc} | " + traceback.format_exc(limit=3)
        self.refused.append((PROCESSING_ERROR, detail[:2000], tag))


class Detector:
    def __init__(
        self,
        config: DetectionConfig,
        clock: Clock | None,
        sweep_every: int = 10_000,
        *,
        partitions: int | None = None,
        idle_records: int = DEFAULT_IDLE_RECORDS,
        suspensions: Suspensions | None = None,
    ) -> None:
        self.engine = Engine(config, clock, suspensions)
        self.states: dict[tuple[StateKind, str], State] = {}
        #: `process`: the highest event time seen (what its sweeps expire against)
        self.watermark: float | None = None
        self.stats = Stats()
        self._sweep_every = sweep_every
        self._since_sweep = 0
        self.partitions = partitions
        self._records = 0
        if partitions is not None:
            self.source_of = SourceOf(partitions)
            self.progress = Progress(idle_records)
            self._all = sources(partitions)
            self.aligners: dict[StateKind, Aligner] = {
                kind: Aligner(self.engine, kind) for kind in ALIGNED
            }
            self._families = {kind: a.families() for kind, a in self.aligners.items()}
            self._names = {
                kind: sources(partitions, families) for kind, families in self._families.items()
            }

    # -- the worker's semantics --------------------------------------------------------------

    def feed(self, event: Event, tag: Any = None) -> Fed:
        """Run one event as the worker would; `tag` comes back with any refusal of it."""
        if self.partitions is None:
            raise RuntimeError("feed() needs Detector(..., partitions=N)")
        out = Fed()
        self.stats.events += 1
        engine = self.engine
        refused = engine.implausible(event)
        if refused is not None:
            out.refused.append((refused.reason, refused.detail, tag))
            return out
        self._records += 1
        source = self.source_of(event)
        self.progress.observe(source, event.ts, self._records)
        kinds = engine.kinds_for(event)
        if "patient" in kinds:  # the stream's patient agent, which forwards what it accepts
            try:
                result = engine.step("patient", self._state("patient", event.patient_id), event)
            except Exception as exc:
                log.debug("an event could not be processed", exc_info=True)
                out.failed(exc, tag)
                return out
            out.add(result, tag)
            if result.duplicate:  # late for the patient still goes on, as in the worker
                self._count(out)
                return out
        for kind in kinds:
            if kind == "patient":
                continue
            if kind == "trace_code":  # one key per code, each stepping its code's view
                keyed = views(event)
            else:
                key = event.doctor_id if kind == "doctor" else event.institution_id
                keyed = [] if key is None else [(key, event)]
            aligner = self.aligners[kind]
            for key, seen_as in keyed:
                state = self._state(kind, key)
                try:
                    outcome = aligner.accept(state, key, seen_as, source, tag)
                except Exception as exc:
                    log.debug("an event could not be processed", exc_info=True)
                    out.failed(exc, tag)
                    continue
                if isinstance(outcome, StepResult):
                    out.add(outcome, tag)
        if not self._records % _RELEASE_EVERY:
            self._release(out)
        self._count(out)
        self._since_sweep += 1
        if self._since_sweep >= max(self._sweep_every, 4 * len(self.states)):
            out.add(self.sweep(), tag)
        return out

    def finish(self) -> Fed:
        """The end of the stream: release every event still waiting, in order, then sweep
        (what a worker's idle-key sweep would do next: event-time timers that have fallen
        due by the watermark fire, `Rule.due`)."""
        out = Fed()
        if self.partitions is not None:
            for aligner in self.aligners.values():
                self._release_from(aligner, float("inf"), out)
            self._count(out)
        out.add(self.sweep(), None)
        return out

    def _release(self, out: Fed) -> None:
        for kind, aligner in self.aligners.items():
            if not aligner.buffer:
                continue
            mark = self.progress.watermark(self._names[kind], self._records)
            if mark is not None:
                self._release_from(aligner, mark - self.engine.slack, out)

    def _release_from(self, aligner: Aligner, before: float, out: Fed) -> None:
        kind = aligner.kind

        def state_of(key: str) -> State:
            return self._state(kind, key)

        for held, _, outcome in aligner.release(before, state_of):
            if isinstance(outcome, Exception):
                out.failed(outcome, held.tag)
            else:
                out.add(outcome, held.tag)

    def _count(self, out: Fed) -> None:
        self.stats.duplicates += out.duplicates
        if out.refused:
            self.stats.late += sum(1 for reason, _, _ in out.refused if reason == "late")

    def _state(self, kind: StateKind, key: str) -> State:
        state = self.states.get((kind, key))
        if state is None:
            state = self.states[(kind, key)] = self.engine.new_state()
        return state

    # -- every event at once, in the order given ---------------------------------------------

    def process(self, event: Event) -> StepResult:
        """Run one event through every kind of key it belongs to, as it comes."""
        engine = self.engine
        result = StepResult()
        self.stats.events += 1
        refused = engine.implausible(event)
        if refused is not None:
            result.rejection = refused
            return result
        states = self.states
        for kind, key_of in engine.dispatch.get(event.event_type, ()):
            if kind == "trace_code":  # one key per code, each stepping its code's view
                for code, view in views(event):
                    state = states.get((kind, code))
                    if state is None:
                        state = states[(kind, code)] = engine.new_state()
                    engine.step(kind, state, view, into=result)
                continue
            key = key_of(event)
            if key is None:
                continue
            state = states.get((kind, key))
            if state is None:
                state = states[(kind, key)] = engine.new_state()
            engine.step(kind, state, event, into=result)
        if result.duplicate:
            self.stats.duplicates += 1
        elif result.rejection is not None:
            self.stats.late += 1
        if self.watermark is None or event.ts > self.watermark:
            self.watermark = event.ts
        self._since_sweep += 1
        # A sweep visits every key: spacing sweeps by the number of keys keeps its cost per
        # event constant, while live keys stay within a small factor of the minimum.
        if self._since_sweep >= max(self._sweep_every, 4 * len(self.states)):
            swept = self.sweep()
            result.alerts += swept.alerts
            result.shadow_alerts += swept.shadow_alerts
            result.records += swept.records
        return result

    # -- idle keys ---------------------------------------------------------------------------

    def sweep(self) -> StepResult:
        """Expire every key against the watermark and forget keys left empty; what event-time
        timers found falling due (`Rule.due`).

        With `partitions`: the input partitions' watermark (`align.Progress.floor`), for a
        patient key that of its own partition, as in the worker; else the highest event time
        seen.
        """
        self._since_sweep = 0
        found = StepResult()
        if self.partitions is not None:
            mark = self.progress.floor(self._all, self._records)
        else:
            mark = self.watermark
        marks: dict[int, float | None] = {}
        gone = []
        for (kind, key), state in self.states.items():
            wm = mark
            if kind == "patient" and self.partitions is not None:
                # as the worker's patient processor: the least progress of the key's own
                # input partition (`KeyedProcessor.sweep_mark`), not of every partition
                partition = partition_for(key, self.partitions)
                if partition not in marks:
                    names = [f"{family}/{partition}" for family in FAMILIES]
                    marks[partition] = self.progress.floor(names, self._records)
                wm = marks[partition]
            if wm is not None and self.engine.sweep(state, wm, found):
                gone.append((kind, key))
        for gone_key in gone:
            del self.states[gone_key]
        return found

    def stored_items(self) -> int:
        """Items held by all rules over all keys (what the bounded-state test watches)."""
        return sum(self.engine.size(s) for s in self.states.values())

    def held(self) -> int:
        """Events waiting for the watermark (doctor and institution keys)."""
        if self.partitions is None:
            return 0
        return sum(len(a.buffer) for a in self.aligners.values())
