"""Issue #11's Done-when, on the real local broker: a month of events produced at once to 8
partitions, drained by one worker and by two (the second joining mid-drain, so the group
rebalances while events wait), with the default 1 h allowed lateness: no `late` dead letter,
and the alerts and detection commands `replay` gives on the same file with the same partition
count. And a worker killed while events wait for the watermark loses none of them.

The month is `claimstream simulate`'s generator with its span stretched so that February lies
whole inside it (January's last days, February, the first hours of March): then
`institution_cost_jump` closes February when the first claims of March arrive, and with the
thresholds below every institution and a few doctors are alerted, beside the patient rules.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from claimstream.detection.config import DetectionConfig
from claimstream.detection.replay import ReplaySinks, replay
from claimstream.devtools.localbroker import BrokerStartError, LocalBroker
from claimstream.devtools.simulate import Simulator
from claimstream.kafka.admin import apply_topics_sync
from claimstream.kafka.topology import load_topology
from claimstream.rules import RULES
from tests.integration.stream_support import (
    TOPIC_OF,
    WorkerProcess,
    produce,
    read_topic,
    wait_for,
)
from tests.support.services import unavailable

pytestmark = pytest.mark.integration

PARTITIONS = 8
ALERTS = "claimstream.alerts.v1"
COMMANDS = "claimstream.commands.v1"
DEAD = "claimstream.dead-letter.v1"
EVENTS = 40_000
#: what the worker and replay both run with: the default engine (1 h lateness, the slack equal
#: to it), thresholds a month of simulated doctors and institutions reach
RULE_CHANGES = {
    "doctor_consultation_rate": {"min_consultations": "3", "window_minutes": "600"},
    "institution_cost_jump": {"max_increase": "0.01"},
}
#: input partitions read to their end and quiet this long release what still waits
IDLE_SECONDS = 4


def config() -> DetectionConfig:
    out = DetectionConfig.default()
    for rule, changes in RULE_CHANGES.items():
        out = out.with_rule_changes(rule, changes)
    return dataclasses.replace(out, version=1)  # a worker starts at version 1 (rule_version)


def worker_env(idle_seconds: float = IDLE_SECONDS) -> dict[str, str]:
    env = {
        "CLAIMSTREAM_PARTITIONS": str(PARTITIONS),
        # the defaults, over what stream_support gives every test worker
        "CLAIMSTREAM_ENGINE__ALLOWED_LATENESS_HOURS": "1",
        "CLAIMSTREAM_ENGINE__MAX_FUTURE_SKEW_MINUTES": "10",
        "CLAIMSTREAM_ENGINE__SOURCE_IDLE_SECONDS": str(idle_seconds),
        "CLAIMSTREAM_SANCTIONS_ENABLED": "false",
        "CLAIMSTREAM_AUDIT_ENABLED": "false",
    }
    for rule, changes in RULE_CHANGES.items():
        for name, value in changes.items():
            env[f"CLAIMSTREAM_RULE__{rule.upper()}__{name.upper()}"] = value
    return env


def month(end: datetime, count: int = EVENTS, seed: int = 11) -> list[bytes]:
    """`count` simulated events whose last one lies just before `end`."""

    def events(start: datetime) -> list[dict[str, Any]]:
        return list(Simulator(count, seed=seed, start=start, span_days=35).events())

    probe = events(end)  # the span depends on count and seed only
    span = max(datetime.fromisoformat(e["occurred_at"]) for e in probe) - end
    return [orjson.dumps(e) for e in events(end - span - timedelta(seconds=1))]


@dataclass
class Expected:
    alerts: set[bytes]
    commands: set[bytes]
    rules: set[str]


def without(record: dict[str, Any], *names: str) -> bytes:
    return orjson.dumps({k: v for k, v in record.items() if k not in names})


def replayed(lines: list[bytes]) -> Expected:
    alerts: list[dict[str, Any]] = []
    commands: list[dict[str, Any]] = []
    dead: list[dict[str, Any]] = []
    replay(
        lines,
        ReplaySinks(alerts=alerts.append, commands=commands.append, dead_letters=dead.append),
        config=config(),
        clock="event",
        partitions=PARTITIONS,
    )
    assert dead == []
    return Expected(
        {without(a, "detected_at") for a in alerts},
        {orjson.dumps(c) for c in commands},
        {a["rule"] for a in alerts},
    )


def streamed_alerts(bootstrap: str) -> set[bytes]:
    return {without(v, "detected_at") for _, v in read_topic(bootstrap, ALERTS)}


def streamed_commands(bootstrap: str) -> set[bytes]:
    return {orjson.dumps(v) for _, v in read_topic(bootstrap, COMMANDS) if v["rule"] in RULES}


@pytest.fixture
def broker() -> Iterator[LocalBroker]:
    try:
        b = LocalBroker().start()
    except BrokerStartError as exc:
        unavailable(f"local broker unavailable: {exc}")
    try:
        report = apply_topics_sync(b.bootstrap, load_topology(partitions=PARTITIONS))
        assert report.in_sync, report.format_table()
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="module")
def february() -> tuple[list[bytes], Expected]:
    lines = month(datetime.fromisoformat("2026-03-01T14:00:00+08:00"))
    expected = replayed(lines)
    # the comparison means something: doctor and institution rules fire, commands are issued
    assert {"doctor_consultation_rate", "institution_cost_jump"} <= expected.rules
    assert expected.commands
    return lines, expected


def messages(lines: list[bytes]) -> list[tuple[str, bytes, bytes]]:
    out = []
    for line in lines:
        event = orjson.loads(line)
        out.append((TOPIC_OF[event["event_type"]], event["patient_id"].encode(), line))
    return out


def patient_records(worker: WorkerProcess) -> int:
    status = worker.status() or {}
    return int(status.get("records_by_kind", {}).get("patient", 0))


def outputs_settle(bootstrap: str, expected: Expected, timeout: float) -> set[bytes]:
    """The alerts on the topic once they include replay's (or the timeout passed)."""
    got: set[bytes] = set()

    def done() -> bool:
        nonlocal got
        got = streamed_alerts(bootstrap)
        return got >= expected.alerts

    try:
        wait_for(done, timeout, "replay's alerts on the alerts topic", interval=1.0)
    except AssertionError:
        return got
    time.sleep(2 * IDLE_SECONDS)  # anything more the worker would add
    return streamed_alerts(bootstrap)


