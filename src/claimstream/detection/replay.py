"""Run the detection core over a JSON-lines file, in file order.

This is the batch twin of the stream worker: same decoder, same engine, same rules, and the
same handling of event time (`Detector.feed`: each event's input partition computed from its
patient id as Kafka's partitioner does, doctor and institution rules fed in event-time order
once the partitions' watermark has passed), so the alerts it writes are the ones the worker
emits for the same events (ids included), however the worker's partitions were paced. An
event whose processing raises is dead-lettered as `processing_error` and the replay goes on,
as in the worker. Analysts use it to backtest a threshold change on history (`--config`).

The institutions' closed months (`institution_indicators`) go through the same peer stage as
the worker's (`detection.peers`, one state per peer group, in the order they are produced), so
`peer_outlier`'s alerts are the worker's too; `sinks.records` gets each month as it closes
(`replay --indicators FILE`, the benchmark's offline input).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import orjson

from claimstream.detection.align import DEFAULT_PARTITIONS
from claimstream.detection.config import DetectionConfig
from claimstream.detection.decode import decode_event
from claimstream.detection.detector import Detector, Fed
from claimstream.detection.peers import PeerStage, PeerStep
from claimstream.model.indicators import InstitutionMonth
from claimstream.model.outputs import DeadLetter
from claimstream.model.rejection import Rejection
from claimstream.reference.suspensions import Suspensions
from claimstream.rules.base import State


@dataclass(slots=True)
class ReplaySummary:
    events_read: int = 0
    alerts: Counter[str] = field(default_factory=Counter)
    shadow_alerts: Counter[str] = field(default_factory=Counter)
    commands: Counter[str] = field(default_factory=Counter)
    dead_letters: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    #: institution months published, and those dropped as late by their peer group
    records: int = 0
    late_records: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.events_read / self.seconds if self.seconds > 0 else 0.0

    def render(self) -> str:
        def counts(counter: Counter[str]) -> str:
            body = ", ".join(f"{k} {v}" for k, v in sorted(counter.items()))
            return f"{sum(counter.values())}" + (f" ({body})" if body else "")

        lines = [
            f"events read   {self.events_read} in {self.seconds:.2f} s ({self.rate:,.0f} events/s)",
            f"alerts        {counts(self.alerts)}",
            f"commands      {counts(self.commands)}",
            f"dead letters  {counts(self.dead_letters)}",
            f"duplicates    {self.duplicates}",
        ]
        if self.records:
            late = f" ({self.late_records} late for their peer group)" if self.late_records else ""
            lines.append(f"indicators    {self.records} institution months{late}")
        if self.shadow_alerts:
            lines.insert(2, f"shadow alerts {counts(self.shadow_alerts)}")
        return "\n".join(lines)


Writer = Callable[[dict[str, Any]], None]


def jsonl_writer(stream: BinaryIO) -> Writer:
    def write(record: dict[str, Any]) -> None:
        stream.write(orjson.dumps(record))
        stream.write(b"\n")

    return write


def _discard(record: dict[str, Any]) -> None:
    return None


@dataclass(slots=True)
class ReplaySinks:
    alerts: Writer = _discard
    shadow_alerts: Writer = _discard
    commands: Writer = _discard
    dead_letters: Writer = _discard
    #: institution months (`InstitutionMonth.to_dict()`), as they close
    records: Writer = _discard


def replay(
    lines: Iterable[bytes],
    sinks: ReplaySinks,
    *,
    config: DetectionConfig | None = None,
    clock: str = "wall",
    source: str = "-",
    progress: Callable[[int], None] | None = None,
    partitions: int = DEFAULT_PARTITIONS,
    sweep_every: int = 10_000,
    suspensions: Suspensions | None = None,
) -> ReplaySummary:
    """Process `lines` (one JSON event each) in order and write what they produce to `sinks`.

    `clock="event"` stamps `detected_at` with the event time of the event that completed the
    alert instead of the wall clock, so two backtests of the same file can be diffed line by
    line. `partitions` is the input topics' partition count (topics.toml), which decides how
    event time is judged, as in the worker. Idle keys are swept about every `sweep_every`
    events (it changes memory, never what is detected). `suspensions`: the doctors'
    suspensions in force (`reference.suspensions`), as the worker reads them from the commands
    topic.
    """
    detector = Detector(
        config or DetectionConfig.default(),
        clock=time.time if clock == "wall" else None,
        sweep_every=sweep_every,
        partitions=partitions,
        suspensions=suspensions,
    )
    summary = ReplaySummary()
    peers = Peers(PeerStage(detector.engine))
    started = time.perf_counter()
    for line_no, line in enumerate(lines, start=1):
        stripped = line.strip()
        if not stripped:
            continue
        summary.events_read += 1
        event = decode_event(stripped)
        if isinstance(event, Rejection):
            _dead_letter(sinks, summary, event.reason, event.detail, (stripped, line_no), source)
            continue
        _write(detector.feed(event, (stripped, line_no)), sinks, summary, source, peers)
        if progress is not None and line_no % 4096 == 0:
            progress(line_no)
    _write(detector.finish(), sinks, summary, source, peers)
    summary.seconds = time.perf_counter() - started
    return summary


@dataclass(slots=True)
class Peers:
    """The peer stage over every group's state, as the worker's agent keeps them."""

    stage: PeerStage
    groups: dict[str, State] = field(default_factory=dict)

    def feed(self, record: InstitutionMonth) -> PeerStep:
        state = self.groups.get(record.peer_group)
        if state is None:
            state = self.groups[record.peer_group] = self.stage.new_state()
        return self.stage.on_record(state, record)


def _write(fed: Fed, sinks: ReplaySinks, summary: ReplaySummary, source: str, peers: Peers) -> None:
    for record in fed.records:
        summary.records += 1
        sinks.records(record.to_dict())
        step = peers.feed(record)
        if step.outcome == "late":
            summary.late_records += 1
        fed.alerts += step.result.alerts
        fed.shadow_alerts += step.result.shadow_alerts
    summary.duplicates += fed.duplicates
    for reason, detail, tag in fed.refused:
        _dead_letter(sinks, summary, reason, detail, tag, source)
    for alert in fed.alerts:
        summary.alerts[alert.rule] += 1
        sinks.alerts(alert.to_dict())
    for alert in fed.shadow_alerts:
        summary.shadow_alerts[alert.rule] += 1
        sinks.shadow_alerts(alert.to_dict())
    for command in fed.commands:
        summary.commands[command.action] += 1
        sinks.commands(command.to_dict())


def _dead_letter(
    sinks: ReplaySinks,
    summary: ReplaySummary,
    reason: str,
    detail: str,
    tag: tuple[bytes, int],
    source: str,
) -> None:
    raw, line_no = tag
    summary.dead_letters[reason] += 1
    origin = {"file": source, "line": line_no}
    sinks.dead_letters(DeadLetter(reason, detail, origin, raw).to_dict())
