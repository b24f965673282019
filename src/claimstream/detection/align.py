"""Event time across re-keying: progress per input partition, and each doctor's and
institution's events released to its rules in event-time order (docs/time.md).

Sources. An event's *source* is the input partition it travels on: its family's topic and the
partition Kafka's default partitioner gives its `patient_id` (`source_of`). Kafka keeps order
per partition only, so a source's events arrive in the same order in the worker as in a file
(`replay`), however fast each partition is drained; nothing else about arrival order is
reproducible. The stream computes the source from the event exactly as `replay` does.

Progress of a source (`Progress`). The highest event time *confirmed by two consecutive
records*: after records with times t1, t2, ... it is max over i of min(t_i, t_i+1). One record
alone cannot move it, so one event dated 2099 (or a week ahead of the rest) moves nothing;
two in a row do. A source that has gone quiet (`idle_after`: wall seconds in the worker,
records of the whole stream in `replay`) stops holding the watermark back.

Watermark. The minimum over sources of their progress, over the sources that are not idle (as
Flink does): no single record can drag it forward while any other source is active. Idle-key
sweeps expire against it (less the allowed lateness and the idle grace).

Alignment (`Aligner`, for the doctor and institution keys, whose events come from every
source). Each accepted event waits in a `PendingBuffer` until the watermark of the sources its
rules read, less the allowed lateness L, has passed it; then the key's waiting events go to
the engine in (event time, event id) order. Lateness is judged per key, family and source
(the key's latest event from that source less L, in the key's state under "src"), so how fast
each partition is drained decides nothing. The guarantee, proved in docs/time.md: an event no
more than L behind the latest earlier event of its own source always arrives before anything
that sorts after it has been released, so every key's rules see the same sequence in the
worker (any pacing, any number of workers) as in `replay`. The cost: doctor and institution
alerts wait about L (1 h by default) after their event. An event that does arrive behind what
its key has released (its source was more than L behind, or was idle and came back) is still
applied, at once and out of order, as before alignment ("rel" in the key's state is the last
event released).
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from claimstream.detection.engine import Engine, StepResult
from claimstream.model.events import FAMILY_OF, Event, StateKind
from claimstream.model.partitioning import partition_for
from claimstream.model.rejection import Rejection
from claimstream.rules.base import State

#: The kinds of key whose events come re-keyed from every input partition, and so wait for the
#: watermark before their rules see them (the patient's come on their own partition).
ALIGNED: tuple[StateKind, ...] = ("doctor", "institution", "trace_code")
#: The input partition count `replay` assumes when it is not told (topics.toml's default).
DEFAULT_PARTITIONS = 8
#: `replay`: a source with no record among this many of the stream's is idle.
DEFAULT_IDLE_RECORDS = 10_000
#: the worker: a source with no record for this many wall seconds is idle.
DEFAULT_IDLE_SECONDS = 60.0


def sources(partitions: int, families: Iterable[str] | None = None) -> tuple[str, ...]:
    """Every source of the given families (default: all) with `partitions` partitions each."""
    names = sorted(set(FAMILY_OF.values()) if families is None else set(families))
    return tuple(f"{family}/{p}" for family in names for p in range(partitions))


class SourceOf:
    """`event -> "family/partition"`, the partition cached per patient (ids repeat)."""

    def __init__(self, partitions: int, cache: int = 1 << 16) -> None:
        self.partitions = partitions
        self._cache: dict[str, int] = {}
        self._limit = cache
        self._names = {
            event_type: tuple(f"{family}/{p}" for p in range(partitions))
            for event_type, family in FAMILY_OF.items()
        }

    def __call__(self, event: Event) -> str:
        patient = event.patient_id
        partition = self._cache.get(patient)
        if partition is None:
            if len(self._cache) >= self._limit:
                self._cache.clear()
            partition = self._cache[patient] = partition_for(patient, self.partitions)
        return self._names[event.event_type][partition]


class Progress:
    """Event-time progress of the sources one owner reads, and the watermark over them.

    `now` is whatever measures quiet: wall seconds in the worker, the number of records read
    in `replay`. A source is idle when nothing of it was read for `idle_after`; one never read
    counts from when it was first asked about.
    """

    def __init__(self, idle_after: float) -> None:
        self.idle_after = idle_after
        self.progress: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._heard: dict[str, float] = {}

    def observe(self, source: str, ts: float, now: float) -> None:
        """One record of `source` with event time `ts`, read at `now`."""
        self._heard[source] = now
        last = self._last.get(source)
        self._last[source] = ts
        if last is not None:
            confirmed = ts if ts < last else last
            held = self.progress.get(source)
            if held is None or confirmed > held:
                self.progress[source] = confirmed

    def last(self, source: str) -> float | None:
        """The event time of `source`'s latest record (what it counts for once it is idle)."""
        return self._last.get(source)

    def idle(self, source: str, now: float) -> bool:
        heard = self._heard.get(source)
        if heard is None:
            heard = self._heard[source] = now
        return now - heard >= self.idle_after

    def watermark(self, names: Iterable[str], now: float) -> float | None:
        """The least progress of the active sources among `names`.

        None while an active source has no progress yet (nothing can be said); `math.inf` when
        every one is idle (nothing is coming: whatever waits may go).
        """
        return _least((self.progress.get(n), self.idle(n, now)) for n in names)

    def floor(self, names: Iterable[str], now: float) -> float | None:
        """What idle keys may be expired against: the watermark, or when every source is idle
        the least progress of all (never infinity: the state of quiet keys must survive a
        quiet stream)."""
        names = tuple(names)
        return _floor(self.watermark(names, now), (self.progress.get(n) for n in names))

    def report(self, names: Iterable[str], now: float) -> dict[str, tuple[float | None, bool]]:
        """Each source's (progress, idle), as its owner tells the aligned side (a marker)."""
        return {n: (self.progress.get(n), self.idle(n, now)) for n in names}


