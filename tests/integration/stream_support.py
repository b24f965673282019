"""Helpers for the worker tests: run `claimstream worker` processes, produce, read topics, replay.

Every process is started in its own session with a parent-death signal and stopped (or
killed) by its owner; waits poll a condition against a deadline, never sleep as an assertion.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from claimstream.detection.config import DetectionConfig
from claimstream.detection.decode import decode_event
from claimstream.detection.detector import Detector
from claimstream.devtools.localbroker import LocalBroker
from claimstream.devtools.simulate import generate
from claimstream.devtools.subproc import die_with_parent, free_port, terminate_group
from claimstream.kafka.topology import load_topology
from claimstream.model.events import Event
from claimstream.rules import RULES
from claimstream.sanctions.signatures import ActionSigner
from claimstream.stream.http.access import token_line
from tests.support import stores
from tests.support.brokers import start_broker_with_topics

ALERTS = "claimstream.alerts.v1"
COMMANDS = "claimstream.commands.v1"
TOPIC_OF = {
    "dispense": "settlement.dispensing.v1",
    "consultation": "settlement.consultations.v1",
    "admission": "settlement.stays.v1",
    "discharge": "settlement.stays.v1",
    "claim": "settlement.claims.v1",
}
#: The equality-with-replay tests run worker and replay with this lateness: the simulated
#: history packs a month into seconds, so cross-topic/partition interleaving during catch-up
#: spans hours of event time (see the report: the rules agree whenever reordering stays within
#: the allowed lateness, which is what this makes true).
LATENESS_HOURS = 100_000
#: the worker's future check (`max_future_skew_minutes`, 10 by default) would refuse the
#: simulated month's last days, which `recent_start` puts ahead of the wall clock on purpose
FUTURE_SKEW_MINUTES = 40 * 24 * 60
PARTITIONS = 4
#: what every test worker is given unless its test sets its own: an admin token (presented by
#: `WorkerProcess.get` and `auth`) and the key its API signs people's actions with; all test
#: workers share the key, so each trusts the others' actions (a worker trusts its own key), and
#: a test can sign an action as the API would with `TEST_SIGNER.sign(record)`
TEST_TOKEN = "cs_integration-tests-admin"
TEST_SIGNER = ActionSigner.generate()
#: a person every test worker trusts (its keyring lists this key under this name), for the
#: command line: `claimstream unfreeze ... --by wang.fang --signing-key person_key(folder)`
PERSON = "wang.fang"
PERSON_SIGNER = ActionSigner.generate()


def person_key(folder: Path) -> Path:
    """`PERSON`'s private key as a PEM file in `folder`."""
    path = folder / f"{PERSON}.pem"
    path.write_bytes(PERSON_SIGNER.private_pem())
    return path


def detection_config() -> DetectionConfig:
    return DetectionConfig.default().with_engine_changes({"allowed_lateness_hours": LATENESS_HOURS})


def recent_start(days_back: float = 25) -> datetime:
    """A stream start so that the last days of the simulated month lie ahead of the wall clock
    (freeze keys of those commands are still in force while the test runs)."""
    return datetime.now(UTC) - timedelta(days=days_back)


def replay_ids(events: Iterable[dict[str, Any]]) -> tuple[set[str], set[str], list[Any]]:
    """Alert ids, command ids and commands the core produces on `events` (in order)."""
    detector = Detector(detection_config(), clock=time.time)
    alerts: set[str] = set()
    commands: dict[str, Any] = {}
    for raw in events:
        decoded = decode_event(raw)
        if not isinstance(decoded, Event):
            continue
        result = detector.process(decoded)
        alerts.update(a.alert_id for a in result.alerts)
        for c in result.commands:
            commands[c.command_id] = c
    return alerts, set(commands), list(commands.values())


def detection_command_ids(commands: Iterable[Any]) -> set[str]:
    """Ids of the commands a detection rule issued (the commands topic also carries the
    sanctions ladder's, which `replay` does not produce), from `read_topic` records."""
    return {v["command_id"] for _, v in commands if v["rule"] in RULES}


