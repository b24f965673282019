"""The worker on the RocksDB store (`CLAIMSTREAM_STORE=rocksdb://`, the `rocksdb` extra): what
only this store does, on a real Tansu broker.

Each test runs its own broker and workers; every worker has a data directory of its own (a
RocksDB database is locked to one process), kept across a restart as a deployment keeps its
volume. The alerts and the detection rules' commands must equal what `replay` gives for the
same events, with the states on disk. The crash and two-worker tests run on both stores
(`both_stores` in test_stream_worker.py and others; docs/operations.md, "Running the tests on
RocksDB"), the whole suite with `CLAIMSTREAM_TEST_STORE=rocksdb://`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from claimstream.devtools.localbroker import LocalBroker
from claimstream.devtools.simulate import generate
from tests.integration.stream_support import (
    WorkerProcess,
    describe,
    detection_command_ids,
    event_messages,
    produce,
    read_topic,
    recent_start,
    replay_ids,
    start_broker,
    wait_outputs,
)
from tests.support.stores import ROCKSDB

pytestmark = pytest.mark.integration
ALERTS = "claimstream.alerts.v1"
COMMANDS = "claimstream.commands.v1"


@pytest.fixture
def broker() -> Iterator[LocalBroker]:
    b = start_broker()
    try:
        yield b
    finally:
        b.stop()


def rocksdb_worker(broker: LocalBroker, data_dir: Path, log: Path) -> WorkerProcess:
    return WorkerProcess(broker.url, store=ROCKSDB, data_dir=data_dir, log_path=log)


def databases(data_dir: Path, table: str) -> list[Path]:
    return sorted((data_dir / "v1" / "tables").glob(f"{table}-*.db"))


def all_alerts(bootstrap: str, expected: set[str], timeout: float) -> list[Any]:
    return wait_outputs(
        bootstrap, ALERTS, lambda got: {v["alert_id"] for _, v in got} >= expected, timeout
    )


def test_alerts_and_commands_equal_replay_on_rocksdb(broker: LocalBroker, tmp_path: Path) -> None:
    events = list(generate(4000, seed=41, start=recent_start()))
    expected_alerts, expected_commands, _ = replay_ids(events)
    assert expected_alerts, "the simulated stream should contain abuse"
    worker = rocksdb_worker(broker, tmp_path / "data", tmp_path / "worker.log").start()
    try:
        produce(broker.bootstrap, event_messages(events))
        alerts = all_alerts(broker.bootstrap, expected_alerts, timeout=150)
        commands = read_topic(broker.bootstrap, COMMANDS)
    finally:
        worker.stop()
    assert {v["alert_id"] for _, v in alerts} == expected_alerts, describe(
        alerts, expected_alerts, events
    )
    assert detection_command_ids(commands) == expected_commands
    assert databases(tmp_path / "data", "state-patient"), "the patients' states are on disk"


def test_a_restart_after_sigterm_keeps_the_state_on_rocksdb(
    broker: LocalBroker, tmp_path: Path
) -> None:
    """The second half of the stream needs the first half's state (refills, repeat visits of
    the same patients): the restarted worker finds it in its data directory."""
    events = list(generate(4000, seed=43, start=recent_start()))
    expected_alerts, expected_commands, _ = replay_ids(events)
    messages = event_messages(events)
    half = len(messages) // 2
    data = tmp_path / "data"
    produce(broker.bootstrap, messages[:half])
    first = rocksdb_worker(broker, data, tmp_path / "first.log").start()
    try:
        first.wait_records(half, timeout=120)
    finally:
        assert first.stop() == 0, "a worker stops cleanly on SIGTERM"
    assert databases(data, "state-patient")
    produce(broker.bootstrap, messages[half:])
    second = rocksdb_worker(broker, data, tmp_path / "second.log").start()
    try:
        alerts = all_alerts(broker.bootstrap, expected_alerts, timeout=150)
        commands = read_topic(broker.bootstrap, COMMANDS)
    finally:
        second.stop()
    assert {v["alert_id"] for _, v in alerts} == expected_alerts, describe(
        alerts, expected_alerts, events
    )
    assert detection_command_ids(commands) == expected_commands
