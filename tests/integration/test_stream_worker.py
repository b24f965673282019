"""The stream worker end to end: real Tansu broker, real redis-server, `claimstream worker`.

One worker run over a mixed stream (simulated events with abuse injected, some keyed wrongly
or not at all, some redelivered, some malformed) feeds the first group of tests; the crash and
rebalance tests run their own brokers and workers.
"""

from __future__ import annotations

import base64
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from claimstream.devtools.localbroker import LocalBroker
from claimstream.devtools.simulate import generate
from tests.integration.stream_support import (
    PARTITIONS,
    WorkerProcess,
    describe,
    detection_command_ids,
    event_messages,
    killed_and_restarted,
    produce,
    read_topic,
    recent_start,
    replay_ids,
    start_broker,
    wait_for,
    wait_outputs,
)

pytestmark = pytest.mark.integration
ALERTS = "claimstream.alerts.v1"
COMMANDS = "claimstream.commands.v1"
DEAD = "claimstream.dead-letter.v1"
MALFORMED = [b"not json at all", b"\xff\xfe\x00", b'{"event_type": "dispense"}', b"[1, 2, 3]"]
_prefixes = itertools.count()


@pytest.fixture
def broker() -> Iterator[LocalBroker]:
    b = start_broker()
    try:
        yield b
    finally:
        b.stop()


@dataclass
class Run:
    bootstrap: str
    events: list[dict[str, Any]]
    alerts: list[Any]
    commands: list[Any]
    dead: list[Any]
    expected_alerts: set[str]
    expected_commands: set[str]
    replay_commands: list[Any]
    redis_url: str
    prefix: str
    worker: WorkerProcess
    rekeyed: int