def describe(alerts: list[Any], expected: set[str], events: Iterable[dict[str, Any]]) -> str:
    """Which rule and subject each differing alert belongs to (for assertion messages)."""
    detector = Detector(detection_config(), clock=time.time)
    replayed: dict[str, str] = {}
    for raw in events:
        decoded = decode_event(raw)
        if isinstance(decoded, Event):
            for a in detector.process(decoded).alerts:
                replayed[a.alert_id] = f"{a.rule} {a.subject.kind}:{a.subject.id} {a.event_ids}"
    streamed = {
        v["alert_id"]: f"{v['rule']} {v['subject']['kind']}:{v['subject']['id']} {v['event_ids']}"
        for _, v in alerts
    }
    extra = [streamed[i] for i in set(streamed) - expected]
    missing = [replayed.get(i, i) for i in expected - set(streamed)]
    return f"stream only: {extra}; replay only: {missing}"


@dataclass
class WorkerProcess:
    """One `claimstream worker` subprocess."""

    broker_url: str
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    #: the bearer token `get` presents (None: none)
    token: str | None = TEST_TOKEN
    #: the table store (None: `tests.support.stores.current()` at `start`; a
    #: `CLAIMSTREAM_STORE` in `env` wins), set to the one used once started
    store: str | None = None
    #: the worker's own data directory (None: `<log>-data` beside its log, or a temporary one
    #: removed on `stop` without a log; a `CLAIMSTREAM_DATA_DIR` in `env` wins), set once
    #: started; a successor given the same one reopens its RocksDB databases
    data_dir: Path | None = None
    _keys: str | None = None

    def auth(self) -> dict[str, str]:
        """The Authorization header of `token` (empty without one)."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _defaults(self) -> dict[str, str]:
        """The test token and signing key, unless the test configures its own."""
        defaults: dict[str, str] = {}
        tokens = ("CLAIMSTREAM_API_TOKENS", "CLAIMSTREAM_API_TOKENS_FILE")
        if not any(name in self.env for name in tokens):
            defaults["CLAIMSTREAM_API_TOKENS"] = token_line("tests", "admin", TEST_TOKEN)
        self._keys = tempfile.mkdtemp(prefix="claimstream-test-key-")
        if "CLAIMSTREAM_ACTION_SIGNING_KEY_FILE" not in self.env:
            key = Path(self._keys) / "api.pem"
            key.write_bytes(TEST_SIGNER.private_pem())
            defaults["CLAIMSTREAM_ACTION_SIGNING_KEY_FILE"] = str(key)
        if "CLAIMSTREAM_ACTION_KEYS_FILE" not in self.env:
            ring = Path(self._keys) / "keyring.pem"
            ring.write_text(PERSON_SIGNER.keyring_entry(PERSON))
            defaults["CLAIMSTREAM_ACTION_KEYS_FILE"] = str(ring)
        return defaults

    def _placement(self) -> dict[str, str]:
        """The store and data directory (see `store` and `data_dir`); after `_defaults`."""
        self.store = self.env.get("CLAIMSTREAM_STORE") or self.store or stores.current()
        stores.require(self.store)
        if "CLAIMSTREAM_DATA_DIR" in self.env:
            self.data_dir = Path(self.env["CLAIMSTREAM_DATA_DIR"])
        elif self.data_dir is None:
            if self.log_path is not None:
                self.data_dir = self.log_path.with_name(f"{self.log_path.stem}-data")
            else:
                assert self._keys is not None
                self.data_dir = Path(self._keys) / "data"
        return {"CLAIMSTREAM_STORE": self.store, "CLAIMSTREAM_DATA_DIR": str(self.data_dir)}

    def start(self) -> WorkerProcess:
        defaults = self._defaults()
        env = {
            **os.environ,
            "CLAIMSTREAM_BROKER_URL": self.broker_url,
            "CLAIMSTREAM_BROKER_FLAVOR": "tansu",
            "CLAIMSTREAM_WEB_PORT": str(self.port),
            "CLAIMSTREAM_PARTITIONS": str(PARTITIONS),
            "CLAIMSTREAM_ENGINE__ALLOWED_LATENESS_HOURS": str(LATENESS_HOURS),
            # the simulated month reaches days past the wall clock (recent_start): not a skew
            "CLAIMSTREAM_ENGINE__MAX_FUTURE_SKEW_MINUTES": str(FUTURE_SKEW_MINUTES),
            "CLAIMSTREAM_BATCH_WITHIN": "0.05",
            "CLAIMSTREAM_COMMIT_INTERVAL": "0.5",
            "CLAIMSTREAM_SESSION_TIMEOUT": "6",
            **defaults,
            **self._placement(),
            **self.env,
        }
        audit_keys = [n for n in self.env if n.startswith("CLAIMSTREAM_AUDIT_")]
        if not [n for n in audit_keys if n != "CLAIMSTREAM_AUDIT_ENABLED"]:  # a switch, not a key
            # tests of the audit's keys pass their own; the others chain unkeyed
            env["CLAIMSTREAM_AUDIT_UNKEYED"] = "true"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "claimstream", "worker", "--skip-topic-check"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        if out is not subprocess.DEVNULL:
            out.close()  # type: ignore[union-attr]
        return self

    def status(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status", timeout=2) as r:
                body: dict[str, Any] = orjson.loads(r.read())
                return body
        except OSError:
            return None

    def get(self, path: str) -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", headers=self.auth())
        with urllib.request.urlopen(request, timeout=5) as r:
            return orjson.loads(r.read())

    def wait_records(self, at_least: int, timeout: float = 90) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            assert self.proc is not None and self.proc.poll() is None, "worker exited"
            s = self.status()
            return s if s is not None and s["records"] >= at_least else None

        return wait_for(ready, timeout, f"worker to handle {at_least} records")

    def kill(self) -> None:
        """SIGKILL, no goodbye: what a crash or an OOM kill looks like."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        terminate_group(self.proc, timeout=20)
        if self._keys is not None:
            shutil.rmtree(self._keys, ignore_errors=True)
            self._keys = None
        return self.proc.returncode


