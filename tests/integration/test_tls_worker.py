"""A worker whose every connection is encrypted and authenticated: Kafka over mutual TLS (the
local broker behind its TLS terminator, a client certificate required) and Redis over TLS as an
ACL user with only the registry's commands, its password in a file. The alerts equal replay's,
and the freezes land in Redis, exactly as over plaintext (tests/integration/test_stream_worker).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from claimstream.cli.main import main
from claimstream.devtools.localbroker import BrokerTls
from claimstream.devtools.simulate import generate
from claimstream.freezes.connection import RedisOptions, acl_line
from claimstream.freezes.redis import RedisRegistry
from claimstream.kafka.reader import TopicReader
from claimstream.kafka.security import KafkaSecurity
from tests.cli.support import write_lines
from tests.integration.stream_support import (
    PARTITIONS,
    WorkerProcess,
    recent_start,
    replay_ids,
    wait_for,
)
from tests.support.brokers import start_broker_with_topics
from tests.support.pki import Pki, make_pki
from tests.support.redis_server import RedisServer, RedisServerError, RedisTls
from tests.support.services import unavailable

pytestmark = pytest.mark.integration
ALERTS = "claimstream.alerts.v1"
USER = "claimstream-worker"
PREFIX = "tlsworker"


@dataclass
class Run:
    pki: Pki
    security: KafkaSecurity
    bootstrap: str
    redis_url: str
    redis_options: RedisOptions
    expected_alerts: set[str]
    alerts: list[Any]
    produce_code: int
    worker_log: Path


def read(bootstrap: str, topic: str, security: KafkaSecurity) -> list[Any]:
    async def go() -> list[Any]:
        async with TopicReader(bootstrap, topic, security=security) as reader:
            return [orjson.loads(r.value or b"null") for r in await reader.read_new()]

    return asyncio.run(go())


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    root = tmp_path_factory.mktemp("tls-worker")
    pki = make_pki(root / "pki")
    password = root / "redis-password"
    password.write_text("worker-redis-secret\n", encoding="utf-8")
    rule = acl_line(USER, PREFIX, "worker-redis-secret").removeprefix("user ")
    try:
        redis = RedisServer(
            tls=RedisTls(pki.server.cert, pki.server.key, pki.ca), users=[rule]
        ).start()
    except RedisServerError as exc:
        unavailable(str(exc))
    security = KafkaSecurity(
        protocol="SSL",
        ssl_ca_file=pki.ca,
        ssl_cert_file=pki.client.cert,
        ssl_key_file=pki.client.key,
    )
    tls = BrokerTls(pki.server.cert, pki.server.key, pki.ca, client_ca_file=pki.ca)
    try:
        broker = start_broker_with_topics(PARTITIONS, tls=tls, security=security)
    except BaseException:  # not started (skipped, or failed under CI), or no topics
        redis.stop()
        raise
    redis_url = redis.url.replace("rediss://", f"rediss://{USER}@")
    env = {
        **broker.environment(),
        "CLAIMSTREAM_KAFKA_SSL_CERT_FILE": pki.client.cert,
        "CLAIMSTREAM_KAFKA_SSL_KEY_FILE": pki.client.key,
        "CLAIMSTREAM_REDIS_URL": redis_url,
        "CLAIMSTREAM_REDIS_PASSWORD_FILE": str(password),
        "CLAIMSTREAM_REDIS_TLS_CA_FILE": pki.ca,
        "CLAIMSTREAM_REDIS_PREFIX": PREFIX,
    }
    log = root / "worker.log"
    worker = WorkerProcess(broker.url, env=env, log_path=log)
    mp = pytest.MonkeyPatch()
    try:
        events = list(generate(1500, seed=11, start=recent_start()))
        expected, _, _ = replay_ids(events)
        worker.start()
        for name, value in env.items():
            mp.setenv(name, value)
        code = main(["produce", str(write_lines(root / "events.jsonl", list(events)))])

        def all_alerts() -> list[Any] | None:
            assert worker.proc is not None and worker.proc.poll() is None, "worker exited"
            got = read(broker.bootstrap, ALERTS, security)
            return got if {a["alert_id"] for a in got} >= expected else None

        try:
            alerts = wait_for(all_alerts, 120, "the worker's alerts over TLS")
        except AssertionError:
            alerts = read(broker.bootstrap, ALERTS, security)
        yield Run(
            pki,
            security,
            broker.bootstrap,
            redis_url,
            RedisOptions.for_url(redis_url, env),
            expected,
            alerts,
            code,
            log,
        )
    finally:
        mp.undo()
        worker.stop()
        broker.stop()
        redis.stop()
        if log.exists():
            print(log.read_text(errors="replace")[-4000:])


def test_produce_over_mutual_tls_publishes_every_event(run: Run) -> None:
    assert run.produce_code == 0


def test_the_worker_over_mutual_tls_raises_the_alerts_replay_raises(run: Run) -> None:
    assert run.expected_alerts, "the simulated stream should contain abuse"
    assert {a["alert_id"] for a in run.alerts} == run.expected_alerts


def test_the_worker_writes_freezes_to_redis_over_tls_as_its_acl_user(run: Run) -> None:
    async def active() -> list[Any]:
        registry = RedisRegistry(run.redis_url, PREFIX, run.redis_options)
        await registry.start()
        try:
            return await registry.active(time.time())
        finally:
            await registry.close()

    freezes = wait_for(lambda: asyncio.run(active()), 60, "freezes in Redis")
    assert all(f.key.startswith(f"{PREFIX}:freeze:") for f in freezes)


def test_the_worker_log_has_no_password(run: Run) -> None:
    text = run.worker_log.read_text(errors="replace")
    assert "worker-redis-secret" not in text
