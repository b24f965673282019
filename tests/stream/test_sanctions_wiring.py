"""The sanctions wiring's own logic with fakes for faust: event time, outputs order, ticks."""

from __future__ import annotations

import asyncio
from collections import namedtuple
from types import SimpleNamespace
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from claimstream.metrics import Metrics
from claimstream.sanctions import Escalation
from claimstream.sanctions.processor import (
    ALERTS,
    NOTICES,
    REPARTITION_ALERT,
    REPARTITION_SUBJECT,
    Result,
)
from claimstream.settings import Settings
from claimstream.sinks.memory import MemorySink
from claimstream.stream.processor import Record
from claimstream.stream.sanctions import SanctionsRuntime, TableWriter
from tests.sanctions.support import alert, ts

TP = namedtuple("TP", "topic partition")
CHANGELOG = "claimstream-state-subject-changelog"


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
    settings = Settings(sanctions_tick_delay=60.0)

    async def started() -> None:
        return None

    runtime: Any = SimpleNamespace(
        settings=settings,
        pipelines={
            "patient": SimpleNamespace(
                processor=SimpleNamespace(watermarks=detection or {}), stopping=False
            )
        },
        metrics=Metrics(CollectorRegistry(), rules=["repeat_dispensing"], topics=[]),
        sinks=[sink],
        ensure_started=started,
    )
    app = SimpleNamespace(consumer=Consumer(), rebalancing=False, in_recovery=False)
    publisher = Publisher(log)
    subject_table = SimpleNamespace(data={})
    index_table = SimpleNamespace(data={})
    sanctions = SanctionsRuntime(
        app, runtime, publisher, Escalation(), subject_table, index_table, 2, 2
    )
    return sanctions, SimpleNamespace(log=log, sink=sink, publisher=publisher, app=app)


def test_watermark_follows_detection_only_once_the_sanctions_topics_are_read() -> None:
    sanctions, w = world(detection={0: 5_000.0, 1: 4_000.0})
    assert sanctions.watermark() == 5_000.0 - 60.0  # nothing fetched: caught up
    w.app.consumer.highwaters[TP(ALERTS, 1)] = 10
    assert sanctions.watermark() is None  # alerts still to read, no own time yet
    sanctions.seen([Record(b"k", b"v", ALERTS, 1, offset) for offset in range(9)])
    assert sanctions.watermark() is None
    sanctions.seen([Record(b"k", b"v", ALERTS, 1, 9)])
    assert sanctions.watermark() == 4_940.0
    sanctions.subjects.watermarks[0] = 6_000.0
    assert sanctions.watermark() == 6_000.0


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
    metrics = sanctions.runtime.metrics.registry
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
    sanctions.subjects.watermarks[0] = ts(3)
    w.app.consumer.tps = set()  # nothing assigned: nothing ticked
    assert await sanctions.tick(writer, 100) == 0
    w.app.consumer.tps = {TP(REPARTITION_SUBJECT, p) for p in range(2)}
    assert await sanctions.tick(writer, 100) == 1
    assert [c.action for c in w.sink.commands] == ["FREEZE", "UNFREEZE"]
    w.app.rebalancing = True
    assert await sanctions.tick(writer, 100) == 0