def wait_for(
    check: Callable[[], Any],
    timeout: float,
    what: str,
    interval: float = 0.2,
    explain: Callable[[], str] | None = None,
) -> Any:
    """`check()` once it is truthy; on timeout an AssertionError naming `what`, with what
    `explain()` says of the state at that moment (for a failure seen only on CI)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f"\n{explain()}" if explain is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)


def log_tail(path: Path | None, lines: int = 40) -> str:
    """The last `lines` lines of a worker's log (for a timeout's message)."""
    if path is None or not path.exists():
        return "(no log)"
    text = path.read_text(errors="replace").splitlines()
    return "\n".join(line[:300] for line in text[-lines:])


Message = tuple[str, bytes | None, bytes]  # topic, key, value


def event_messages(events: Iterable[dict[str, Any]]) -> list[Message]:
    return [(TOPIC_OF[e["event_type"]], e["patient_id"].encode(), orjson.dumps(e)) for e in events]


def produce(bootstrap: str, messages: Iterable[Message]) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        await producer.start()
        try:
            futures = [await producer.send(t, value=v, key=k) for t, k, v in messages]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(run())


def start_broker() -> LocalBroker:
    """A private local broker with every declared topic at `PARTITIONS`; the caller stops it."""
    return start_broker_with_topics(PARTITIONS)


def partition_count(topic: str) -> int:
    """How many partitions `topic` has on the test brokers (topics.toml with `PARTITIONS`)."""
    return load_topology(partitions=PARTITIONS).topic(topic).partitions


def read_topic(bootstrap: str, topic: str, idle: float = 0.5) -> list[Any]:
    """Every record of `topic` from the beginning, as (key, decoded JSON value) pairs.

    Reads every partition the broker has for the topic (whatever partition count the test's
    broker was set up with), so no caller has to know it.
    """

    async def run() -> list[Any]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            await consumer.topics()  # fetches the cluster metadata
            partitions = consumer.partitions_for_topic(topic)
            assert partitions, f"{topic} is not on the broker"
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends = await consumer.end_offsets(tps)
            out: list[Any] = []
            # Until the end offsets are reached *and* a fetch comes back empty: Tansu reports a
            # partition's end as its last batch's base offset + 1, so end_offsets() alone can
            # stop short of the last records of a multi-record batch.
            while True:
                batch = await consumer.getmany(timeout_ms=int(idle * 1000))
                for records in batch.values():
                    out.extend((r.key, orjson.loads(r.value)) for r in records)
                behind = [tp for tp in tps if await consumer.position(tp) < ends[tp]]
                if not batch and not behind:
                    return out
        finally:
            await consumer.stop()

    return asyncio.run(run())


def committed_offsets(bootstrap: str, group: str = "claimstream") -> dict[str, int]:
    """The group's committed offsets of the input topics, as {"topic:partition": offset}."""

    async def run() -> dict[str, int]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
        )
        await consumer.start()
        try:
            found: dict[str, int] = {}
            for topic in sorted(set(TOPIC_OF.values())):
                for p in range(partition_count(topic)):
                    offset = await consumer.committed(TopicPartition(topic, p))
                    if offset is not None:
                        found[f"{topic}:{p}"] = offset
            return found
        finally:
            await consumer.stop()

    return asyncio.run(run())


