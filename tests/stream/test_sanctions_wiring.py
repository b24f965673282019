"""The sanctions wiring's own logic with fakes for faust: event time, outputs order, ticks."""

from __future__ import annotations

import asyncio
import contextlib
from collections import namedtuple
from types import SimpleNamespace
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from claimstream.detection.sinks.memory import MemorySink
from claimstream.model.records import Record
from claimstream.observability.metrics import Metrics
from claimstream.sanctions import Escalation
from claimstream.sanctions.processor import (
    ALERTS,
    NOTICES,
    REPARTITION_ALERT,
    REPARTITION_SUBJECT,
    Result,
)
from claimstream.sanctions.signatures import ActionVerifier, Keyring
from claimstream.stream.detection.markers import ClockMark
from claimstream.stream.sanctions.runtime import SanctionsRuntime
from claimstream.stream.sinks import SinkSet
from claimstream.stream.tables import TableWriter
from tests.sanctions.support import alert, ts

TP = namedtuple("TP", "topic partition")
CHANGELOG = "claimstream-state-subject-changelog"
INPUT = "settlement.dispensing.v1"


class Consumer:
    def __init__(self) -> None:
        self.tps: set[TP] = {TP(t, p) for t in (ALERTS, REPARTITION_SUBJECT) for p in range(2)}
        self.highwaters: dict[TP, int] = {}

    def assignment(self) -> set[TP]:
        return self.tps

    def highwater(self, tp: TP) -> int | None:
        return self.highwaters.get(tp)


class Publisher:
    def __init__(self, log: list[str]) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, int | None]] = []
        self.log = log

    async def send(self, records: Any) -> list[Any]:
        records = list(records)
        self.sent.extend(records)
        self.log.extend(f"send {r[0]}" for r in records)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return [done]

    async def send_and_wait(self, records: Any) -> None:
        await self.send(records)


class LoggingSink(MemorySink):
    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    async def write(self, outputs: Any) -> None:
        self.log.append("sink")
        await super().write(outputs)


def world(detection: dict[int, float] | None = None) -> tuple[SanctionsRuntime, Any]:
    log: list[str] = []
    sink = LoggingSink(log)
    sinks = SinkSet([sink])
    watermarks = detection if detection is not None else {}
    metrics = Metrics(CollectorRegistry(), rules=["repeat_dispensing"], topics=[])
    app = SimpleNamespace(consumer=Consumer(), rebalancing=False, in_recovery=False)
    publisher = Publisher(log)
    subject_table = SimpleNamespace(data={})
    index_table = SimpleNamespace(data={})
    sanctions = SanctionsRuntime(
        app,
        publisher,  # type: ignore[arg-type]
        Escalation(),
        subject_table,
        index_table,
        2,
        2,
        sinks=sinks,
        metrics=metrics,
        watermarks=lambda: [ClockMark(INPUT, p, wm, wm) for p, wm in watermarks.items()],
        detection_topics={INPUT: "patient"},
        verifier=ActionVerifier(lambda: Keyring({}), accept_unsigned=True),
        tick_delay=60.0,
    )
    world = SimpleNamespace(
        log=log, sink=sink, sinks=sinks, publisher=publisher, app=app, metrics=metrics,
        watermarks=watermarks,
    )  # fmt: skip
    return sanctions, world


def test_the_detection_low_watermark_ignores_quiet_partitions() -> None:
    detection = {0: 5_000.0, 1: 4_000.0}
    sanctions, w = world(detection=detection)
    sanctions.idle = 30.0
    assert sanctions.detection_low(wall=100.0) == 4_000.0  # both just moved: the least
    detection[0] = 5_500.0
    assert sanctions.detection_low(wall=120.0) == 4_000.0
    assert sanctions.detection_low(wall=140.0) == 5_500.0  # partition 1 quiet for 40 s
    assert sanctions.detection_low(wall=200.0) == 5_500.0  # all quiet: the greatest
    # a partition that has not moved but still has input to process is not quiet
    w.app.consumer.tps.add(TP(INPUT, 1))
    w.app.consumer.highwaters[TP(INPUT, 1)] = 7
    w.app.consumer._committed_offset = {TP(INPUT, 1): 5}
    assert sanctions.detection_low(wall=300.0) == 4_000.0
    w.app.consumer._committed_offset = {TP(INPUT, 1): 7}
    assert sanctions.detection_low(wall=300.0) == 5_500.0


