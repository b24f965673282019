"""A worker whose Redis goes away, on the real broker with a real redis-server and a real worker.

* Redis killed mid-stream and started again empty: with nobody running a command, the worker
  notices (its guard) and rebuilds the registry from the commands topic; the registry then
  holds what the commands' ledger says, including the freezes applied before the crash.
* While Redis is down, `GET /freezes/...` and `GET /freezes` answer 503 JSON with
  `Retry-After`, `claimstream_sink_up{sink="registry"}` is 0, and the log says so once when
  Redis goes and once when it is back, with no traceback.
* Redis shut down with a save and started again from its snapshot (data kept, new run_id): the
  worker tells it apart from a loss (`trigger="restart"`, nothing rewritten).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from claimstream.devtools.localbroker import LocalBroker
from claimstream.devtools.simulate import generate
from claimstream.devtools.subproc import die_with_parent, free_port, terminate_group
from claimstream.freezes.redis import RedisRegistry
from claimstream.sanctions.ledger import Agreement, FreezeLedger, compare
from tests.integration.stream_support import (
    WorkerProcess,
    event_messages,
    produce,
    read_topic,
    recent_start,
    start_broker,
    wait_for,
)
from tests.support.redis_server import redis_ping
from tests.support.services import require_binary

pytestmark = pytest.mark.integration
COMMANDS = "claimstream.commands.v1"


class Redis:
    """A redis-server on one port that can be killed, shut down with a save, and started again
    on the same port: empty, or from the snapshot it saved."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="claimstream-redis-loss-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [
            self.binary,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            "--dbfilename", "dump.rdb",
            "--logfile", str(self.dir / "redis.log"),
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        wait_for(lambda: redis_ping("127.0.0.1", self.port), 20, "redis-server to answer PING")

    def kill(self) -> None:
        """SIGKILL: no save, whatever it held is gone."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        (self.dir / "dump.rdb").unlink(missing_ok=True)

    def shutdown_saving(self) -> None:
        """SHUTDOWN SAVE: the data goes to dump.rdb, which the next start loads."""
        assert self.proc is not None
        client = redis.Redis(port=self.port)
        try:
            client.shutdown(save=True)
        except redis.ConnectionError:
            pass  # the server closes the connection as it exits
        finally:
            client.close()
        self.proc.wait(timeout=20)

    def run_id(self) -> str:
        client = redis.Redis(port=self.port)
        try:
            return str(client.info("server")["run_id"])
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            terminate_group(self.proc, timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Running:
    broker: LocalBroker
    redis: Redis
    worker: WorkerProcess
    log: Path
    events: list[dict[str, Any]]


def get(worker: WorkerProcess, path: str) -> tuple[int, Any, dict[str, str]]:
    url = f"http://127.0.0.1:{worker.port}{path}"
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers=worker.auth()), timeout=10
        ) as r:
            return r.status, orjson.loads(r.read()), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read()), dict(exc.headers)


def metric(worker: WorkerProcess, name: str, **labels: str) -> float:
    """The sum of the samples of the worker's /metrics named `name` with `labels`."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(
        float(sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def agreement(running: Running) -> Agreement:
    """How the registry differs from the ledger of the commands topic, right now."""
    ledger = FreezeLedger.rebuild(v for _, v in read_topic(running.broker.bootstrap, COMMANDS))

    async def held() -> list[dict[str, Any]]:
        registry = RedisRegistry(running.redis.url)
        await registry.start()
        try:
            return [f.command for f in await registry.active(time.time())]
        finally:
            await registry.close()

    now = time.time()
    return compare(ledger.active(now), asyncio.run(held()))


def registry_agrees(running: Running) -> bool:
    try:
        return agreement(running).ok
    except (OSError, redis.RedisError):
        return False


def log_since(running: Running, offset: int) -> list[str]:
    return running.log.read_bytes()[offset:].decode(errors="replace").splitlines()


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A worker on its own broker and redis-server, having handled a first stream of events
    (freezes in force in the registry)."""
    binary = require_binary("redis-server", "redis-server")
    broker = start_broker()
    server = Redis(binary)
    log = tmp_path_factory.mktemp("redis-loss") / "worker.log"
    worker = WorkerProcess(broker.url, env={"CLAIMSTREAM_REDIS_URL": server.url}, log_path=log)
    events = list(generate(4000, seed=47, start=recent_start()))
    try:
        server.start()
        worker.start()
        produce(broker.bootstrap, event_messages(events[:2000]))
        worker.wait_records(2000, timeout=120)
        running = Running(broker, server, worker, log, events)
        wait_for(lambda: registry_agrees(running), 90, "the registry to hold the first commands")
        yield running
    finally:
        worker.stop()
        server.stop()
        broker.stop()
        if log.exists():
            print(log.read_text(errors="replace")[-4000:])


def test_redis_restarted_empty_mid_stream_is_rebuilt_from_the_commands_unasked(
    running: Running,
) -> None:
    before = FreezeLedger.rebuild(v for _, v in read_topic(running.broker.bootstrap, COMMANDS))
    assert before.active(time.time()), "the first events should leave freezes in force"
    running.redis.kill()
    produce(running.broker.bootstrap, event_messages(running.events[2000:]))
    running.redis.start()  # empty: no snapshot, the freezes above are gone from Redis

    def rebuilt_and_caught_up() -> bool:
        status = running.worker.wait_records(0)
        done = status["records_by_kind"]["patient"] >= len(running.events)
        lost = metric(running.worker, "claimstream_registry_rebuilds_total", trigger="lost")
        return done and lost > 0 and registry_agrees(running)

    try:
        wait_for(rebuilt_and_caught_up, 120, "the worker to rebuild the registry and catch up")
    except AssertionError as exc:
        status = running.worker.status()
        raise AssertionError(f"{exc}; status {status}; {agreement(running)}") from None
    assert agreement(running).ok, agreement(running)
    assert metric(running.worker, "claimstream_registry_rebuilding") == 0


def test_while_redis_is_down_freezes_answer_503_and_the_log_says_so_once(
    running: Running,
) -> None:
    offset = running.log.stat().st_size
    running.redis.kill()

    def refused() -> tuple[int, Any, dict[str, str]] | None:
        answer = get(running.worker, "/freezes/patient/P-1?drug_code=X")
        return answer if answer[0] == 503 else None

    status, body, headers = wait_for(refused, 60, "GET /freezes/... to answer 503")
    assert headers["Content-Type"].startswith("application/json")
    assert headers["Retry-After"] == "5"
    assert "cannot be reached" in body["error"] and "P-1" not in body["error"]
    status, body, headers = get(running.worker, "/freezes")
    assert status == 503 and headers["Retry-After"] == "5" and "error" in body

    def sink_down() -> bool:
        return metric(running.worker, "claimstream_sink_up", sink="registry") == 0

    wait_for(sink_down, 30, "claimstream_sink_up{sink=registry} to be 0")
    # Let the guard look (and fail) several times: they must not add lines to the log.
    time.sleep(12)
    running.redis.start()
    wait_for(lambda: get(running.worker, "/freezes")[0] == 200, 90, "GET /freezes to answer")

    def sink_up() -> bool:
        return metric(running.worker, "claimstream_sink_up", sink="registry") == 1

    wait_for(sink_up, 30, "claimstream_sink_up{sink=registry} to be 1 again")
    lines = log_since(running, offset)
    down = [line for line in lines if "sink registry is failing" in line]
    back = [line for line in lines if "sink registry is back after" in line]
    assert len(down) == 1 and len(back) == 1, lines
    assert "WARNING" in down[0] and "RegistryUnavailable" in down[0]
    assert not any("Traceback" in line for line in lines), lines


def test_a_restart_that_kept_the_data_is_told_apart_from_a_loss(running: Running) -> None:
    wait_for(lambda: registry_agrees(running), 90, "the registry to be whole")
    rebuilds = "claimstream_registry_rebuilds_total"
    lost = metric(running.worker, rebuilds, trigger="lost")
    clean = metric(running.worker, rebuilds, trigger="restart", outcome="clean")
    offset = running.log.stat().st_size
    old_run = running.redis.run_id()
    running.redis.shutdown_saving()
    running.redis.start()  # from dump.rdb
    assert running.redis.run_id() != old_run

    def checked() -> bool:
        return metric(running.worker, rebuilds, trigger="restart", outcome="clean") > clean

    wait_for(checked, 60, "the worker to check the restarted registry")
    assert metric(running.worker, rebuilds, trigger="restart", outcome="repaired") == 0
    assert metric(running.worker, rebuilds, trigger="lost") == lost
    assert any("nothing differed" in line for line in log_since(running, offset))
    assert registry_agrees(running)