def late_letters(bootstrap: str) -> list[str]:
    """Every dead letter, as its reason and detail (none is expected)."""
    return [f"{v['reason']}: {v.get('detail', '')[:160]}" for _, v in read_topic(bootstrap, DEAD)]


def describe(got: set[bytes], expected: set[bytes]) -> str:
    def short(raw: bytes) -> str:
        a = orjson.loads(raw)
        return f"{a['rule']} {a['subject']['id']} {a['occurred_at']}"

    return (
        f"stream only: {sorted(map(short, got - expected))}; "
        f"replay only: {sorted(map(short, expected - got))}"
    )


def test_a_month_drained_by_one_worker_gives_replays_alerts_and_commands_and_nothing_late(
    broker: LocalBroker, february: tuple[list[bytes], Expected], tmp_path: Path
) -> None:
    lines, expected = february
    produce(broker.bootstrap, messages(lines))  # all of it before the worker starts
    worker = WorkerProcess(broker.url, env=worker_env(), log_path=tmp_path / "worker.log")
    try:
        worker.start()
        got = outputs_settle(broker.bootstrap, expected, timeout=300)
        commands = streamed_commands(broker.bootstrap)
        letters = late_letters(broker.bootstrap)
    finally:
        worker.stop()
    assert letters == []
    assert got == expected.alerts, describe(got, expected.alerts)
    assert commands == expected.commands


@pytest.mark.both_stores
def test_a_month_drained_by_two_workers_the_second_joining_mid_drain_gives_replays_alerts(
    broker: LocalBroker, february: tuple[list[bytes], Expected], tmp_path: Path
) -> None:
    lines, expected = february
    produce(broker.bootstrap, messages(lines))
    first = WorkerProcess(broker.url, env=worker_env(), log_path=tmp_path / "first.log")
    second = WorkerProcess(broker.url, env=worker_env(), log_path=tmp_path / "second.log")
    try:
        first.start()
        wait_for(lambda: patient_records(first) >= 2_000, 120, "the first worker to start")
        second.start()
        wait_for(
            lambda: (second.status() or {}).get("assigned"), 120, "the second worker's partitions"
        )
        drained_before_the_rebalance = patient_records(first)
        got = outputs_settle(broker.bootstrap, expected, timeout=300)
        commands = streamed_commands(broker.bootstrap)
        letters = late_letters(broker.bootstrap)
        taken_over = patient_records(second)
    finally:
        second.stop()
        first.stop()
    assert drained_before_the_rebalance < len(lines), "the drain ended before the rebalance"
    assert taken_over > 0, "the second worker should have taken input partitions over"
    assert letters == []
    assert got == expected.alerts, describe(got, expected.alerts)
    assert commands == expected.commands


def waiting(worker: WorkerProcess) -> int:
    status = worker.status() or {}
    return sum(status.get("waiting_by_kind", {}).values())


@pytest.mark.both_stores
def test_a_worker_killed_while_events_wait_for_the_watermark_loses_none_of_them(
    broker: LocalBroker, february: tuple[list[bytes], Expected], tmp_path: Path
) -> None:
    """The waiting events' records are committed long before they are released: after a
    SIGKILL only `pending-<kind>` still has them (docs/time.md §7 item 4). The successor also
    reads again what was not committed and forwards again the input batch whose patient states
    were not delivered: copies of events its doctor and institution keys have seen, which it
    must know for what they are (the key's "at" and "in" marks) rather than judge them late."""
    lines, expected = february
    produce(broker.bootstrap, messages(lines))
    data = tmp_path / "data"  # the successor reopens the killed worker's (RocksDB) databases
    first = WorkerProcess(
        broker.url, env=worker_env(), log_path=tmp_path / "first.log", data_dir=data
    )
    try:
        first.start()
        wait_for(
            lambda: patient_records(first) >= 10_000 and waiting(first) > 0,
            180,
            "events waiting in the first worker",
        )
        first.kill()
    finally:
        first.stop()
    second = WorkerProcess(
        broker.url, env=worker_env(), log_path=tmp_path / "second.log", data_dir=data
    )
    try:
        second.start()
        got = outputs_settle(broker.bootstrap, expected, timeout=300)
        commands = streamed_commands(broker.bootstrap)
        letters = late_letters(broker.bootstrap)
        restored = (second.status() or {}).get("restored_by_kind", {})
    finally:
        second.stop()
    assert letters == []
    assert got == expected.alerts, describe(got, expected.alerts)
    assert commands == expected.commands
    assert sum(restored.values()) > 0, "the kill should have come while events waited"