def test_one_record_far_ahead_moves_the_ladders_clock_only_once_its_partition_is_quiet() -> None:
    """docs/time.md §7 item 6: the confirmed progress while a partition is active, its latest
    record once it has gone quiet (so a single event past midnight still ends the day)."""
    marks = {0: ClockMark(INPUT, 0, 5_000.0, 5_000.0), 1: ClockMark(INPUT, 1, 4_000.0, 4_000.0)}
    sanctions, _ = world()
    sanctions.watermarks = lambda: list(marks.values())
    sanctions.idle = 30.0
    assert sanctions.detection_low(wall=100.0) == 4_000.0
    marks[1] = ClockMark(INPUT, 1, 4_000.0, 4_000_000_000.0)  # one record dated far ahead
    assert sanctions.detection_low(wall=110.0) == 4_000.0
    marks[0] = ClockMark(INPUT, 0, 5_000.0, 5_100.0)
    assert sanctions.detection_low(wall=145.0) == 5_000.0  # partition 1 quiet: 0 confirmed
    assert sanctions.detection_low(wall=200.0) == 4_000_000_000.0  # all quiet: the latest


def test_an_aligned_kind_holds_the_ladders_clock_while_its_events_wait() -> None:
    doctor = "claimstream.repartition.doctor"
    marks = [ClockMark(INPUT, 0, 9_000.0, 9_000.0), ClockMark(doctor, 0, 5_400.0, None, True)]
    sanctions, _ = world()
    sanctions.watermarks = lambda: marks
    assert sanctions.detection_low(wall=100.0) == 5_400.0  # released up to there
    marks[1] = ClockMark(doctor, 0, 5_400.0, None, False)
    assert sanctions.detection_low(wall=100.0) == 9_000.0
    marks[1] = ClockMark(doctor, 0, None, None, True)  # no watermark yet
    assert sanctions.detection_low(wall=100.0) is None


def test_ticks_follow_the_previous_low_watermark_once_the_sanctions_topics_are_read() -> None:
    detection = {0: 5_000.0}
    sanctions, w = world(detection=detection)
    assert sanctions.tick_watermark(wall=1.0) is None  # no earlier sample yet
    detection[0] = 9_000.0
    assert sanctions.tick_watermark(wall=2.0) == 5_000.0 - 60.0  # the previous sample
    w.app.consumer.highwaters[TP(ALERTS, 1)] = 10
    assert sanctions.tick_watermark(wall=3.0) is None  # alerts still to read
    sanctions.seen([Record(b"k", b"v", ALERTS, 1, offset) for offset in range(9)])
    assert sanctions.tick_watermark(wall=4.0) is None
    sanctions.seen([Record(b"k", b"v", ALERTS, 1, 9)])
    assert sanctions.tick_watermark(wall=5.0) == 9_000.0 - 60.0
    w.app.consumer.highwaters[TP(ALERTS, 0)] = 4
    w.app.consumer._committed_offset = {TP(ALERTS, 0): 4}  # read before a restart
    assert sanctions.tick_watermark(wall=6.0) == 9_000.0 - 60.0


