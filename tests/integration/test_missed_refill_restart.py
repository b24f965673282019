"""missed_refill's timer lives in the patient's state: a worker killed while it waits leaves it
in the changelog, and its successor tells the doctor once the patient's watermark passes the
end of the supply plus the grace, once, dated at that deadline."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from claimstream.devtools.localbroker import LocalBroker
from tests.integration.stream_support import (
    PARTITIONS,
    WorkerProcess,
    event_messages,
    produce,
    read_topic,
    wait_for,
)

pytestmark = pytest.mark.integration
ALERTS = "claimstream.alerts.v1"
#: a one-day supply plus 0.05 days (72 min) of grace: due 25 h 12 min after the dispensing
ENV = {
    "CLAIMSTREAM_ENGINE__ALLOWED_LATENESS_HOURS": "1",
    "CLAIMSTREAM_RULE__MISSED_REFILL__ENABLED": "true",
    "CLAIMSTREAM_RULE__MISSED_REFILL__GRACE_DAYS": "0.05",
}


@pytest.fixture
def broker(broker_at: Callable[[int], LocalBroker]) -> LocalBroker:
    """A private broker with every declared topic at `PARTITIONS`."""
    return broker_at(PARTITIONS)


def dispensing(n: int, at: datetime, drug: str, atc: str, *, chronic: bool) -> dict[str, Any]:
    return {
        "event_id": f"mr-{n}",
        "event_type": "dispense",
        "occurred_at": at.isoformat(),
        "patient_id": "P-MR",
        "institution_id": "H001",
        "doctor_id": "D001-01",
        "drug_code": drug,
        "atc_code": atc,
        "days_supply": 1,
        "quantity": 1,
        "chronic": chronic,
    }


def amlodipine(n: int, at: datetime) -> dict[str, Any]:
    return dispensing(n, at, "XC08CA01", "C08CA01", chronic=True)


def paracetamol(n: int, at: datetime) -> dict[str, Any]:
    """Refills nothing, times nothing: it only moves the patient's watermark."""
    return dispensing(n, at, f"XN02BE0{n}", "N02BE01", chronic=False)


def notices(bootstrap: str) -> list[dict[str, Any]]:
    return [v for _, v in read_topic(bootstrap, ALERTS) if v["rule"] == "missed_refill"]


@pytest.mark.both_stores
def test_a_missed_refill_timer_survives_a_sigkill_and_fires_once_in_the_successor(
    broker: LocalBroker, tmp_path: Path
) -> None:
    data = tmp_path / "data"  # the successor reopens the killed worker's (RocksDB) databases
    first = WorkerProcess(broker.url, env=ENV, log_path=tmp_path / "w1.log", data_dir=data)
    first.start()
    second = WorkerProcess(broker.url, env=ENV, log_path=tmp_path / "w2.log", data_dir=data)
    try:
        t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=5)
        produce(broker.bootstrap, event_messages([amlodipine(1, t0)]))
        first.wait_records(1)
        # two hours later: the timer is pending, nothing told
        produce(broker.bootstrap, event_messages([paracetamol(2, t0 + timedelta(hours=2))]))
        first.wait_records(2)
        assert notices(broker.bootstrap) == []
        first.kill()

        second.start()
        # the watermark less the 1 h lateness passes the deadline (t0 + 25 h 12 min)
        later = t0 + timedelta(hours=27)
        produce(broker.bootstrap, event_messages([paracetamol(3, later)]))
        wait_for(lambda: notices(broker.bootstrap), 90, "the notice after the restart")
        produce(broker.bootstrap, event_messages([paracetamol(4, later + timedelta(hours=2))]))
        second.wait_records(2)
        [notice] = notices(broker.bootstrap)
        assert notice["event_ids"] == ["mr-1"] and notice["severity"] == "info"
        assert notice["doctor_id"] == "D001-01"
        deadline = t0 + timedelta(days=1.05)
        assert datetime.fromisoformat(notice["occurred_at"]) == deadline
    finally:
        second.stop()
        first.stop()
