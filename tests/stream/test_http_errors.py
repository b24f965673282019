"""Every error of the worker's web server is JSON (`claimstream.stream.http.errors`): on the web
server of the real `create_app` (no broker: nothing is started but the aiohttp application) and
on a bare aiohttp application for the errors no worker route provokes on purpose."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from claimstream.freezes.memory import MemoryRegistry
from claimstream.stream.app import create_app
from claimstream.stream.http.errors import json_errors
from claimstream.stream.settings import Settings


@pytest.fixture
async def worker() -> AsyncIterator[TestClient[Any, Any]]:
    """A test client of the real worker app's web server."""
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


async def test_an_unknown_path_is_a_json_404(worker: TestClient[Any, Any]) -> None:
    async with worker.get("/no/such/route") as response:
        assert response.status == 404
        assert response.content_type == "application/json"
        body = await response.json()
    assert "no such route: GET /no/such/route" in body["error"]


async def test_a_wrong_method_is_a_json_405_with_allow(worker: TestClient[Any, Any]) -> None:
    async with worker.post("/status") as response:
        assert response.status == 405
        assert response.content_type == "application/json"
        assert set(response.headers["Allow"].split(",")) == {"GET", "HEAD"}
        body = await response.json()
    assert "POST is not allowed on /status" in body["error"]


async def test_a_get_on_a_write_route_is_a_json_405(worker: TestClient[Any, Any]) -> None:
    async with worker.get("/unfreeze") as response:
        assert response.status == 405
        assert response.headers["Allow"] == "POST"
        assert "error" in await response.json()


async def bare(handler: Any) -> TestClient[Any, Any]:
    app = web.Application(middlewares=[json_errors])
    app.router.add_get("/subjects/{kind}/{id}", handler)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_an_exception_is_a_json_500_without_traceback_or_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError(f"state of {request.match_info['id']} unreadable")

    client = await bare(broken)
    try:
        async with client.get("/subjects/patient/P-secret-7") as response:
            assert response.status == 500
            assert response.content_type == "application/json"
            text = await response.text()
    finally:
        await client.close()
    assert "internal error" in text
    assert "P-secret-7" not in text and "Traceback" not in text and "RuntimeError" not in text
    logged = [r for r in caplog.records if r.name == "claimstream.stream.http.errors"]
    assert logged and all("P-secret-7" not in r.getMessage() for r in logged)
    assert "/subjects/{kind}/{id}" in logged[0].getMessage()


async def test_an_aiohttp_400_is_json() -> None:
    async def refuses(request: web.Request) -> web.Response:
        raise web.HTTPBadRequest(text="the query string cannot be read")

    client = await bare(refuses)
    try:
        async with client.get("/subjects/patient/P1") as response:
            assert response.status == 400
            body = await response.json()
    finally:
        await client.close()
    assert body == {"error": "the query string cannot be read"}
