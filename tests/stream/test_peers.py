"""The peer-group agent's batch with fakes for faust: alerts to the sinks, the group's state to
its table and changelog, the benchmark's read."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
from prometheus_client import CollectorRegistry

from claimstream.detection.config import DetectionConfig
from claimstream.detection.engine import Engine
from claimstream.model.indicators import Figures, InstitutionMonth
from claimstream.model.records import Record
from claimstream.observability.metrics import Metrics
from claimstream.stream.codec import PartitionPointer
from claimstream.stream.detection.peers import INDICATORS_TOPIC, PeerGroups
from claimstream.testing import MemorySink

CHANGELOG = "claimstream-peer-groups-changelog"
GROUP = "tertiary:330100"


class Publisher:
    def __init__(self) -> None:
        self.sent: list[tuple[Any, ...]] = []

    async def send(self, records: Any) -> list[Any]:
        self.sent.extend(records)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return [done]


def agent(sink: MemorySink, publisher: Publisher, metrics: Metrics | None = None) -> PeerGroups:
    engine = Engine(DetectionConfig.default(), None)
    return PeerGroups(
        SimpleNamespace(data={}),
        lambda: engine,
        sinks=[sink],
        publisher=publisher,  # type: ignore[arg-type]
        changelog_topic=CHANGELOG,
        pointer=PartitionPointer(INDICATORS_TOPIC),
        metrics=metrics,
    )


def records() -> list[Record]:
    """12 institutions over three months, I01 60 % above the others, then April's first."""
    months = [
        InstitutionMonth(
            f"I{n:02d}",
            GROUP,
            label,
            Figures(
                visits=100, claims=100, indicators={"cost_per_visit": 180.0 if n == 1 else 100.0}
            ),
        )
        for label in ("2026-01", "2026-02", "2026-03")
        for n in range(1, 13)
    ]
    months.append(InstitutionMonth("I02", GROUP, "2026-04", Figures(visits=1)))
    return [
        Record(GROUP.encode(), orjson.dumps(m.to_dict()), INDICATORS_TOPIC, 3, offset, 0.0, ())
        for offset, m in enumerate(months)
    ]


async def test_a_batch_alerts_through_the_sinks_and_stores_the_group() -> None:
    sink, publisher = MemorySink(), Publisher()
    peers = agent(sink, publisher)
    await peers.handle(records())
    assert [(a.rule, a.institution_id) for a in sink.alerts] == [("peer_outlier", "I01")]
    assert {r[0] for r in publisher.sent} == {CHANGELOG}
    assert {r[3] for r in publisher.sent} == {3}  # the record's partition
    assert len(peers.months(GROUP)) == 37
    assert peers.closed_through(GROUP) == "2026-03"


async def test_a_batch_redelivered_after_a_crash_adds_no_other_alert() -> None:
    sink = MemorySink()
    peers = agent(sink, Publisher())
    await peers.handle(records()[:20])
    await peers.handle(records())  # the second batch again from its start: no state was lost
    assert len({a.alert_id for a in sink.alerts}) == 1
    assert peers.counters.duplicate == 12  # January, closed; February still open: replaced


async def test_a_record_that_is_not_an_institution_month_is_dead_lettered() -> None:
    sink = MemorySink()
    registry = CollectorRegistry()
    peers = agent(sink, Publisher(), Metrics(registry))
    bad = Record(b"g", b'{"month": "2026-01"}', INDICATORS_TOPIC, 0, 7, 0.0, ())
    await peers.handle([bad])
    [letter] = sink.dead_letters
    assert (letter.reason, letter.origin["offset"]) == ("processing_error", 7)
    value = registry.get_sample_value("claimstream_indicator_records_total", {"outcome": "invalid"})
    assert value == 1


async def test_outlier_alerts_are_counted_by_indicator_without_ids() -> None:
    registry = CollectorRegistry()
    peers = agent(MemorySink(), Publisher(), Metrics(registry))
    await peers.handle(records())
    assert (
        registry.get_sample_value(
            "claimstream_peer_outliers_total", {"indicator": "cost_per_visit"}
        )
        == 1
    )
    assert registry.get_sample_value("claimstream_peer_groups_evaluated_total") == 3


async def test_the_benchmark_reads_the_agents_table() -> None:
    from claimstream.detection.benchmark import from_source

    peers = agent(MemorySink(), Publisher())
    await peers.handle(records())
    assert (peers.peer_group("I01"), peers.peer_group("nobody")) == (GROUP, None)
    found = from_source(peers, "I01", "2026-03").to_dict()
    assert found["institution_id"] == "I01"