async def test_outputs_go_before_state_and_dead_letters_are_counted() -> None:
    sanctions, w = world()
    writer = TableWriter(sanctions.table, CHANGELOG, REPARTITION_SUBJECT, w.publisher)
    result = Result(
        forwards=[(REPARTITION_ALERT, "alr-1", b"{}")],
        notices=[("patient:P1", {"schema": "warning.v1"})],
        writes={"patient:P1": ({"e": {}, "al": {}}, 1)},
    )
    result.dead_letters = sanctions.subjects.process(
        [Record(b"nobody", b"{}", REPARTITION_SUBJECT, 0, 3)]
    ).dead_letters
    await sanctions.emit(result, writer)
    assert w.log == [f"send {REPARTITION_ALERT}", f"send {NOTICES}", "sink", f"send {CHANGELOG}"]
    assert sanctions.table.data["patient:P1"] == {"e": {}, "al": {}}
    assert w.publisher.sent[-1] == (CHANGELOG, b"patient:P1", orjson.dumps({"e": {}, "al": {}}), 1)
    metrics = w.metrics.registry
    assert (
        metrics.get_sample_value("claimstream_dead_letters_total", {"reason": "invalid_envelope"})
        == 1
    )
    assert (
        metrics.get_sample_value("claimstream_sanction_notices_total", {"notice": "warning.v1"})
        == 1
    )


async def test_a_tick_expires_freezes_of_assigned_partitions_only() -> None:
    sanctions, w = world()
    writer = TableWriter(sanctions.table, CHANGELOG, REPARTITION_SUBJECT, w.publisher)
    records = []
    for i, day in enumerate((0, 1)):
        a = alert(f"a{i}", day, patient=None, doctor=None)
        envelope = orjson.dumps({"type": "alert", "alert": a.to_dict()})
        key = "institution:H1"
        records.append(
            Record(key.encode(), envelope, REPARTITION_SUBJECT, sanctions.subject_partition(key), i)
        )
    await sanctions.emit(sanctions.subjects.process(records), writer)
    assert [c.action for c in w.sink.commands] == ["FREEZE"]
    w.watermarks[0] = ts(3)
    assert await sanctions.tick(writer, 100) == 0  # the first sample only
    w.app.consumer.tps = set()  # nothing assigned: nothing ticked
    assert await sanctions.tick(writer, 100) == 0
    assert [c.action for c in w.sink.commands] == ["FREEZE"]
    w.app.consumer.tps = {TP(REPARTITION_SUBJECT, p) for p in range(2)}
    assert await sanctions.tick(writer, 100) == 1
    assert sanctions.watermark() == ts(3) - 60.0
    assert [c.action for c in w.sink.commands] == ["FREEZE", "UNFREEZE"]
    w.app.rebalancing = True
    assert await sanctions.tick(writer, 100) == 0


async def test_a_batch_that_failed_half_way_gives_the_same_outputs_when_processed_again() -> None:
    sanctions, w = world()
    writer = TableWriter(sanctions.table, CHANGELOG, REPARTITION_SUBJECT, w.publisher)
    key = "institution:H1"

    def record(day: int) -> Record:
        a = alert(f"a{day}", day, patient=None, doctor=None)
        value = orjson.dumps({"type": "alert", "alert": a.to_dict()})
        return Record(
            key.encode(), value, REPARTITION_SUBJECT, sanctions.subject_partition(key), day
        )

    await sanctions.emit(sanctions.subjects.process([record(0)]), writer)  # warned, stored
    stored = orjson.dumps(sanctions.table.data[key])

    async def broken(outputs: Any) -> None:
        raise ConnectionError("registry gone")

    working, w.sink.write = w.sink.write, broken
    w.sinks.stopping = True  # so the sink is not retried forever
    first = sanctions.subjects.process([record(1)])
    assert [c.action for c in first.commands] == ["FREEZE"]
    with contextlib.suppress(ConnectionError):
        await sanctions.emit(first, writer)
    assert orjson.dumps(sanctions.table.data[key]) == stored  # untouched: nothing went out
    w.sink.write = working
    again = sanctions.subjects.process([record(1)])
    assert [c.command_id for c in again.commands] == [c.command_id for c in first.commands]