class Reported:
    """The aligned side's view of the sources, per channel: what their owners last reported on
    each partition of the repartition topic this processor reads.

    Kept per channel because a report is only news for the events behind it on the same
    partition: owners send in order per partition, but partitions are read at their own pace,
    so a marker read on one partition says nothing of the events still unread on another
    (Flink keeps one watermark per input channel for the same reason). A source no owner has
    reported on a channel yet, or whose owner has gone silent, holds the watermark back (its
    owner may be restarting, with older events to come); only a source its owner says is idle
    stops counting. Reports of a re-read partition can be older: progress only rises.
    """

    def __init__(self) -> None:
        self.progress: dict[tuple[int, str], float] = {}
        self.idle: dict[tuple[int, str], bool] = {}

    def set(self, channel: int, source: str, progress: float | None, *, idle: bool) -> None:
        where = (channel, source)
        self.idle[where] = idle
        if progress is not None:
            held = self.progress.get(where)
            if held is None or progress > held:
                self.progress[where] = progress

    def watermark(self, channels: Iterable[int], names: Iterable[str]) -> float | None:
        """As `Progress.watermark`, over every source on every channel."""
        names = tuple(names)
        return _least(
            (self.progress.get((c, n)), self.idle.get((c, n), False))
            for c in channels
            for n in names
        )

    def floor(self, channels: Iterable[int], names: Iterable[str]) -> float | None:
        channels, names = tuple(channels), tuple(names)
        return _floor(
            self.watermark(channels, names),
            (self.progress.get((c, n)) for c in channels for n in names),
        )


def _least(marks: Iterable[tuple[float | None, bool]]) -> float | None:
    low: float | None = math.inf
    for mark, idle in marks:  # every one is looked at: asking starts a silent source's clock
        if idle or low is None:
            continue
        if mark is None:
            low = None
        elif mark < low:
            low = mark
    return low


def _floor(mark: float | None, progress: Iterable[float | None]) -> float | None:
    if mark is None or mark != math.inf:
        return mark
    known = [p for p in progress if p is not None]
    return min(known) if known else None


@dataclass(slots=True)
class Held:
    """An event waiting for the watermark: with its key, where its key lives and a tag the
    caller gets back with what it produced (the record, or replay's line)."""

    ts: float
    event_id: str
    key: str
    event: Event
    tag: Any
    home: int = 0

    def order(self) -> tuple[float, str]:
        return (self.ts, self.event_id)


def _order(held: Held) -> tuple[float, str]:
    return (held.ts, held.event_id)


