"""The console's reports pages over a runtime holding plain dicts: the queue by due time with the
overdue marked, a report without the reporter's identity unless the person holds
reports:contact, and the accept form publishing the same signed action as the API (CSRF and the
reviewer role required)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import orjson
import pytest

from claimstream.cases.calendar import load_calendar
from claimstream.cases.case import CaseSettings, Procedure
from claimstream.cases.report_actions import case_for_report
from claimstream.cases.reports import Reporter, new_report
from claimstream.stream.http.console.pages import console_routes
from claimstream.stream.http.console.session import COOKIE, csrf_token
from tests.support.http import (
    SH,
    Sent,
    access_of,
    api_into,
    cases_runtime,
    clients,
    token_lines,
    with_reports,
)

CAL = load_calendar(None, SH)
TOKENS = {
    "li.na": ("reviewer", "tok-reviewer"),
    "zhou": ("supervisor", "tok-supervisor"),
    "wu": ("supervisor,reports:contact", "tok-contact"),
}
LINES = token_lines(TOKENS)
CONTACT = "138-0000-0000"
NAMED = Reporter(False, "Zhang San", CONTACT)
EARLY = new_report("2026-03-02T10:00:00+08:00", "hotline", NAMED, "pharmacy <b>Elm</b>", "cards",
                   report_id="rpt-early")  # fmt: skip
LATE = new_report("2026-03-20T10:00:00+08:00", "web", Reporter(True), "clinic on Oak St",
                  "ghost visits", report_id="rpt-late")  # fmt: skip
NOW = datetime.fromisoformat("2026-03-05T00:00:00+08:00").timestamp()


Serve = Callable[..., Any]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    async with clients() as start_client:

        async def start() -> tuple[Any, Sent]:
            sent = Sent()
            runtime = cases_runtime({}, Procedure(CaseSettings(), CAL), lambda: NOW)
            with_reports(runtime, [LATE, EARLY], CAL, lambda: NOW)
            access = access_of(LINES)
            routes = console_routes(runtime, api_into(sent), access, tz=lambda: SH)
            return await start_client(access, routes), sent

        yield start


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