def wait_outputs(
    bootstrap: str,
    topic: str,
    done: Callable[[list[Any]], bool],
    timeout: float,
) -> list[Any]:
    """Poll `topic` until `done(records)` holds (then read once more to catch stragglers)."""
    last: list[Any] = []

    def check() -> bool:
        nonlocal last
        last = read_topic(bootstrap, topic)
        return done(last)

    try:
        wait_for(check, timeout, f"outputs on {topic}", interval=0.5)
    except AssertionError:
        return last
    return read_topic(bootstrap, topic)


@dataclass
class Restarted:
    """What `killed_and_restarted` saw: the outputs and what replay gives for the same events."""

    bootstrap: str
    events: list[dict[str, Any]]
    alerts: list[Any]
    commands: list[Any]
    expected_alerts: set[str]
    expected_commands: set[str]
    #: the restarted worker's /status once the alerts were in (empty if it did not answer)
    status: dict[str, Any]

    def alert_ids(self) -> set[str]:
        return {v["alert_id"] for _, v in self.alerts}

    def explain(self) -> str:
        """Which alerts differ, what the restarted worker had and the group's offsets (for a
        failure seen only on CI)."""
        return (
            f"{describe(self.alerts, self.expected_alerts, self.events)}; restarted worker: "
            f"assigned {self.status.get('assigned')}, {self.status.get('records')} records; "
            f"committed {committed_offsets(self.bootstrap)}"
        )


def killed_and_restarted(
    broker: LocalBroker, folder: Path, *, seed: int, events: int = 6000, kill_after: int = 1500
) -> Restarted:
    """Issue #3's crash on the current table store: `events` simulated events produced, a
    worker SIGKILLed once it has handled `kill_after` records (often before its first commit,
    with states written but their changelog records and input offsets maybe not on the
    broker), and a successor started on the same data directory (`folder/data`: it reopens the
    killed worker's RocksDB databases, as a deployment keeps its volume) until every alert
    replay gives is on the alerts topic (150 s at most)."""
    stream = list(generate(events, seed=seed, start=recent_start()))
    expected_alerts, expected_commands, _ = replay_ids(stream)
    produce(broker.bootstrap, event_messages(stream))
    data = folder / "data"
    first = WorkerProcess(broker.url, data_dir=data, log_path=folder / "first.log").start()
    try:
        first.wait_records(kill_after, timeout=120)
        first.kill()
    finally:
        first.stop()
    second = WorkerProcess(broker.url, data_dir=data, log_path=folder / "second.log").start()
    try:
        alerts = wait_outputs(
            broker.bootstrap,
            ALERTS,
            lambda got: {v["alert_id"] for _, v in got} >= expected_alerts,
            timeout=150,
        )
        commands = read_topic(broker.bootstrap, COMMANDS)
        status = second.status() or {}
    finally:
        second.stop()
    return Restarted(
        broker.bootstrap, stream, alerts, commands, expected_alerts, expected_commands, status
    )
