"""`/health` and `/ready` (`claimstream.stream.http.health`): the checks of a worker, with a
plain stand-in for the faust app, and both routes on the real app's web server before it runs
(nothing assigned yet: not ready)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from claimstream.freezes.memory import MemoryRegistry
from claimstream.freezes.redis import RedisRegistry
from claimstream.stream.app import create_app
from claimstream.stream.http.health import readiness, worker_checks
from claimstream.stream.settings import Settings


class Client:
    """aiokafka's client as the kafka check uses it: a metadata request that answers or not."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail

    async def fetch_all_metadata(self) -> object:
        if self.fail is not None:
            raise self.fail
        return object()


def worker_app(
    *,
    assigned: set[Any] | None = None,
    rebalancing: bool = False,
    recovered: bool = True,
    metadata: Exception | None = None,
) -> Any:
    """A stand-in for a running faust app: what `worker_checks` reads of it."""
    completed = asyncio.Event()
    if recovered:
        completed.set()
    producer = SimpleNamespace(client=Client(metadata))
    held = {("settlement.claims.v1", 0)} if assigned is None else assigned
    return SimpleNamespace(
        rebalancing=rebalancing,
        in_recovery=not recovered,
        consumer=SimpleNamespace(assignment=lambda: held),
        tables=SimpleNamespace(recovery=SimpleNamespace(completed=completed)),
        producer=SimpleNamespace(_ensure_producer=lambda: producer),
    )


async def ready(app: Any, registry: Any = None) -> tuple[int, dict[str, Any]]:
    return await readiness(worker_checks(app, registry or MemoryRegistry(), timeout=1.0))


async def test_a_running_worker_with_its_partitions_is_ready() -> None:
    status, body = await ready(worker_app())
    assert status == 200
    assert body == {
        "status": "ready",
        "checks": {"assignment": "ok", "recovery": "ok", "kafka": "ok", "redis": "ok"},
    }


async def test_no_partitions_assigned_is_not_ready() -> None:
    status, body = await ready(worker_app(assigned=set()))
    assert status == 503
    assert body["failed"] == ["assignment"]
    assert "no partitions are assigned" in body["checks"]["assignment"]


async def test_a_rebalance_under_way_is_not_ready() -> None:
    status, body = await ready(worker_app(rebalancing=True))
    assert status == 503
    assert body["failed"] == ["assignment"]
    assert "rebalance" in body["error"]


async def test_table_recovery_not_finished_is_not_ready() -> None:
    status, body = await ready(worker_app(recovered=False))
    assert status == 503
    assert body["failed"] == ["recovery"]


async def test_a_broker_that_does_not_answer_is_not_ready() -> None:
    status, body = await ready(worker_app(metadata=ConnectionError("broker gone")))
    assert status == 503
    assert body["failed"] == ["kafka"]
    assert body["checks"]["kafka"] == "ConnectionError: broker gone"


async def test_a_redis_registry_not_connected_is_not_ready() -> None:
    registry = RedisRegistry("redis://127.0.0.1:1/0")  # never started
    status, body = await ready(worker_app(), registry)
    assert status == 503
    assert body["failed"] == ["redis"]
    assert body["checks"]["redis"] == "not connected yet"


@pytest.fixture
async def worker() -> AsyncIterator[TestClient[Any, Any]]:
    """A test client of the real worker app's web server; the app itself never runs."""
    app = create_app(
        Settings(sanctions_enabled=False, audit_enabled=False, control_enabled=False),
        registry=MemoryRegistry(),
        sinks=[],
    )
    client: TestClient[Any, Any] = TestClient(TestServer(app.web.web_app))  # type: ignore[attr-defined]
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def test_health_is_ok_while_the_process_answers(worker: TestClient[Any, Any]) -> None:
    async with worker.get("/health") as response:
        assert response.status == 200
        assert await response.json() == {"status": "ok"}


async def test_a_worker_not_yet_assigned_is_not_ready(worker: TestClient[Any, Any]) -> None:
    async with worker.get("/ready") as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        body = await response.json()
    assert body["status"] == "not ready"
    assert "assignment" in body["failed"]
    assert "kafka" in body["failed"]  # the producer has not started either
    assert body["checks"]["redis"] == "ok"  # in-process registry
