"""In-memory driver of the engine over a single ordered stream (replay, tests, benchmark).

An event outside the configured plausible range is refused (`implausible_timestamp`).

Keeps every key's state in a dict and sweeps idle keys every `sweep_every` events against the
stream's watermark, so memory stays flat on an endless stream. The stream worker does the same
with changelog-backed tables instead of dicts.
"""

from __future__ import annotations

from dataclasses import dataclass

from claimstream.detection.config import DetectionConfig
from claimstream.detection.engine import Clock, Engine, StepResult
from claimstream.model.events import Event, KeyKind
from claimstream.rules.base import State


@dataclass(slots=True)
class Stats:
    events: int = 0
    duplicates: int = 0
    late: int = 0


class Detector:
    def __init__(self, config: DetectionConfig, clock: Clock, sweep_every: int = 10_000) -> None:
        self.engine = Engine(config, clock)
        self.states: dict[tuple[KeyKind, str], State] = {}
        self.watermark: float | None = None
        self.stats = Stats()
        self._sweep_every = sweep_every
        self._since_sweep = 0

    def process(self, event: Event) -> StepResult:
        """Run one event through every kind of key it belongs to."""
        engine = self.engine
        states = self.states
        result = StepResult()
        self.stats.events += 1
        refused = engine.implausible(event)
        if refused is not None:
            result.rejection = refused
            return result
        for kind, key_of in engine.dispatch.get(event.event_type, ()):
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
            self.sweep()
        return result

    def sweep(self) -> None:
        """Expire every key against the stream watermark and forget keys left empty."""
        self._since_sweep = 0
        if self.watermark is None:
            return
        gone = [k for k, s in self.states.items() if self.engine.sweep(s, self.watermark)]
        for key in gone:
            del self.states[key]

    def stored_items(self) -> int:
        """Items held by all rules over all keys (what the bounded-state test watches)."""
        return sum(self.engine.size(s) for s in self.states.values())
