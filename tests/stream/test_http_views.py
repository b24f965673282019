"""The worker's freeze look-ups (`claimstream.stream.http.views`) while the registry cannot answer
for sure: Redis unreachable, or lost and not rebuilt yet."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from claimstream.freezes.base import Freeze, RegistryUnavailable
from claimstream.freezes.memory import MemoryRegistry
from claimstream.stream.http.errors import json_errors
from claimstream.stream.http.views import worker_routes

PATHS = ("/freezes/patient/P-7?drug_code=INS", "/freezes")


class Unreachable(MemoryRegistry):
    async def lookup(
        self, kind: str, id_: str, drug_code: str | None = None, *, now: float
    ) -> list[Freeze]:
        raise RegistryUnavailable("Redis at 127.0.0.1:6379: Connection refused")

    async def active(self, now: float, limit: int = 1000) -> list[Freeze]:
        raise RegistryUnavailable("Redis at 127.0.0.1:6379: Connection refused")


Serve = Callable[..., Any]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    clients: list[TestClient[Any, Any]] = []

    async def start(
        registry: MemoryRegistry, state: Callable[[], str | None] = lambda: None
    ) -> TestClient[Any, Any]:
        app = web.Application(middlewares=[json_errors])
        app.add_routes(
            worker_routes(
                registry=registry, status=dict, exposition=lambda: b"", registry_state=state
            )
        )
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    try:
        yield start
    finally:
        for client in clients:
            await client.close()


@pytest.mark.parametrize("path", PATHS)
async def test_an_unreachable_registry_is_a_json_503_with_retry_after(
    serve: Serve, path: str
) -> None:
    client = await serve(Unreachable())
    async with client.get(path) as response:
        assert response.status == 503
        assert response.content_type == "application/json"
        assert response.headers["Retry-After"] == "5"
        body = await response.json()
    assert "cannot be reached" in body["error"] and "P-7" not in body["error"]


@pytest.mark.parametrize("path", PATHS)
async def test_a_registry_being_rebuilt_after_a_loss_is_a_503(serve: Serve, path: str) -> None:
    client = await serve(MemoryRegistry(), lambda: "the freeze registry lost its data")
    async with client.get(path) as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "5"
        assert (await response.json())["error"] == "the freeze registry lost its data"


async def test_a_registry_that_answers_is_a_200(serve: Serve) -> None:
    client = await serve(MemoryRegistry())
    async with client.get(PATHS[0]) as response:
        assert response.status == 200
        assert (await response.json())["frozen"] is False
