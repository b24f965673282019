"""The console's reports pages over a runtime holding plain dicts: the queue by due time with the
overdue marked, a report without the reporter's identity unless the person holds
reports:contact, and the accept form publishing the same signed action as the API (CSRF and the
reviewer role required)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from claimstream.cases.calendar import load_calendar
from claimstream.cases.case import CaseSettings, Procedure
from claimstream.cases.report_actions import case_for_report
from claimstream.cases.report_processor import ReportProcessor
from claimstream.cases.reports import Reporter, ReportSettings, new_report, report_to_dict
from claimstream.sanctions.signatures import ActionSigner, ActionVerifier, Keyring
from claimstream.stream.cases import CasesRuntime
from claimstream.stream.http.access import Access, access_control, parse_tokens, token_line
from claimstream.stream.http.api import Api, ApiSettings
from claimstream.stream.http.console.pages import console_routes
from claimstream.stream.http.console.session import COOKIE, csrf_token
from claimstream.stream.http.errors import json_errors
from claimstream.stream.reports import ReportsRuntime

SH = ZoneInfo("Asia/Shanghai")
CAL = load_calendar(None, SH)
TOKENS = {
    "li.na": ("reviewer", "tok-reviewer"),
    "zhou": ("supervisor", "tok-supervisor"),
    "wu": ("supervisor,reports:contact", "tok-contact"),
}
LINES = "\n".join(token_line(name, role, token) for name, (role, token) in TOKENS.items())
CONTACT = "138-0000-0000"
NAMED = Reporter(False, "Zhang San", CONTACT)
EARLY = new_report("2026-03-02T10:00:00+08:00", "hotline", NAMED, "pharmacy <b>Elm</b>", "cards",
                   report_id="rpt-early")  # fmt: skip
LATE = new_report("2026-03-20T10:00:00+08:00", "web", Reporter(True), "clinic on Oak St",
                  "ghost visits", report_id="rpt-late")  # fmt: skip
NOW = datetime.fromisoformat("2026-03-05T00:00:00+08:00").timestamp()


class Sent:
    def __init__(self) -> None:
        self.records: list[Any] = []

    async def send_and_wait(self, records: Any) -> None:
        self.records.extend(records)


Serve = Callable[..., Any]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    clients: list[TestClient[Any, Any]] = []

    async def start() -> tuple[Any, Sent]:
        sent = Sent()
        runtime = CasesRuntime(
            None, None, Procedure(CaseSettings(), CAL), SimpleNamespace(data={}),
            SimpleNamespace(data={}), 8, sinks=None, metrics=None,  # type: ignore[arg-type]
            verifier=ActionVerifier(lambda: Keyring({})), clock=lambda: NOW,
        )  # fmt: skip
        table = SimpleNamespace(data={r.report_id: report_to_dict(r) for r in (LATE, EARLY)})
        runtime.reports = ReportsRuntime(
            None, None, ReportProcessor(ReportSettings(), CAL, table.data.get,  # type: ignore[arg-type]
                                        verify=lambda r: None),
            table, 8, sinks=None, metrics=None, clock=lambda: NOW,  # type: ignore[arg-type]
        )  # fmt: skip
        api = Api(None, sent.send_and_wait, ApiSettings(actions_partitions=8), lambda: SH,
                  ActionSigner.generate())  # fmt: skip
        access = Access(None, parse_tokens(LINES.encode(), "t"))
        app = web.Application(middlewares=[json_errors, access_control(access)])
        app.add_routes(console_routes(runtime, api, access, tz=lambda: SH))
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client, sent

    yield start
    for client in clients:
        await client.close()


def cookie(who: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={TOKENS[who][1]}"}


async def get(client: Any, path: str, who: str = "zhou") -> tuple[int, str]:
    async with client.get(path, headers=cookie(who), allow_redirects=False) as response:
        return response.status, await response.text()


async def post(client: Any, path: str, form: dict[str, str], who: str = "li.na") -> Any:
    async with client.post(path, data=form, headers=cookie(who), allow_redirects=False) as response:
        return response.status, await response.text(), response.headers


async def test_the_queue_lists_reports_by_due_time_with_the_overdue_marked(serve: Serve) -> None:
    client, _ = await serve()
    status, html = await get(client, "/console/reports")
    assert status == 200
    assert html.index("rpt-early") < html.index("rpt-late")
    early_row = html[html.index("rpt-early") : html.index("rpt-late")]
    assert "Overdue" in early_row and "respond" in early_row


async def test_the_queue_and_a_report_escape_what_the_reporter_wrote(serve: Serve) -> None:
    client, _ = await serve()
    assert "<b>Elm</b>" not in (await get(client, "/console/reports/rpt-early"))[1]


async def test_a_supervisor_sees_no_name_and_no_contact(serve: Serve) -> None:
    client, _ = await serve()
    pages = (await get(client, "/console/reports"))[1] + (
        await get(client, "/console/reports/rpt-early")
    )[1]
    assert CONTACT not in pages and "Zhang San" not in pages


async def test_the_reports_contact_role_sees_the_contact(serve: Serve) -> None:
    client, _ = await serve()
    assert CONTACT in (await get(client, "/console/reports/rpt-early", who="wu"))[1]


async def test_accepting_into_a_new_case_publishes_the_signed_action(serve: Serve) -> None:
    client, sent = await serve()
    form = {"csrf": csrf_token("tok-reviewer"), "subject": "institution:H1",
            "told_reporter": "yes"}  # fmt: skip
    status, _, headers = await post(client, "/console/reports/rpt-early/accept", form)
    ((topic, key, value, _),) = sent.records
    record = orjson.loads(value)
    assert (status, topic, key) == (303, "claimstream.actions.v1", b"rpt-early")
    assert (record["type"], record["case_id"], record["by"]) == (
        "report_accept", case_for_report("rpt-early"), "li.na",
    )  # fmt: skip
    assert "pending=" in headers["Location"]


async def test_a_form_without_its_csrf_token_is_refused(serve: Serve) -> None:
    client, sent = await serve()
    status, _, _ = await post(client, "/console/reports/rpt-early/accept", {"subject": "doctor:D"})
    assert (status, sent.records) == (403, [])


async def test_a_supervisor_may_not_act_on_a_report(serve: Serve) -> None:
    client, sent = await serve()
    form = {"csrf": csrf_token("tok-supervisor"), "note": "x"}
    status, _, _ = await post(client, "/console/reports/rpt-early/acknowledge", form, who="zhou")
    assert (status, sent.records) == (403, [])


async def test_a_refused_action_is_shown_and_publishes_nothing(serve: Serve) -> None:
    client, sent = await serve()
    form = {"csrf": csrf_token("tok-reviewer"), "note": "x"}
    status, html, _ = await post(client, "/console/reports/rpt-early/feedback", form)
    assert (status, sent.records) == (409, []) and "Not done:" in html