class PendingBuffer:
    """Held events per key in (ts, event id) order, and which keys have one due.

    In memory; the stream persists what `added` and `taken` report (docs/time.md) and puts
    entries back with `add` after a restart.
    """

    def __init__(self) -> None:
        self._by_key: dict[str, list[Held]] = {}
        #: (first ts, first id, key) of each key's earliest event; stale entries are skipped
        self._heap: list[tuple[float, str, str]] = []
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def holds(self, key: str, ts: float, event_id: str) -> bool:
        held = self._by_key.get(key)
        if not held:
            return False
        i = bisect.bisect_left(held, (ts, event_id), key=_order)
        return i < len(held) and held[i].ts == ts and held[i].event_id == event_id

    def add(self, held: Held) -> bool:
        """Hold `held`; False when the same (ts, event id) is already held for its key."""
        queue = self._by_key.get(held.key)
        if queue is None:
            queue = self._by_key[held.key] = []
        ts, event_id = held.ts, held.event_id
        last = queue[-1] if queue else None
        if last is None or last.ts < ts or (last.ts == ts and last.event_id < event_id):
            i = len(queue)  # in order: the common case, no search
            queue.append(held)
        else:
            i = bisect.bisect_left(queue, (ts, event_id), key=_order)
            if i < len(queue) and queue[i].ts == ts and queue[i].event_id == event_id:
                return False
            queue.insert(i, held)
        self.size += 1
        if i == 0:
            heapq.heappush(self._heap, (held.ts, held.event_id, held.key))
        return True

    def due(self, before: float) -> list[str]:
        """Keys holding an event with ts < `before`, earliest first."""
        keys: list[str] = []
        heap = self._heap
        while heap and heap[0][0] < before:
            ts, event_id, key = heapq.heappop(heap)
            queue = self._by_key.get(key)
            if queue and queue[0].ts == ts and queue[0].event_id == event_id:
                keys.append(key)
        return keys

    def take(self, key: str, before: float) -> list[Held]:
        """The key's events with ts < `before`, in order, no longer held."""
        queue = self._by_key.get(key)
        if not queue:
            return []
        cut = bisect.bisect_left(queue, before, key=lambda h: h.ts)
        taken = queue[:cut]
        del queue[:cut]
        self.size -= len(taken)
        if queue:
            if taken:
                first = queue[0]
                heapq.heappush(self._heap, (first.ts, first.event_id, key))
        else:
            del self._by_key[key]
        return taken

    def keys(self) -> list[str]:
        return list(self._by_key)

    def drop(self, keep: Callable[[Held], bool]) -> list[Held]:
        """Forget the held events `keep` refuses (a revoked partition's); returns them."""
        dropped: list[Held] = []
        for key in list(self._by_key):
            queue = self._by_key[key]
            kept = [h for h in queue if keep(h)]
            if len(kept) != len(queue):
                dropped.extend(h for h in queue if not keep(h))
                self.size -= len(queue) - len(kept)
                if kept:
                    self._by_key[key] = kept
                    heapq.heappush(self._heap, (kept[0].ts, kept[0].event_id, key))
                else:
                    del self._by_key[key]
        return dropped


def _reread(state: State, home: int, offset: int) -> bool:
    """Whether the record at `offset` of partition `home` was read for this key before (its
    state has seen a record at or after it there): a redelivery after a restart."""
    at = state.get("at")
    return at is not None and at[0] == home and offset <= at[1]


def _forwarded_again(state: State, source: str, read: int) -> bool:
    """Whether the input record at offset `read` of `source` was forwarded to this key before
    (its state has accepted a record at or after it from there): the patient side forwards a
    batch again when a restart reads its input again from the last commit, at new offsets of
    the repartition topic, which `_reread` cannot know for what they are."""
    last = state.get("in", {}).get(source)
    return last is not None and read <= last


def _released(state: State, ts: float, event_id: str) -> bool:
    """Whether (ts, event id) is at or before the last event the key released.

    A record read again after a restart whose event sorts there was applied already: it was
    released in order, or applied at once because it came behind what was released. Its id
    alone does not say so once the key's dedup has forgotten it (a backlog moves event time
    by days a second, the dedup keeps a day), and its source's lateness mark has moved on with
    the records read after it, which would refuse it as late: a duplicate, then."""
    released = state.get("rel")
    return released is not None and (ts, event_id) <= (released[0], released[1])


#: what accepting an event did: it waits (the `Held`), or what the engine made of it now
Accepted = StepResult | Held | None


