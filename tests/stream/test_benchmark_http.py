"""`GET /v1/institutions/{id}/benchmark` (`claimstream.stream.http.benchmark`) behind the real
access control: who may read which institution's benchmark, and what the answers are."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from claimstream.detection.benchmark import MemoryMonths, MonthsSource
from claimstream.freezes.memory import MemoryRegistry
from claimstream.stream.app import create_app
from claimstream.stream.http.access import (
    Access,
    access_control,
    institution_role,
    new_token,
    parse_tokens,
    token_line,
)
from claimstream.stream.http.benchmark import benchmark_routes
from claimstream.stream.http.errors import json_errors
from claimstream.stream.settings import Settings
from tests.stream.test_api import schema_check
from tests.support.institution_months import LAST, year

#: token name -> (roles, token); the institutions' tokens are named without their ids
TOKENS = {
    name: (roles, new_token())
    for name, roles in {
        "supervisor": "supervisor",
        "settlement": "settlement",
        "portal-a": institution_role("H001"),
        "portal-b": institution_role("H002"),
    }.items()
}
INLINE = ";".join(token_line(name, roles, token) for name, (roles, token) in TOKENS.items())

Get = Callable[..., Awaitable[tuple[int, Any, Any]]]


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name][1]}"}


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[MonthsSource | None], Awaitable[Get]]]:
    clients: list[TestClient[Any, Any]] = []

    async def start(source: MonthsSource | None) -> Get:
        app = web.Application(
            middlewares=[
                json_errors,
                access_control(Access(inline=parse_tokens(INLINE.encode(), "t", ";"))),
            ]
        )
        app.add_routes(benchmark_routes(lambda: source))
        # no access log, as faust's web server runs aiohttp (a path holds an id)
        server = TestServer(app)
        await server.start_server(access_log=None)
        client: TestClient[Any, Any] = TestClient(server)
        await client.start_server()
        clients.append(client)

        async def get(path: str, token: str | None = "supervisor") -> tuple[int, Any, Any]:
            headers = bearer(token) if token else {}
            async with client.get(path, headers=headers) as response:
                return response.status, await response.json(), response.headers

        return get

    yield start
    for client in clients:
        await client.close()


@pytest.fixture
async def get(serve: Callable[[MonthsSource | None], Awaitable[Get]]) -> Get:
    return await serve(MemoryMonths.of(year()))


async def test_a_supervisor_reads_the_benchmark_as_documented(get: Get) -> None:
    status, body, _ = await get("/v1/institutions/H001/benchmark?month=2026-03")
    assert status == 200
    schema_check("Benchmark", body)
    assert (body["institution_id"], body["month"], body["members"]) == ("H001", "2026-03", 12)
    cost = next(i for i in body["indicators"] if i["indicator"] == "cost_per_stay")
    assert cost["rank"] == 1 and cost["above_p80"] is True and len(cost["trend"]) == 12


async def test_an_institutions_own_token_reads_its_own_benchmark(get: Get) -> None:
    status, body, _ = await get("/v1/institutions/H001/benchmark?month=2026-03", "portal-a")
    assert status == 200 and body["institution_id"] == "H001"


async def test_another_institutions_token_is_403(get: Get) -> None:
    status, body, headers = await get("/v1/institutions/H001/benchmark", "portal-b")
    assert status == 403
    assert "own institution" in body["error"] and "H001" not in body["error"]
    assert 'error="insufficient_scope", scope="supervisor"' in headers["WWW-Authenticate"]


async def test_a_settlement_token_is_403(get: Get) -> None:
    status, _, _ = await get("/v1/institutions/H001/benchmark", "settlement")
    assert status == 403


async def test_no_token_is_401(get: Get) -> None:
    status, _, _ = await get("/v1/institutions/H001/benchmark", None)
    assert status == 401


async def test_without_a_month_the_latest_month_held_is_shown(get: Get) -> None:
    status, body, _ = await get("/v1/institutions/H002/benchmark")
    assert status == 200 and body["month"] == LAST


@pytest.mark.parametrize("month", ["2026-3", "2026-13", "march"])
async def test_a_month_that_is_not_yyyy_mm_is_400(get: Get, month: str) -> None:
    status, body, _ = await get(f"/v1/institutions/H001/benchmark?month={month}")
    assert status == 400 and "YYYY-MM" in body["error"]
    schema_check("Error", body)


async def test_an_unknown_institution_is_404(get: Get) -> None:
    status, body, _ = await get("/v1/institutions/H999/benchmark?month=2026-03")
    assert status == 404 and "no month of institution H999" in body["error"]


async def test_a_month_not_held_is_404_naming_the_months_that_are(get: Get) -> None:
    status, body, _ = await get("/v1/institutions/H001/benchmark?month=2024-01")
    assert status == 404 and "2025-04 to 2026-03" in body["error"]


async def test_a_secondary_is_benchmarked_among_secondaries(get: Get) -> None:
    status, body, _ = await get("/v1/institutions/S002/benchmark?month=2026-03")
    assert status == 200 and body["peer_group"] == "secondary:330100" and body["members"] == 3


async def test_a_worker_without_institution_months_is_503(
    serve: Callable[[MonthsSource | None], Awaitable[Get]],
) -> None:
    get = await serve(None)
    status, body, headers = await get("/v1/institutions/H001/benchmark")
    assert status == 503 and "Retry-After" in headers
    schema_check("Error", body)


async def test_no_id_is_logged_at_info_or_above(get: Get, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        for path, token in [
            ("/v1/institutions/H001/benchmark?month=2026-03", "supervisor"),
            ("/v1/institutions/H001/benchmark", "portal-b"),
            ("/v1/institutions/H001/benchmark?month=2024-01", "portal-a"),
            ("/v1/institutions/H999/benchmark", "supervisor"),
        ]:
            await get(path, token)
    assert caplog.records, "the refusal of portal-b is logged"
    for record in caplog.records:
        message = record.getMessage()
        assert "H00" not in message and "H999" not in message, message


@pytest.fixture
async def worker() -> AsyncIterator[TestClient[Any, Any]]:
    """The real worker app's web server (no broker: nothing else is started)."""
    app = create_app(
        Settings(
            sanctions_enabled=False, audit_enabled=False, control_enabled=False, api_tokens=INLINE
        ),
        registry=MemoryRegistry(),
        sinks=[],
    )
    client: TestClient[Any, Any] = TestClient(TestServer(app.web.web_app))  # type: ignore[attr-defined]
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def test_the_real_worker_serves_the_route_and_answers_503_until_its_data_is_wired(
    worker: TestClient[Any, Any],
) -> None:
    async with worker.get("/v1/institutions/H001/benchmark", headers=bearer("portal-a")) as answer:
        assert answer.status == 503
    async with worker.get("/v1/institutions/H001/benchmark", headers=bearer("portal-b")) as answer:
        assert answer.status == 403


