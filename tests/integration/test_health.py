"""A live worker's probes and terminal output on the real broker and a real Redis: `/health`,
`/ready` (ready once assigned, 503 when Redis is down), JSON errors, the start-up line and a
log free of terminal escapes (its stdout and stderr are a file, not a terminal)."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from claimstream.devtools.localbroker import LocalBroker
from claimstream.kafka.topology import Topology
from tests.integration.stream_support import WorkerProcess, wait_for
from tests.support.redis_server import RedisServer, RedisServerError
from tests.support.services import unavailable

pytestmark = pytest.mark.integration


def request(
    worker: WorkerProcess, path: str, method: str = "GET"
) -> tuple[int, Any, dict[str, str]]:
    req = urllib.request.Request(f"http://127.0.0.1:{worker.port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, orjson.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read()), dict(exc.headers)


def answers(worker: WorkerProcess, path: str) -> tuple[int, Any, dict[str, str]] | None:
    """The answer to GET `path`, or None while the web server is not up (yet)."""
    assert worker.proc is not None and worker.proc.poll() is None, "worker exited"
    try:
        return request(worker, path)
    except OSError:
        return None


@dataclass
class Running:
    worker: WorkerProcess
    redis: RedisServer
    log: Path

    def stop(self) -> None:
        self.worker.stop()
        self.redis.stop()


def start(broker: LocalBroker, topology: Topology, logs: Path, name: str) -> Running:
    """A worker writing freezes to its own redis-server, its output in `logs`/`name`.log."""
    try:
        redis = RedisServer().start()
    except RedisServerError as exc:
        unavailable(str(exc))
    log = logs / f"{name}.log"
    worker = WorkerProcess(
        broker.url,
        env={
            "CLAIMSTREAM_PARTITIONS": str(topology.default_partitions),
            "CLAIMSTREAM_APP_ID": f"claimstream-{name}",
            "CLAIMSTREAM_DATA_DIR": str(logs / f"data-{name}"),
            "CLAIMSTREAM_REDIS_URL": redis.url,
        },
        log_path=log,
    )
    try:
        worker.start()
    except BaseException:
        redis.stop()
        raise
    return Running(worker, redis, log)


def wait_ready(running: Running) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        answer = answers(running.worker, "/ready")
        return answer[1] if answer is not None and answer[0] == 200 else None

    try:
        found: dict[str, Any] = wait_for(ready, 120, "the worker to be ready")
    except AssertionError:
        raise AssertionError(running.log.read_text()[-4000:]) from None
    return found


@pytest.fixture(scope="module")
def running(
    local_broker: LocalBroker, topology: Topology, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """One worker, ready (assigned, recovered, broker and Redis reachable)."""
    started = start(local_broker, topology, tmp_path_factory.mktemp("health"), "health")
    try:
        wait_ready(started)
        yield started
    finally:
        started.stop()


def test_health_is_ok(running: Running) -> None:
    assert request(running.worker, "/health")[:2] == (200, {"status": "ok"})


def test_ready_once_assigned_with_every_check_passing(running: Running) -> None:
    status, body, _ = request(running.worker, "/ready")
    assert status == 200
    assert body["checks"] == {"assignment": "ok", "recovery": "ok", "kafka": "ok", "redis": "ok"}
    held = running.worker.status()
    assert held is not None and held["assigned"]


def test_unknown_paths_and_wrong_methods_answer_json(running: Running) -> None:
    status, body, _ = request(running.worker, "/no/such/route")
    assert status == 404 and "no such route" in body["error"]
    status, body, headers = request(running.worker, "/ready", method="POST")
    assert status == 405 and "error" in body
    assert "GET" in headers["Allow"]


def test_the_log_has_one_startup_line(running: Running) -> None:
    lines = [
        line
        for line in running.log.read_text().splitlines()
        if line.startswith("claimstream worker: ready:")
    ]
    port = running.worker.port
    assert len(lines) == 1, lines
    assert re.fullmatch(
        r"claimstream worker: ready: broker 127\.0\.0\.1:\d+, consumer group claimstream-health, "
        rf"\d+ partitions \(.*settlement\.claims\.v1: \d+.*\), web http://127\.0\.0\.1:{port}",
        lines[0],
    ), lines[0]


def test_the_log_has_no_terminal_escape_codes(running: Running) -> None:
    written = running.log.read_bytes()
    assert written, "the worker wrote nothing"
    assert b"\x1b" not in written
    assert b"\x08" not in written  # the spinner's backspaces


def test_ready_is_503_naming_redis_while_redis_is_down(
    local_broker: LocalBroker, topology: Topology, tmp_path: Path
) -> None:
    alone = start(local_broker, topology, tmp_path, "health-redis")
    try:
        wait_ready(alone)
        alone.redis.stop()

        def refused() -> tuple[int, Any, dict[str, str]] | None:
            answer = answers(alone.worker, "/ready")
            return answer if answer is not None and answer[0] == 503 else None

        _, body, headers = wait_for(refused, 30, "/ready to answer 503")
        assert body["failed"] == ["redis"]
        assert body["status"] == "not ready"
        assert headers["Retry-After"] == "5"
        assert request(alone.worker, "/health")[0] == 200  # alive all the same
    finally:
        alone.stop()
