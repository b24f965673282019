"""Issue #15 through a worker on the local broker: a simulated quarter (March to June 2026 and
a fortnight of July) in which two tertiary hospitals bill 1.8 times their peers, produced at
once to 8 partitions and drained by one worker with the default 1 h lateness: the institution
months on `claimstream.indicators.v1` and every alert, `peer_outlier`'s included, are exactly
what `replay` gives on the same file (stream = replay, with both stages in each)."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from claimstream.detection.config import DetectionConfig
from claimstream.detection.replay import ReplaySinks, replay
from claimstream.devtools.localbroker import LocalBroker
from claimstream.devtools.simulate import Simulator
from tests.integration.stream_support import (
    TOPIC_OF,
    WorkerProcess,
    produce,
    read_topic,
    wait_for,
)

pytestmark = pytest.mark.integration

PARTITIONS = 8
ALERTS = "claimstream.alerts.v1"
INDICATORS = "claimstream.indicators.v1"
DEAD = "claimstream.dead-letter.v1"
#: the simulator's hospitals see 20-30 stays a month: compare from 20
MIN_VOLUME = 20
IDLE_SECONDS = 4


def config() -> DetectionConfig:
    out = DetectionConfig.default().with_rule_changes("peer_outlier", {"min_volume": MIN_VOLUME})
    return dataclasses.replace(out, version=1)  # a worker starts at version 1 (rule_version)


def worker_env() -> dict[str, str]:
    return {
        "CLAIMSTREAM_PARTITIONS": str(PARTITIONS),
        "CLAIMSTREAM_ENGINE__ALLOWED_LATENESS_HOURS": "1",
        "CLAIMSTREAM_ENGINE__MAX_FUTURE_SKEW_MINUTES": "10",
        "CLAIMSTREAM_ENGINE__SOURCE_IDLE_SECONDS": str(IDLE_SECONDS),
        "CLAIMSTREAM_SWEEP_INTERVAL": "2",
        "CLAIMSTREAM_SANCTIONS_ENABLED": "false",
        "CLAIMSTREAM_AUDIT_ENABLED": "false",
        "CLAIMSTREAM_RULE__PEER_OUTLIER__MIN_VOLUME": str(MIN_VOLUME),
    }


@dataclasses.dataclass
class Expected:
    alerts: set[bytes]
    records: set[bytes]
    outliers: set[str]


def without(record: dict[str, Any], *names: str) -> bytes:
    return orjson.dumps({k: v for k, v in record.items() if k not in names})


@pytest.fixture(scope="module")
def quarter() -> tuple[list[bytes], Expected]:
    events = Simulator(40_000, seed=7, span_days=160, drifting=2).events()
    lines = [orjson.dumps(e) for e in events]
    alerts: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    replay(
        lines,
        ReplaySinks(alerts=alerts.append, records=records.append, dead_letters=dead.append),
        config=config(),
        clock="event",
        partitions=PARTITIONS,
    )
    assert dead == []
    outliers = {a["institution_id"] for a in alerts if a["rule"] == "peer_outlier"}
    assert outliers == {"H006", "H007"}  # the comparison means something
    return lines, Expected(
        {without(a, "detected_at") for a in alerts},
        {orjson.dumps(r) for r in records},
        outliers,
    )


@pytest.fixture
def broker(broker_at: Callable[[int], LocalBroker]) -> LocalBroker:
    """A private broker with every declared topic at `PARTITIONS`."""
    return broker_at(PARTITIONS)


def messages(lines: list[bytes]) -> list[tuple[str, bytes, bytes]]:
    out = []
    for line in lines:
        event = orjson.loads(line)
        out.append((TOPIC_OF[event["event_type"]], event["patient_id"].encode(), line))
    return out


def streamed(bootstrap: str) -> tuple[set[bytes], set[bytes]]:
    alerts = {without(v, "detected_at") for _, v in read_topic(bootstrap, ALERTS)}
    records = {orjson.dumps(v) for _, v in read_topic(bootstrap, INDICATORS)}
    return alerts, records


def test_a_quarter_with_drifting_institutions_gives_replays_months_and_alerts(
    broker: LocalBroker, quarter: tuple[list[bytes], Expected], tmp_path: Path
) -> None:
    lines, expected = quarter
    produce(broker.bootstrap, messages(lines))
    worker = WorkerProcess(broker.url, env=worker_env(), log_path=tmp_path / "worker.log")
    got: tuple[set[bytes], set[bytes]] = (set(), set())

    def settled() -> bool:
        nonlocal got
        got = streamed(broker.bootstrap)
        # the peer-group agent has stored every month too (the benchmark reads its table)
        stored = ((worker.status() or {}).get("peers") or {}).get("stored", 0)
        return (
            got[0] >= expected.alerts
            and got[1] >= expected.records
            and stored >= len(expected.records)
        )

    try:
        worker.start()
        with contextlib.suppress(AssertionError):  # the comparison below says what differs
            wait_for(settled, 400, "replay's months and alerts on the topics", interval=2.0)
        time.sleep(3 * IDLE_SECONDS)  # anything more the worker would add
        alerts, records = streamed(broker.bootstrap)
        letters = [v["reason"] for _, v in read_topic(broker.bootstrap, DEAD)]
        status = worker.status() or {}
        benchmark = worker.get("/v1/institutions/H006/benchmark?month=2026-05")
    finally:
        worker.stop()
    assert letters == []
    assert records == expected.records, (len(records), len(expected.records))
    assert alerts == expected.alerts, sorted(
        orjson.loads(a)["rule"] for a in alerts ^ expected.alerts
    )
    peers = status.get("peers", {})
    assert peers.get("late") == 0 and peers.get("stored", 0) >= len(expected.records)
    # the benchmark endpoint reads the peer-group agent's table
    assert (benchmark["institution_id"], benchmark["peer_group"]) == ("H006", "tertiary")