@pytest.fixture(scope="module")
def run(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    broker = start_broker()
    prefix = f"it{next(_prefixes)}"
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    worker = WorkerProcess(
        broker.url,
        env={"CLAIMSTREAM_REDIS_URL": redis_url, "CLAIMSTREAM_REDIS_PREFIX": prefix},
        log_path=log,
    )
    try:
        events = list(generate(2500, seed=11, start=recent_start()))
        messages = event_messages(events)
        rekeyed = 0
        for i, (topic, _key, value) in enumerate(messages):
            # Consultations keep their key: high_frequency_consultation names its alert after
            # the consultation that completes the pattern *in arrival order*, so a re-keyed
            # (hence later) consultation changes the alert id (reported to the rules owner).
            if events[i]["event_type"] == "consultation":
                continue
            if i % 50 == 7:  # no key at all
                messages[i] = (topic, None, value)
                rekeyed += 1
            elif i % 37 == 3:  # keyed by something else than the patient
                messages[i] = (topic, b"H001", value)
                rekeyed += 1
        messages.extend(messages[100:120])  # redelivered: the same events a second time
        messages.extend(("settlement.dispensing.v1", b"P1", raw) for raw in MALFORMED)
        expected_alerts, expected_commands, replay_commands = replay_ids(events)
        worker.start()
        produce(broker.bootstrap, messages)
        alerts = wait_outputs(
            broker.bootstrap,
            ALERTS,
            lambda got: {v["alert_id"] for _, v in got} >= expected_alerts,
            timeout=120,
        )
        commands = read_topic(broker.bootstrap, COMMANDS)
        dead = wait_outputs(
            broker.bootstrap, DEAD, lambda got: len(got) >= len(MALFORMED), timeout=30
        )
        yield Run(
            broker.bootstrap,
            events,
            alerts,
            commands,
            dead,
            expected_alerts,
            expected_commands,
            replay_commands,
            redis_url,
            prefix,
            worker,
            rekeyed,
        )
    finally:
        worker.stop()
        broker.stop()
        if log.exists():
            print(log.read_text(errors="replace")[-4000:])


def test_alerts_equal_replay(run: Run) -> None:
    assert run.expected_alerts, "the simulated stream should contain abuse"
    assert {v["alert_id"] for _, v in run.alerts} == run.expected_alerts


def test_alerts_are_keyed_by_subject(run: Run) -> None:
    for key, value in run.alerts:
        assert key == value["subject"]["id"].encode()
        assert value["schema"] == "alert.v1"


def test_commands_equal_replay_and_are_keyed_by_scope(run: Run) -> None:
    assert detection_command_ids(run.commands) == run.expected_commands
    for key, value in run.commands:
        scope = value["scope"]
        expected = f"{scope['kind']}:{scope['id']}"
        if scope.get("drug_code"):
            expected += f":{scope['drug_code']}"
        assert key == expected.encode()


def test_freeze_keys_in_redis_answer_in_one_get(run: Run) -> None:
    client = redis.Redis.from_url(run.redis_url)
    now = time.time()
    live = [
        c
        for c in run.replay_commands
        if c.action == "FREEZE" and c.expires_at and _ts(c.expires_at) > now + 60
    ]
    assert live, "some freezes should still be in force (the stream reaches into the future)"
    for c in live:
        key = f"{run.prefix}:freeze:{c.scope.key()}"
        assert client.get(key) is not None, key
        assert client.pttl(key) > 0
    c = live[0]
    path = f"/freezes/{c.scope.kind}/{c.scope.id}"
    if c.scope.drug_code:
        path += f"?drug_code={c.scope.drug_code}"
    answer = run.worker.get(path)
    assert answer["frozen"] is True
    client.close()


def test_malformed_messages_go_to_dead_letter_with_origin(run: Run) -> None:
    letters = [v for _, v in run.dead if v["reason"] != "late"]
    assert sorted(base64.b64decode(v["raw_b64"]) for v in letters) == sorted(MALFORMED)
    reasons = {v["reason"] for v in letters}
    assert reasons <= {"not_json", "not_utf8", "not_object", "missing_field"}
    for v in letters:
        assert v["origin"]["topic"] == "settlement.dispensing.v1"
        assert 0 <= v["origin"]["partition"] < PARTITIONS
        assert v["origin"]["offset"] >= 0


def test_wrong_and_missing_keys_are_rekeyed_through_the_repartition_topic(run: Run) -> None:
    rekeyed = read_topic(run.bootstrap, "claimstream.repartition.patient")
    assert len(rekeyed) >= run.rekeyed
    for key, value in rekeyed:
        assert key == value["patient_id"].encode()


def test_duplicates_change_nothing(run: Run) -> None:
    ids = [v["alert_id"] for _, v in run.alerts]
    # at-least-once may repeat an alert record, but never invents one: the set equals replay's
    assert set(ids) == run.expected_alerts
    status = run.worker.status()
    assert status is not None and status["duplicates"] >= 20


def _ts(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


@pytest.mark.both_stores
def test_sigkill_mid_stream_loses_nothing(broker: LocalBroker, tmp_path: Path) -> None:
    """Issue #3. The kill comes early (often before the first commit), so the restarted worker
    starts partitions with and without committed offsets; it used to skip records that faust
    dropped from the agent queue around its post-rebalance seek (see stream/batches.py and
    stream/consumer.py), about 1 run in 5, and once more two consecutive records of one
    partition before the consumer handed each partition over in offset order, none skipped
    (`consumer.Handover`). On RocksDB the successor reopens the killed worker's databases."""
    run = killed_and_restarted(broker, tmp_path, seed=23)
    assert run.alert_ids() == run.expected_alerts, run.explain()
    assert detection_command_ids(run.commands) == run.expected_commands


@pytest.mark.both_stores
def test_second_worker_joining_mid_stream(broker: LocalBroker, tmp_path: Path) -> None:
    events = list(generate(6000, seed=31, start=recent_start()))
    expected_alerts, expected_commands, _ = replay_ids(events)
    messages = event_messages(events)
    half = len(messages) // 2
    produce(broker.bootstrap, messages[:half])
    first = WorkerProcess(broker.url, log_path=tmp_path / "a.log").start()
    second = WorkerProcess(broker.url, log_path=tmp_path / "b.log")
    try:
        first.wait_records(half // 2)
        second.start()
        # the second half is produced once the group has rebalanced onto both workers
        wait_for(
            lambda: (second.status() or {}).get("assigned"), 90, "the second worker's partitions"
        )
        produce(broker.bootstrap, messages[half:])
        # the second worker recovers its partitions' tables before it reads (on RocksDB into
        # databases of its own): its first records may come after every alert did (the abuse
        # may all lie in the first half)
        wait_for(
            lambda: (second.status() or {}).get("records", 0) > 0,
            120,
            "the second worker to take records of the partitions it took over",
        )
        alerts = wait_outputs(
            broker.bootstrap,
            ALERTS,
            lambda got: {v["alert_id"] for _, v in got} >= expected_alerts,
            timeout=180,
        )
        commands = read_topic(broker.bootstrap, COMMANDS)
        a, b = first.status(), second.status()
        assert a is not None and b is not None
        assert b["records"] > 0, "the second worker should have taken partitions over"
    finally:
        second.stop()
        first.stop()
    got = {v["alert_id"] for _, v in alerts}
    assert got == expected_alerts, describe(alerts, expected_alerts, events)
    assert detection_command_ids(commands) == expected_commands


def test_metrics_endpoint_counts_without_ids(run: Run) -> None:
    import urllib.request

    url = f"http://127.0.0.1:{run.worker.port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    consumed = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("claimstream_events_consumed_total{")
    ]
    assert sum(consumed) >= len(run.events)
    assert 'claimstream_dead_letters_total{reason="not_json"}' in text
    assert "claimstream_alerts_total{" in text
    for event in run.events[:50]:
        assert event["patient_id"] not in text


def test_metrics_add_up_the_amounts_of_the_alerts(run: Run) -> None:
    import urllib.request

    url = f"http://127.0.0.1:{run.worker.port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    flagged = sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("claimstream_violation_amount_yuan_total{") and 'source="stream"' in line
    )
    expected = sum(v["amount"] for _, v in run.alerts if v.get("amount") is not None)
    assert expected > 0  # the simulated stream has priced alerts (a duplicate exam)
    assert flagged == pytest.approx(expected)
