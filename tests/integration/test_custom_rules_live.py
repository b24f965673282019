"""A custom rule added with `claimstream rules add` is applied by a running worker within
seconds, without a restart, and its alerts carry the new configuration version."""

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
RULE = """
[custom_rules.high_cost_claims]
template = "window_count"
event_types = ["claim"]
filter = "event.total_amount > 1000.0"
window_days = 1
min_count = 2
mode = "enforce"
"""


@pytest.fixture
def broker(broker_at: Callable[[int], LocalBroker]) -> LocalBroker:
    """A private broker with every declared topic at `PARTITIONS`."""
    return broker_at(PARTITIONS)


def claims(patient: str, start: datetime) -> list[dict[str, Any]]:
    return [
        {
            "event_id": f"{patient}-{n}",
            "event_type": "claim",
            "occurred_at": (start + timedelta(hours=n)).isoformat(),
            "patient_id": patient,
            "institution_id": "H001",
            "claim_id": f"{patient}-C{n}",
            "visit_type": "outpatient",
            "total_amount": 1500.0,
            "fund_amount": 1000.0,
        }
        for n in range(2)
    ]


def custom_alerts(bootstrap: str) -> dict[str, dict[str, Any]]:
    return {
        v["patient_id"]: v
        for _, v in read_topic(bootstrap, ALERTS)
        if v["rule"] == "high_cost_claims"
    }


def test_a_rule_added_at_run_time_alerts_on_later_events_with_the_new_version(
    broker: LocalBroker, tmp_path: Path
) -> None:
    worker = WorkerProcess(broker.url, log_path=tmp_path / "worker.log").start()
    try:
        start = datetime.now(UTC) - timedelta(days=2)
        produce(broker.bootstrap, event_messages(claims("P-BEFORE", start)))
        worker.wait_records(2)
        assert (worker.status() or {}).get("config_version") == 1
        pid = worker.proc.pid if worker.proc else None

        file = tmp_path / "high_cost.toml"
        file.write_text(RULE, encoding="utf-8")
        assert main(["rules", "add", str(file), "--bootstrap", broker.bootstrap]) == 0
        wait_for(lambda: (worker.status() or {}).get("config_version") == 2, 30, "version 2")

        produce(broker.bootstrap, event_messages(claims("P-AFTER", start)))
        wait_for(lambda: "P-AFTER" in custom_alerts(broker.bootstrap), 60, "the custom alert")
        alerts = custom_alerts(broker.bootstrap)
        assert set(alerts) == {"P-AFTER"}
        assert alerts["P-AFTER"]["rule_version"] == 2
        assert worker.proc is not None and worker.proc.poll() is None and worker.proc.pid == pid
    finally:
        worker.stop()
