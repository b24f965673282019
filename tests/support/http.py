"""The in-process set-up of the API's and the console's HTTP tests: a cases runtime (and its
reports) over plain dicts, the API publishing into a list, the worker's access control over a
few tokens, and aiohttp test clients closed on the way out.

    async with clients() as start:
        runtime = cases_runtime({"case-1": case_to_dict(CASE)}, PROC)
        api = api_into(sent := Sent())
        client = await start(access_of(LINES), case_routes(runtime, api, ...))
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import tzinfo
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from claimstream.cases.calendar import WorkingCalendar
from claimstream.cases.case import Procedure
from claimstream.cases.report_processor import ReportProcessor
from claimstream.cases.reports import Report, ReportSettings, report_to_dict
from claimstream.sanctions.signatures import ActionSigner, ActionVerifier, Keyring
from claimstream.stream.cases import CasesRuntime
from claimstream.stream.http.access import Access, access_control, parse_tokens, token_line
from claimstream.stream.http.api import Api, ApiSettings
from claimstream.stream.http.errors import json_errors
from claimstream.stream.reports import ReportsRuntime

SH = ZoneInfo("Asia/Shanghai")
Clock = Callable[[], float | None]
#: starts a client on an app of these routes behind this access control
Start = Callable[[Access, list[web.RouteDef]], Awaitable[TestClient[Any, Any]]]


class Sent:
    """The publisher of the API (`send_and_wait`): keeps what it was given."""

    def __init__(self) -> None:
        self.records: list[Any] = []

    async def send_and_wait(self, records: Any) -> None:
        self.records.extend(records)


def token_lines(tokens: Mapping[str, tuple[str, str]]) -> str:
    """`CLAIMSTREAM_API_TOKENS` lines of `{name: (roles, token)}`."""
    return "\n".join(token_line(name, role, token) for name, (role, token) in tokens.items())


def access_of(lines: str) -> Access:
    return Access(None, parse_tokens(lines.encode(), "t"))


def cases_runtime(
    cases: dict[str, Any], procedure: Procedure, clock: Clock = lambda: None
) -> CasesRuntime:
    """A cases runtime holding `cases` (case id -> its dict) in a plain dict, with no broker,
    sinks or metrics (what the HTTP routes read and try actions on)."""
    return CasesRuntime(
        None, None, procedure, SimpleNamespace(data={}), SimpleNamespace(data=cases), 8,  # type: ignore[arg-type]
        sinks=None, metrics=None,  # type: ignore[arg-type]
        verifier=ActionVerifier(lambda: Keyring({})), clock=clock,
    )  # fmt: skip


def with_reports(
    runtime: CasesRuntime, reports: Iterable[Report], calendar: WorkingCalendar, clock: Clock
) -> ReportsRuntime:
    """`runtime` holding `reports` too (its `reports`, returned)."""
    table = SimpleNamespace(data={r.report_id: report_to_dict(r) for r in reports})
    processor = ReportProcessor(ReportSettings(), calendar, table.data.get, verify=lambda r: None)
    runtime.reports = ReportsRuntime(
        None, None, processor, table, 8, sinks=None, metrics=None, clock=clock,  # type: ignore[arg-type]
    )  # fmt: skip
    return runtime.reports


def api_into(sent: Sent, view: Any = None, tz: tzinfo = SH) -> Api:
    """The API's logic publishing into `sent`, signing with a fresh key."""
    settings = ApiSettings(actions_partitions=8)
    return Api(view, sent.send_and_wait, settings, lambda: tz, ActionSigner.generate())


@asynccontextmanager
async def clients() -> AsyncIterator[Start]:
    """Starts test clients (each on its own app, behind `json_errors` and the access control);
    closes them all on the way out."""
    started: list[TestClient[Any, Any]] = []

    async def start(access: Access, routes: list[web.RouteDef]) -> TestClient[Any, Any]:
        app = web.Application(middlewares=[json_errors, access_control(access)])
        app.add_routes(routes)
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        started.append(client)
        return client

    try:
        yield start
    finally:
        for client in started:
            await client.close()
