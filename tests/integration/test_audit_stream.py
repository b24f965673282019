"""The audit agent in a real worker on the real broker: alerts, commands and actions chained
per source partition into claimstream.audit.v1; `claimstream audit verify --topic` passes on
it and names a deliberately altered record (a copy of the trail with one record changed, in a
fresh topic) and a record removed from a file dump.

Sanctions are disabled in this worker (the audit must stand on its own); the actions are
produced straight to claimstream.actions.v1.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from claimstream.audit import AuditChain
from claimstream.audit.canonical import digest
from claimstream.audit.checkpoint import Checkpointer
from claimstream.audit.intake import AuditIntake
from claimstream.audit.keyfiles import write_key_files
from claimstream.audit.keys import HmacKey, HmacKeyRing, Signer
from claimstream.audit.store import DirectoryStore
from claimstream.cli.main import main
from claimstream.devtools.localbroker import LocalBroker
from claimstream.devtools.simulate import generate
from claimstream.kafka.reader import TopicReader, TopicRecord
from claimstream.model.outputs import Scope
from claimstream.sanctions.actions import ManualUnfreeze, Verdict
from claimstream.sanctions.codec import action_key, action_to_dict
from tests.audit.test_intake import inputs as intake_inputs
from tests.integration.stream_support import (
    PARTITIONS,
    WorkerProcess,
    event_messages,
    log_tail,
    produce,
    recent_start,
    start_broker,
    wait_for,
)

pytestmark = pytest.mark.integration
ALERTS = "claimstream.alerts.v1"
COMMANDS = "claimstream.commands.v1"
ACTIONS = "claimstream.actions.v1"
AUDIT = "claimstream.audit.v1"
DEAD = "claimstream.dead-letter.v1"
SOURCES = {ALERTS: "alerts", COMMANDS: "commands", ACTIONS: "actions"}
BAD = [(ALERTS, b"A1", b"not json"), (ACTIONS, b"X1", b'{"type": "review"}')]


def read(bootstrap: str, topic: str) -> list[TopicRecord]:
    async def run() -> list[TopicRecord]:
        async with TopicReader(bootstrap, topic) as reader:
            return await reader.read_new()

    return asyncio.run(run())


def actions() -> list[tuple[str, bytes, bytes]]:
    people: list[Any] = [
        Verdict(
            f"alr-{n}",
            "confirmed" if n % 3 else "false_positive",
            "li",
            f"2026-03-0{n}T10:00:00+08:00",
        )
        for n in range(1, 8)
    ]
    people += [
        ManualUnfreeze(
            Scope("institution", f"H00{n}"), "appeal upheld", "wang", f"2026-03-0{n}T11:00:00+08:00"
        )
        for n in range(1, 5)
    ]
    return [(ACTIONS, action_key(a).encode(), orjson.dumps(action_to_dict(a))) for a in people]


@dataclass
class Trail:
    broker: LocalBroker
    sources: dict[tuple[str, int, int], TopicRecord]  # valid source records by origin
    audit: list[TopicRecord]
    dead: list[Any]


def chained(audit: list[TopicRecord]) -> set[tuple[str, int, int]]:
    out = set()
    for r in audit:
        origin = orjson.loads(r.value or b"{}").get("origin", {})
        out.add((origin.get("topic"), origin.get("partition"), origin.get("offset")))
    return out


@pytest.fixture(scope="module")
def trail(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trail]:
    broker = start_broker()
    worker = WorkerProcess(
        broker.url,
        env={"CLAIMSTREAM_SANCTIONS_ENABLED": "false"},
        log_path=tmp_path_factory.mktemp("audit") / "worker.log",
    )
    try:
        worker.start()
        events = list(generate(1500, seed=11, start=recent_start()))
        produce(broker.bootstrap, [*event_messages(events), *actions(), *BAD])
        bad = {(t, v) for t, _, v in BAD}

        def complete() -> Trail | None:
            assert worker.proc is not None and worker.proc.poll() is None, "worker exited"
            sources = {
                (r.topic, r.partition, r.offset): r
                for topic in SOURCES
                for r in read(broker.bootstrap, topic)
                if (r.topic, r.value) not in bad
            }
            alerts = sum(1 for t, _, _ in sources if t == ALERTS)
            if alerts < 5:
                return None
            audit = read(broker.bootstrap, AUDIT)
            if not set(sources) <= chained(audit):
                return None
            dead = [orjson.loads(r.value or b"") for r in read(broker.bootstrap, DEAD)]
            return Trail(broker, sources, audit, dead)

        # the alerts keep coming while the worker works through the events: wait until it is
        # idle (same counts twice) with everything chained
        previous: list[int] = []

        def settled() -> Trail | None:
            nonlocal previous
            found = complete()
            counts = [len(found.sources), len(found.audit)] if found else []
            stable = found if found and counts == previous else None
            previous = counts
            return stable

        found = wait_for(settled, 180, "every alert, command and action chained", interval=2)
        assert worker.stop() == 0
        yield found
    finally:
        worker.stop()
        broker.stop()


def test_every_source_record_is_chained_once_in_its_partition(trail: Trail) -> None:
    records = [orjson.loads(r.value or b"") for r in trail.audit]
    by_origin: dict[tuple[str, int, int], dict[str, Any]] = {}
    for audit_record, record in zip(trail.audit, records, strict=True):
        origin = record["origin"]
        key = (origin["topic"], origin["partition"], origin["offset"])
        assert by_origin.setdefault(key, record) == record  # copies only, never a fork
        assert audit_record.partition == origin["partition"] == record["partition"]
        assert record["source"] == SOURCES[origin["topic"]]
        assert record["hash"] == digest(record)
    assert set(by_origin) == set(trail.sources)
    for key, source in trail.sources.items():
        body = orjson.loads(source.value or b"")
        record = by_origin[key]
        if key[0] == ALERTS:
            assert (record["kind"], record["record_id"]) == ("alert", body["alert_id"])
        elif key[0] == COMMANDS:
            assert (record["kind"], record["record_id"]) == ("command", body["command_id"])
        else:
            assert record["kind"] in ("review", "manual") and record["body"]["by"] == body["by"]
    kinds = {r["kind"] for r in records}
    assert kinds == {"alert", "command", "review", "manual"}


def test_unreadable_records_are_dead_lettered_with_origin(trail: Trail) -> None:
    origins = {
        (d["origin"]["topic"], d["reason"])
        for d in trail.dead
        if d["origin"].get("topic") in SOURCES
    }
    assert origins == {(ALERTS, "not_json"), (ACTIONS, "invalid_field")}


def test_verify_reads_the_topic_and_passes(
    trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["audit", "verify", "--topic", AUDIT, "--bootstrap", trail.broker.bootstrap]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"OK: {len(chained(trail.audit))} record(s) in "), out
    assert main([*argv, "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["ok"] and {name.partition("/")[2] for name in report["heads"]} == set(
        SOURCES.values()
    )


def _copy_topic(bootstrap: str, name: str, records: list[tuple[int, bytes | None, bytes]]) -> None:
    async def run() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, PARTITIONS, 1)])
        finally:
            await admin.close()

    asyncio.run(run())
    produce_to(bootstrap, name, records)


def produce_to(bootstrap: str, topic: str, records: list[tuple[int, bytes | None, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        await producer.start()
        try:
            futures = [
                await producer.send(topic, value=v, key=k, partition=p) for p, k, v in records
            ]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(run())


def test_an_altered_record_in_the_topic_is_caught_and_named(
    trail: Trail, capsys: pytest.CaptureFixture[str]
) -> None:
    ordered = sorted(trail.audit, key=lambda r: (r.partition, r.offset))
    victim = next(
        i
        for i, r in enumerate(ordered)
        if orjson.loads(r.value or b"")["kind"] == "alert"
        and orjson.loads(r.value or b"")["seq"] > 0
    )
    records: list[tuple[int, bytes | None, bytes]] = []
    for i, r in enumerate(ordered):
        value = r.value or b""
        if i == victim:
            record = orjson.loads(value)
            record["body"]["severity"] = "info"  # someone downgrades an alert
            value = orjson.dumps(record)
        records.append((r.partition, r.key, value))
    tampered = "test.audit.tampered"
    _copy_topic(trail.broker.bootstrap, tampered, records)
    argv = ["audit", "verify", "--topic", tampered, "--bootstrap", trail.broker.bootstrap]
    assert main(argv) == 1
    out = capsys.readouterr().out
    original = orjson.loads(ordered[victim].value or b"")
    offset = sum(1 for r in ordered[:victim] if r.partition == ordered[victim].partition)
    expected = (
        f"changed: {tampered}[{original['partition']}]@{offset} "
        f"(chain {original['partition']}/alerts, seq {original['seq']}, {original['record_id']})"
    )
    assert expected in out, out


def test_a_record_removed_from_a_dump_is_caught(
    trail: Trail, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ordered = sorted(trail.audit, key=lambda r: (r.partition, r.offset))
    lines = [r.value or b"" for r in ordered]
    file = tmp_path / "audit.jsonl"
    file.write_bytes(b"\n".join(lines) + b"\n")
    assert main(["audit", "verify", "--file", str(file)]) == 0
    capsys.readouterr()
    gone = next(i for i, v in enumerate(lines) if orjson.loads(v)["seq"] == 1)
    file.write_bytes(b"\n".join(lines[:gone] + lines[gone + 1 :]) + b"\n")
    assert main(["audit", "verify", "--file", str(file)]) == 1
    assert "removed: line" in capsys.readouterr().out


def many_actions(count: int) -> list[tuple[str, bytes, bytes]]:
    people = [
        Verdict(
            f"alr-k{n}", "confirmed", "li", f"2026-03-01T10:{n // 60 % 60:02d}:{n % 60:02d}+08:00"
        )
        for n in range(count)
    ]
    return [(ACTIONS, action_key(a).encode(), orjson.dumps(action_to_dict(a))) for a in people]


def end_offsets(bootstrap: str, topic: str) -> int:
    """The sum of the partitions' end offsets (a quick lower bound of the records on Tansu)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async def run() -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
            return sum((await consumer.end_offsets(tps)).values())
        finally:
            await consumer.stop()

    return asyncio.run(run())


