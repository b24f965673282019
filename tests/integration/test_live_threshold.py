"""A threshold changed on the control topic while events flow: later events see the new one,
earlier events keep what the old one decided, and the worker never restarts."""

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


@pytest.fixture
def broker(broker_at: Callable[[int], LocalBroker]) -> LocalBroker:
    """A private broker with every declared topic at `PARTITIONS`."""
    return broker_at(PARTITIONS)


def readmission(patient: str, start: datetime, gap_hours: float) -> list[dict[str, Any]]:
    """A stay at H1, then an admission at H2 `gap_hours` after the discharge (another
    diagnosis family, so only readmission_24h can fire, never split_hospitalization)."""

    def event(n: int, kind: str, at: datetime, inst: str, stay: str, dx: str) -> dict[str, Any]:
        return {
            "event_id": f"{patient}-{n}",
            "event_type": kind,
            "occurred_at": at.isoformat(),
            "patient_id": patient,
            "institution_id": inst,
            "admission_id": stay,
            "diagnosis_code": dx,
        }

    discharged = start + timedelta(days=3)
    return [
        event(1, "admission", start, "H1", f"{patient}-S1", "I10"),
        event(2, "discharge", discharged, "H1", f"{patient}-S1", "I10"),
        event(
            3, "admission", discharged + timedelta(hours=gap_hours), "H2", f"{patient}-S2", "J18.9"
        ),
    ]


def alerts_of(bootstrap: str) -> dict[str, dict[str, Any]]:
    return {v["patient_id"]: v for _, v in read_topic(bootstrap, ALERTS)}


def test_a_threshold_change_applies_to_later_events_without_restart(
    broker: LocalBroker, tmp_path: Path
) -> None:
    worker = WorkerProcess(broker.url, log_path=tmp_path / "worker.log").start()
    try:
        start = datetime.now(UTC) - timedelta(days=5)
        # Before the change: 30 h and 12 h after discharge; only the 12 h one is under 24 h.
        produce(
            broker.bootstrap,
            event_messages(
                readmission("P-BEFORE-30H", start, 30) + readmission("P-BEFORE-12H", start, 12)
            ),
        )
        wait_for(lambda: "P-BEFORE-12H" in alerts_of(broker.bootstrap), 90, "the first alert")
        worker.wait_records(6)
        assert (worker.status() or {}).get("config_version") == 1
        pid = worker.proc.pid if worker.proc else None

        code = main(
            [
                "rules",
                "set",
                "readmission_24h",
                "max_gap_hours=48",
                "--by",
                "test",
                "--bootstrap",
                broker.bootstrap,
            ]
        )
        assert code == 0
        wait_for(lambda: (worker.status() or {}).get("config_version") == 2, 30, "version 2")

        # After the change: 30 h now alerts (48 h threshold); 60 h still does not.
        produce(
            broker.bootstrap,
            event_messages(
                readmission("P-AFTER-30H", start, 30) + readmission("P-AFTER-60H", start, 60)
            ),
        )
        wait_for(lambda: "P-AFTER-30H" in alerts_of(broker.bootstrap), 60, "the later alert")
        worker.wait_records(12)

        alerts = alerts_of(broker.bootstrap)
        assert set(alerts) == {"P-BEFORE-12H", "P-AFTER-30H"}
        assert alerts["P-BEFORE-12H"]["rule_version"] == 1
        assert alerts["P-AFTER-30H"]["rule_version"] == 2
        assert alerts["P-AFTER-30H"]["details"]["max_gap_hours"] == 48.0
        assert worker.proc is not None and worker.proc.poll() is None and worker.proc.pid == pid
    finally:
        worker.stop()


def test_an_invalid_change_is_refused_and_the_worker_keeps_its_config(
    broker: LocalBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    worker = WorkerProcess(broker.url, log_path=tmp_path / "worker.log").start()
    try:
        wait_for(worker.status, 60, "the worker's web server")
        code = main(
            ["rules", "set", "readmission_24h", "max_gap_hours=-5", "--bootstrap", broker.bootstrap]
        )
        assert code == 2
        assert "refused, nothing published" in capsys.readouterr().err
        assert read_topic(broker.bootstrap, "claimstream.control.rules") == []
        assert (worker.status() or {}).get("config_version") == 1
    finally:
        worker.stop()