@pytest.mark.parametrize(
    "path", ["/institutions/H001", "/subjects/institution/H001", "/freezes/institution/H001"]
)
async def test_an_institutions_token_reads_nothing_but_its_benchmark(
    worker: TestClient[Any, Any], path: str
) -> None:
    async with worker.get(path, headers=bearer("portal-a")) as answer:
        assert answer.status == 403


@pytest.mark.parametrize(
    "roles", ["institution:", "institution:H 1", "institution:a/b", "institutions:H001"]
)
def test_an_institution_role_must_name_one_plain_id(roles: str) -> None:
    from claimstream.model.config import ConfigError

    with pytest.raises(ConfigError):
        parse_tokens(f"portal {roles} sha256:{'0' * 64}".encode(), "tokens")


def test_a_token_line_may_hold_an_institutions_role() -> None:
    token = new_token()
    tokens = parse_tokens(token_line("portal-a", "institution:H001", token).encode(), "tokens")
    found = tokens.find(token)
    assert found is not None and found.roles == frozenset({"institution:H001"})


# -- a peer group another worker holds --------------------------------------------------------


@pytest.fixture
async def routed() -> AsyncIterator[Callable[..., Awaitable[tuple[int, Any, list[str]]]]]:
    """A worker holding no institution month, whose reference data places every institution
    in "tertiary"; `owner` says who owns that group, `fails` makes the forward raise."""
    clients: list[TestClient[Any, Any]] = []

    async def start(
        owner: str | None, *, here: bool = False, fails: bool = False
    ) -> Callable[..., Awaitable[tuple[int, Any, list[str]]]]:
        forwarded: list[str] = []

        async def forward(to: str, request: web.Request) -> web.StreamResponse:
            if fails:
                raise ConnectionError("refused")
            forwarded.append(to)
            return web.json_response({"from": to})

        app = web.Application(
            middlewares=[
                json_errors,
                access_control(Access(inline=parse_tokens(INLINE.encode(), "t", ";"))),
            ]
        )
        app.add_routes(
            benchmark_routes(
                lambda: MemoryMonths.of([]),
                group_of=lambda institution: "tertiary",
                owner_of=lambda space, key: (owner, here),
                forward=forward,
            )
        )
        server = TestServer(app)
        await server.start_server(access_log=None)
        client: TestClient[Any, Any] = TestClient(server)
        await client.start_server()
        clients.append(client)

        async def get(headers: dict[str, str] | None = None) -> tuple[int, Any, list[str]]:
            path = "/v1/institutions/H001/benchmark"
            async with client.get(path, headers={**bearer("supervisor"), **(headers or {})}) as r:
                return r.status, await r.json(), forwarded

        return get

    yield start
    for client in clients:
        await client.close()


async def test_a_peer_group_another_worker_holds_is_asked_there(routed: Any) -> None:
    get = await routed("http://other:6066")
    status, body, forwarded = await get()
    assert (status, body, forwarded) == (200, {"from": "http://other:6066"}, ["http://other:6066"])


async def test_a_forwarded_read_is_answered_where_it_arrives(routed: Any) -> None:
    get = await routed("http://other:6066")
    status, _, forwarded = await get({"X-Claimstream-Forwarded": "http://first:6066"})
    assert status == 404 and forwarded == []


async def test_a_peer_group_held_here_is_answered_here(routed: Any) -> None:
    get = await routed("http://me:6066", here=True)
    status, _, forwarded = await get()
    assert status == 404 and forwarded == []


async def test_an_owner_that_does_not_answer_is_502(routed: Any) -> None:
    get = await routed("http://other:6066", fails=True)
    status, body, _ = await get()
    assert status == 502 and "http://other:6066" in body["error"]


async def test_while_the_groups_owner_is_not_known_the_read_is_answered_here(
    routed: Any,
) -> None:
    get = await routed(None)
    status, body, forwarded = await get()
    assert (status, forwarded) == (404, [])
    assert "owner" not in body  # the benchmark's own 404, not the API's "not on this worker"