class Aligner:
    """Holds a kind's events until the watermark passes them, then steps them in order."""

    def __init__(
        self, engine: Engine, kind: StateKind, buffer: PendingBuffer | None = None
    ) -> None:
        self.engine = engine
        self.kind = kind
        self.buffer = buffer if buffer is not None else PendingBuffer()
        #: events that arrived behind what their key had released, applied out of order
        self.unaligned = 0

    def families(self) -> tuple[str, ...]:
        """The families whose events reach this kind's rules (their sources set its pace)."""
        return tuple(
            sorted(
                {
                    FAMILY_OF[t]
                    for r in self.engine.rules
                    if r.key_kind == self.kind
                    for t in r.event_types
                }
            )
        )

    def accept(
        self,
        state: State,
        key: str,
        event: Event,
        source: str,
        tag: Any,
        home: int = 0,
        offset: int | None = None,
        read: int | None = None,
    ) -> Accepted:
        """Judge `event` for the key whose state is `state`, and hold it (returns the `Held`),
        or step it now when it sorts before what the key has released (returns the result),
        or refuse it (a result with `duplicate` or a `late` rejection). None: no rule of this
        kind reads it. All or nothing: when stepping raises, nothing is changed.

        `offset`: the record's offset in partition `home` (the stream; None in `replay`). The
        key's state keeps the highest one read ("at"), so a record read again after a restart
        is known for what it is (see `_reread`). `read`: the offset of the input record the
        event was forwarded from, in `source` (the `cs-offset` header; None when unknown). The
        key's state keeps the highest per source ("in"), so the same input record forwarded
        again after a restart is known too (see `_forwarded_again`)."""
        engine = self.engine
        if self.kind not in engine.kinds_for(event):
            return None
        ts, event_id = event.ts, event.event_id
        reread = offset is not None and _reread(state, home, offset)
        again = read is not None and _forwarded_again(state, source, read)
        if (
            event_id in state["seen"]
            or self.buffer.holds(key, ts, event_id)
            or ((reread or again) and _released(state, ts, event_id))
        ):
            # a redelivery (after a restart, records are read again from the last commit, and
            # the input behind them forwarded again, while the key's state may already count
            # later events of the same source): a duplicate, before anything else is judged
            result = StepResult()
            result.duplicate = True
            return result
        if offset is not None and not reread:
            state["at"] = [home, offset]
        if read is not None and not again:
            forwarded: dict[str, int] = state.setdefault("in", {})
            forwarded[source] = read
        marks: dict[str, float] = state.setdefault("src", {})
        mark = marks.get(source)
        if mark is not None and ts < mark - engine.lateness:
            result = StepResult()
            family, _, partition = source.partition("/")
            result.rejection = Rejection(
                "late",
                f"occurred_at {event.occurred_at} is more than "
                f"{engine.config.allowed_lateness_hours:g} h behind the latest {family} event "
                f"of {self.kind} {key} from input partition {partition}",
            )
            return result
        released = state.get("rel")
        if released is not None and (ts, event_id) < (released[0], released[1]):
            self.unaligned += 1
            outcome: Accepted = engine.step(self.kind, state, event)
        else:
            outcome = Held(ts, event_id, key, event, tag, home)
            if not self.buffer.add(outcome):  # the same event is already waiting
                result = StepResult()
                result.duplicate = True
                return result
        if mark is None or ts > mark:
            marks[source] = ts
        return outcome

    def release(
        self, before: float, state_of: Callable[[str], State]
    ) -> list[tuple[Held, State, StepResult | Exception]]:
        """Step every held event with ts < `before`, each key's in (ts, id) order.

        Returns, per event, what it produced or what it raised (its key's state is then as
        before it; the next one goes on).
        """
        done: list[tuple[Held, State, StepResult | Exception]] = []
        engine, kind = self.engine, self.kind
        for key in self.buffer.due(before):
            state = state_of(key)
            last: Held | None = None
            for held in self.buffer.take(key, before):
                try:
                    outcome: StepResult | Exception = engine.step(kind, state, held.event)
                except Exception as exc:  # noqa: BLE001 - the caller dead-letters it
                    outcome = exc  # the state is as before the event, "rel" included
                else:
                    last = held
                done.append((held, state, outcome))
            if last is not None:
                state["rel"] = [last.ts, last.event_id]
        return done