def action_origins(broker: LocalBroker) -> list[dict[str, Any]]:
    """The origin of every record on the actions topic."""
    return [
        {"topic": r.topic, "partition": r.partition, "offset": r.offset}
        for r in read(broker.bootstrap, ACTIONS)
    ]


def trickle(bootstrap: str, messages: list[tuple[str, bytes, bytes]]) -> None:
    """Produce `messages` 20 at a time, every 50 ms (the worker is killed while they flow)."""
    for start in range(0, len(messages), 20):
        produce(bootstrap, messages[start : start + 20])
        time.sleep(0.05)


@pytest.mark.both_stores
def test_sigkill_mid_trail_leaves_copies_not_forks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A worker killed while chaining: its successor recomputes the uncommitted records
    identically, so the topic verifies (copies counted as redelivery) and nothing is missing.
    Casework on: its agent is a second reader of the actions topic (docs/audit.md, "Across a
    crash": with it, this test failed every run before the consumer's `Handover`)."""
    broker = start_broker()
    env = {
        "CLAIMSTREAM_SANCTIONS_ENABLED": "false",
        "CLAIMSTREAM_CASES_ENABLED": "true",
        "CLAIMSTREAM_BATCH_SIZE": "40",
    }
    # the successor reopens the killed worker's (RocksDB) databases
    workers = [
        WorkerProcess(
            broker.url, env=env, log_path=tmp_path / f"w{n}.log", data_dir=tmp_path / "data"
        )
        for n in (1, 2)
    ]
    try:
        workers[0].start()
        total = 4000
        messages = many_actions(total)
        produce(broker.bootstrap, messages[:40])
        wait_for(lambda: len(read(broker.bootstrap, AUDIT)) >= 40, 120, "the worker to be ready")
        feeder = threading.Thread(target=trickle, args=(broker.bootstrap, messages[40:]))
        feeder.start()
        wait_for(lambda: end_offsets(broker.bootstrap, AUDIT) >= 600, 60, "more audit records")
        workers[0].kill()
        at_kill = len(chained(read(broker.bootstrap, AUDIT)))
        assert at_kill < total, f"the first worker finished before the kill ({at_kill})"
        workers[1].start()
        feeder.join(timeout=60)
        assert not feeder.is_alive()

        def explain() -> str:
            seen = chained(read(broker.bootstrap, AUDIT))
            expected = {(o["topic"], o["partition"], o["offset"]) for o in action_origins(broker)}
            missing = sorted(expected - seen)
            alive = workers[1].proc is not None and workers[1].proc.poll() is None
            return (
                f"missing {len(missing)} of {len(expected)}, first {missing[:5]}, "
                f"per partition {Counter(p for _, p, _ in missing)}; second worker alive: "
                f"{alive}, status {workers[1].status()}\n{log_tail(workers[1].log_path)}"
            )

        wait_for(
            lambda: len(chained(read(broker.bootstrap, AUDIT))) >= total,
            180,
            "every action chained after the restart",
            interval=1,
            explain=explain,
        )
        audit = read(broker.bootstrap, AUDIT)
        assert len(chained(audit)) == total
        argv = ["audit", "verify", "--topic", AUDIT, "--bootstrap", broker.bootstrap, "--json"]
        assert main(argv) == 0, capsys.readouterr().out
        result = orjson.loads(capsys.readouterr().out)
        assert result["records"] == total
        assert result["redelivered"] == len(audit) - total
        print(
            f"chained at the kill: {at_kill}; exact copies after the restart: {len(audit) - total}"
        )
    finally:
        for w in workers:
            w.stop()
        broker.stop()


@pytest.mark.both_stores
def test_a_second_worker_joining_mid_trail_forks_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Partition p of the audited topics, of the audit topic and of the chain changelog move
    together in a rebalance: one writer per chain before and after, so the trail verifies."""
    broker = start_broker()
    env = {"CLAIMSTREAM_SANCTIONS_ENABLED": "false", "CLAIMSTREAM_BATCH_SIZE": "40"}
    workers = [WorkerProcess(broker.url, env=env, log_path=tmp_path / f"w{n}.log") for n in (1, 2)]
    try:
        workers[0].start()
        total = 3000
        messages = many_actions(total)
        produce(broker.bootstrap, messages[:40])
        wait_for(lambda: len(read(broker.bootstrap, AUDIT)) >= 40, 120, "the worker to be ready")
        feeder = threading.Thread(target=trickle, args=(broker.bootstrap, messages[40:]))
        feeder.start()
        wait_for(lambda: end_offsets(broker.bootstrap, AUDIT) >= 400, 60, "more audit records")
        workers[1].start()
        feeder.join(timeout=90)
        assert not feeder.is_alive()
        wait_for(
            lambda: len(chained(read(broker.bootstrap, AUDIT))) >= total,
            180,
            "every action chained",
            interval=1,
        )
        both = [w.status() for w in workers]
        assert all(s is not None for s in both), "a worker is not answering"
        argv = ["audit", "verify", "--topic", AUDIT, "--bootstrap", broker.bootstrap, "--json"]
        assert main(argv) == 0, capsys.readouterr().out
        assert orjson.loads(capsys.readouterr().out)["records"] == total
    finally:
        for w in workers:
            w.stop()
        broker.stop()


def test_a_keyed_trail_on_the_topic_is_checked_against_its_checkpoints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The records the agent writes once it is given a key and a checkpoint writer (built here
    with the same pure intake), read back from the broker: intact, then a forged append on the
    topic, then a copy of the topic missing a chain's last record."""
    ring = HmacKeyRing((HmacKey.from_secret(bytes(range(32))),))
    signer = Signer.generate()
    (tmp_path / "public.pem").write_bytes(signer.public_pem())
    (tmp_path / "hmac.keys").write_text(base64.b64encode(bytes(range(32))).decode() + "\n")
    states: dict[int, Any] = {}
    intake = AuditIntake(states.get, chain=AuditChain(dedup_days=None, key=ring.current))
    result = intake.process([*intake_inputs(0), *intake_inputs(1)])
    states.update(result.states)
    checkpoints = Checkpointer(signer, DirectoryStore(tmp_path / "checkpoints"))
    assert len(checkpoints.observe(result.states)) == 2
    out = [(p, r["record_id"].encode(), orjson.dumps(r)) for p, r in result.records]
    broker = start_broker()
    try:
        keyed = "test.audit.keyed"
        _copy_topic(broker.bootstrap, keyed, out)
        argv = [
            "audit", "verify", "--bootstrap", broker.bootstrap,
            "--hmac-key-file", str(tmp_path / "hmac.keys"),
            "--public-key", str(tmp_path / "public.pem"),
            "--checkpoints", str(tmp_path / "checkpoints"),
        ]  # fmt: skip
        assert main([*argv, "--topic", keyed]) == 0
        assert "WARNING" not in capsys.readouterr().out
        last = [r for p, r in result.records if p == 0 and r["source"] == "actions"][-1]
        fake = {**last, "seq": last["seq"] + 1, "prev_hash": last["hash"], "record_id": "x"}
        fake["hash"] = digest(fake)
        produce_to(broker.bootstrap, keyed, [(0, b"x", orjson.dumps(fake))])
        assert main([*argv, "--topic", keyed]) == 1
        assert f"forged: {keyed}[0]@{len(out) // 2} (chain 0/actions" in capsys.readouterr().out
        cut = "test.audit.cut"
        _copy_topic(broker.bootstrap, cut, [m for m in out if m[2] != orjson.dumps(last)])
        assert main([*argv, "--topic", cut]) == 1
        assert "truncated: " in capsys.readouterr().out
    finally:
        broker.stop()


def test_a_keyed_worker_writes_macs_and_signed_checkpoints_that_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The worker itself, given keys: every record carries a MAC, checkpoints are signed into
    the directory (at once, and at shutdown), and `verify` with the keys passes the trail
    without a warning, then names a record forged on the topic without the HMAC key."""
    keys = write_key_files(tmp_path / "keys")
    checkpoints = tmp_path / "keys" / "checkpoints"
    env = {"CLAIMSTREAM_SANCTIONS_ENABLED": "false", **keys.environment(checkpoints)}
    broker = start_broker()
    worker = WorkerProcess(broker.url, env=env, log_path=tmp_path / "worker.log")
    try:
        worker.start()
        messages = many_actions(300)
        produce(broker.bootstrap, messages)
        wait_for(
            lambda: len(chained(read(broker.bootstrap, AUDIT))) >= len(messages),
            120,
            "every action chained",
        )
        assert worker.stop() == 0
        audit = [orjson.loads(r.value or b"") for r in read(broker.bootstrap, AUDIT)]
        assert {r["key_id"] for r in audit} == {keys.hmac_key_id}
        assert all(r.get("mac") for r in audit)
        assert any(checkpoints.iterdir())
        argv = [
            "audit", "verify", "--topic", AUDIT, "--bootstrap", broker.bootstrap,
            "--hmac-key-file", str(keys.ring), "--public-key", str(keys.public),
            "--checkpoints", str(checkpoints),
        ]  # fmt: skip
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert out.startswith("OK: ") and "WARNING" not in out, out
        # the newest record of one chain (partition and source), forged one further
        on_topic = [
            (r.partition, orjson.loads(r.value or b"")) for r in read(broker.bootstrap, AUDIT)
        ]
        partition, first = on_topic[0]
        chain = [r for p, r in on_topic if p == partition and r["source"] == first["source"]]
        last = max(chain, key=lambda r: r["seq"])
        fake = {**last, "seq": last["seq"] + 1, "prev_hash": last["hash"], "record_id": "x"}
        fake["hash"] = digest({k: v for k, v in fake.items() if k != "mac"})
        produce_to(broker.bootstrap, AUDIT, [(partition, b"x", orjson.dumps(fake))])
        assert main(argv) == 1
        assert "forged: " in capsys.readouterr().out
    finally:
        worker.stop()
        broker.stop()
