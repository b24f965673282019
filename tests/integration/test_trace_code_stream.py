"""trace_code_reuse through a worker on the real local broker: a drug traceability code settled
at one institution and again at another gives the alert and the FREEZE of the second
institution, exactly what `replay` gives on the same events (issue #14).

The stream: a few days of simulated events (some dispensings carrying codes, one injected
resale), and at its end one pack settled twice: the later settlement produced first, on its
own input partition, and the earlier one redelivered. The worker re-keys each code through
`claimstream.repartition.trace_code` and holds the records until the input partitions'
watermark passes them (default 1 h lateness), so it sees the two settlements in event-time
order, as `replay` does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from claimstream.detection.config import DetectionConfig
from claimstream.detection.replay import ReplaySinks, replay
from claimstream.devtools.localbroker import LocalBroker
from claimstream.devtools.simulate import Simulator
from claimstream.model.partitioning import partition_for
from claimstream.rules import RULES
from tests.integration.stream_support import (
    TOPIC_OF,
    WorkerProcess,
    log_tail,
    produce,
    read_topic,
    wait_for,
)

pytestmark = pytest.mark.integration

PARTITIONS = 4
RULE = "trace_code_reuse"
CODE = "81234567890123456789"
#: input partitions read to their end and quiet this long release what still waits
IDLE_SECONDS = 3
ALERTS = "claimstream.alerts.v1"
COMMANDS = "claimstream.commands.v1"
DEAD = "claimstream.dead-letter.v1"


def config() -> DetectionConfig:
    return dataclasses.replace(DetectionConfig.default(), version=1)  # a worker's first version


def worker_env() -> dict[str, str]:
    return {
        "CLAIMSTREAM_PARTITIONS": str(PARTITIONS),
        # the defaults, over what stream_support gives every test worker
        "CLAIMSTREAM_ENGINE__ALLOWED_LATENESS_HOURS": "1",
        "CLAIMSTREAM_ENGINE__MAX_FUTURE_SKEW_MINUTES": "10",
        "CLAIMSTREAM_ENGINE__SOURCE_IDLE_SECONDS": str(IDLE_SECONDS),
        "CLAIMSTREAM_SANCTIONS_ENABLED": "false",
        "CLAIMSTREAM_AUDIT_ENABLED": "false",
    }


def resale(after: datetime, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pack settled at H-FIRST, then 30 minutes later at PH-SECOND, by patients on two
    different input partitions; in production order: the second first, the first twice."""
    template = next(e for e in events if e["event_type"] == "dispense")
    buyer, reseller = (
        "P-BUYER",
        next(
            f"P-RESELLER-{n}"
            for n in range(100)
            if partition_for(f"P-RESELLER-{n}", PARTITIONS) != partition_for("P-BUYER", PARTITIONS)
        ),
    )

    def settled(event_id: str, minutes: int, patient: str, inst: str) -> dict[str, Any]:
        when = (after + timedelta(minutes=minutes)).isoformat()
        return {
            **template,
            "event_id": event_id,
            "occurred_at": when,
            "patient_id": patient,
            "institution_id": inst,
            "trace_codes": [CODE],
        }

    first = settled("ev-resale-first", 10, buyer, "H-FIRST")
    second = settled("ev-resale-second", 40, reseller, "PH-SECOND")
    return [second, first, first]


@pytest.fixture
def broker(broker_at: Callable[[int], LocalBroker]) -> LocalBroker:
    """A private broker with every declared topic at `PARTITIONS`."""
    return broker_at(PARTITIONS)


def stream() -> list[dict[str, Any]]:
    """Four simulated days ending a day ago (in the past: the worker's future check), then the
    resale (the latest events of all)."""
    start = datetime.now(UTC) - timedelta(days=5)
    events = list(Simulator(3_000, seed=29, start=start, span_days=4, trace_codes=0.5).events())
    latest = max(datetime.fromisoformat(e["occurred_at"]) for e in events)
    return events + resale(latest, events)


def replayed(events: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    alerts: list[dict[str, Any]] = []
    commands: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    replay(
        (orjson.dumps(e) for e in events),
        ReplaySinks(alerts=alerts.append, commands=commands.append, dead_letters=dead.append),
        config=config(),
        clock="event",
        partitions=PARTITIONS,
    )
    assert dead == []
    return alerts, commands


def without_detected_at(alert: dict[str, Any]) -> bytes:
    return orjson.dumps({k: v for k, v in alert.items() if k != "detected_at"})


def test_a_code_settled_at_two_institutions_gives_the_alert_and_freeze_replay_gives(
    broker: LocalBroker, tmp_path: Path
) -> None:
    events = stream()
    alerts, commands = replayed(events)
    reuses = [a for a in alerts if a["rule"] == RULE]
    ours = [a for a in reuses if a["details"]["trace_code"] == CODE]
    assert len(ours) == 1 and len(reuses) >= 2  # the resale, and the simulator's injected one
    (alert,) = ours
    assert alert["subject"] == {"kind": "institution", "id": "PH-SECOND"}
    assert alert["event_ids"] == ["ev-resale-first", "ev-resale-second"]
    freezes = [c for c in commands if c["rule"] == RULE and c["alert_ids"] == [alert["alert_id"]]]
    assert [(c["action"], c["scope"]["kind"], c["scope"]["id"]) for c in freezes] == [
        ("FREEZE", "institution", "PH-SECOND")
    ]

    messages = [
        (TOPIC_OF[e["event_type"]], e["patient_id"].encode(), orjson.dumps(e)) for e in events
    ]
    produce(broker.bootstrap, messages)  # all of it before the worker starts
    worker = WorkerProcess(broker.url, env=worker_env(), log_path=tmp_path / "worker.log")
    expected_alerts = {without_detected_at(a) for a in alerts}
    got: set[bytes] = set()

    def settled() -> bool:
        nonlocal got
        got = {without_detected_at(v) for _, v in read_topic(broker.bootstrap, ALERTS)}
        return got >= expected_alerts

    try:
        worker.start()
        try:
            wait_for(settled, 180, "replay's alerts on the alerts topic", interval=1.0)
        except AssertionError as exc:
            missing = [orjson.loads(a)["rule"] for a in expected_alerts - got]
            raise AssertionError(f"{exc}; missing {missing}\n{log_tail(worker.log_path)}") from None
        streamed = [v for _, v in read_topic(broker.bootstrap, COMMANDS) if v["rule"] in RULES]
        letters = read_topic(broker.bootstrap, DEAD)
    finally:
        worker.stop()
    assert letters == []
    assert got == expected_alerts
    assert {orjson.dumps(c) for c in streamed} == {orjson.dumps(c) for c in commands}
