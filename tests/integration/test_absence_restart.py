"""An `absence` rule's timer lives in the key's state: a worker killed while it waits leaves it
in the changelog, and its successor fires it once the key's watermark passes the deadline, once,
dated at the deadline."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from claimstream.cli.main import main
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
#: a claim over 1000 yuan not followed within 2 h by a refund claim (a negative total)
RULE = """
[custom_rules.unrefunded_claim]
template = "absence"
event_types = ["claim"]
filter_a = "event.total_amount > 1000.0"
filter_b = "event.total_amount < 0.0"
within_hours = 2
mode = "enforce"
"""
ENV = {"CLAIMSTREAM_ENGINE__ALLOWED_LATENESS_HOURS": "1"}


@pytest.fixture
def broker(broker_at: Callable[[int], LocalBroker]) -> LocalBroker:
    """A private broker with every declared topic at `PARTITIONS`."""
    return broker_at(PARTITIONS)


def claim(n: int, at: datetime, total: float) -> dict[str, Any]:
    return {
        "event_id": f"abs-{n}",
        "event_type": "claim",
        "occurred_at": at.isoformat(),
        "patient_id": "P-ABS",
        "institution_id": "H001",
        "claim_id": f"C-abs-{n}",
        "visit_type": "outpatient",
        "total_amount": total,
        "fund_amount": max(total, 0.0) * 0.7,
    }


def fired(bootstrap: str) -> list[dict[str, Any]]:
    return [v for _, v in read_topic(bootstrap, ALERTS) if v["rule"] == "unrefunded_claim"]


@pytest.mark.both_stores
def test_an_absence_timer_survives_a_sigkill_and_fires_once_in_the_successor(
    broker: LocalBroker, tmp_path: Path
) -> None:
    data = tmp_path / "data"  # the successor reopens the killed worker's (RocksDB) databases
    first = WorkerProcess(broker.url, env=ENV, log_path=tmp_path / "w1.log", data_dir=data)
    first.start()
    second = WorkerProcess(broker.url, env=ENV, log_path=tmp_path / "w2.log", data_dir=data)
    try:
        file = tmp_path / "rule.toml"
        file.write_text(RULE, encoding="utf-8")
        assert main(["rules", "add", str(file), "--bootstrap", broker.bootstrap]) == 0
        wait_for(lambda: (first.status() or {}).get("config_version") == 2, 60, "version 2")
        t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
        produce(broker.bootstrap, event_messages([claim(1, t0, 1500.0)]))
        first.wait_records(1)
        # one hour later (inside the 2 h): the timer is pending, nothing fired
        produce(broker.bootstrap, event_messages([claim(2, t0 + timedelta(hours=1), 80.0)]))
        first.wait_records(2)
        assert fired(broker.bootstrap) == []
        first.kill()

        second.start()
        wait_for(lambda: (second.status() or {}).get("config_version") == 2, 90, "version 2")
        # the key's watermark less the 1 h lateness passes the deadline (t0 + 2 h)
        produce(broker.bootstrap, event_messages([claim(3, t0 + timedelta(hours=4), 80.0)]))
        wait_for(lambda: fired(broker.bootstrap), 90, "the absence alert after the restart")
        produce(broker.bootstrap, event_messages([claim(4, t0 + timedelta(hours=6), 80.0)]))
        second.wait_records(2)
        [alert] = fired(broker.bootstrap)
        assert alert["event_ids"] == ["abs-1"]
        assert datetime.fromisoformat(alert["occurred_at"]) == t0 + timedelta(hours=2)
    finally:
        second.stop()
        first.stop()
