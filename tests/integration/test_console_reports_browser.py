"""The console's reports pages in a real browser against a real worker: Debian's Chromium,
headless, driven by Playwright (`executable_path`, never a browser Playwright downloads), on a
worker of the local broker with casework on. The front desk files reports through
`POST /v1/reports` (an intake token); a reviewer finds one on the reports page with its
deadline, opens it and accepts it into a new case with the keyboard alone, sees the timeline
update and the new case list the report; a supervisor (read only) is offered no form and a
forged POST is refused; the reporter's contact is on the page only for a token holding
`reports:contact`; no reports page scrolls sideways at 360 px. On a failure a screenshot is
kept and named in the message; with `CONSOLE_SCREENSHOTS=DIR` the two pages docs/console.md
shows are saved there too (`docs/img`).

One worker serves the module; each test files its own report (its own `report_id`), so the
tests do not depend on one another's order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.integration.stream_support import WorkerProcess, log_tail, start_broker, wait_for
from tests.support.browser import Session, console_session
from tests.support.casework import api_call, casework_worker

pytestmark = pytest.mark.integration

DESK, REVIEWER, SUPERVISOR, CALLER = "desk.wang", "li.na", "zhou.jian", "wu.min"
TOKENS = {
    DESK: "cs_reports-browser-desk",
    REVIEWER: "cs_reports-browser-reviewer",
    SUPERVISOR: "cs_reports-browser-supervisor",
    CALLER: "cs_reports-browser-caller",
}
ROLES = {
    DESK: "intake",
    REVIEWER: "reviewer",
    SUPERVISOR: "supervisor",
    CALLER: "supervisor,reports:contact",
}
#: the worker's time zone (CLAIMSTREAM_TIMEZONE's default), in which the pages show times
LOCAL = ZoneInfo("Asia/Shanghai")
NAME, CONTACT = "Zhang San", "138-0000-0000"
SUBJECT = "institution:H-reports-browser-1"
RESPOND_HOURS = 48


def received_now() -> datetime:
    """Now in the worker's time zone, to the minute (the pages show minutes)."""
    return datetime.now(LOCAL).replace(second=0, microsecond=0)


def call(port: int, method: str, path: str, who: str, body: Any = None) -> tuple[int, Any]:
    return api_call(port, TOKENS[who], method, path, body)


def file_report(worker: WorkerProcess, report_id: str, received: datetime, **fields: Any) -> None:
    """The front desk files a real-name hotline report (fields override it) through the API,
    and the worker holds it."""
    report = {
        "report_id": report_id,
        "received_at": received.isoformat(),
        "channel": "hotline",
        "reporter": {"anonymous": False, "name": NAME, "contact": CONTACT},
        "about": "the pharmacy on Elm St",
        "subject": SUBJECT,
        "description": "buys patients' insurance cards for cash",
        "evidence": ["photo-17"],
    } | fields
    status, body = call(worker.port, "POST", "/v1/reports", DESK, report)
    assert (status, body.get("report_id")) == (202, report_id), body

    def held() -> bool:
        return call(worker.port, "GET", f"/v1/reports/{report_id}", SUPERVISOR)[0] == 200

    wait_for(held, 120, f"the worker to hold report {report_id}",
             explain=lambda: log_tail(worker.log_path))  # fmt: skip


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    """A worker on the local broker with casework on, holding an anonymous web report filed
    by the front desk (so the reports page lists more than the tests' own)."""
    tmp = tmp_path_factory.mktemp("reports-browser")
    broker = start_broker()
    started: WorkerProcess | None = None
    try:
        started = casework_worker(broker.url, TOKENS, ROLES, "claimstream-reports-browser-it", tmp)
        running = started
        file_report(
            running,
            "rpt-web-0042",
            received_now() - timedelta(hours=5),
            channel="web",
            reporter={"anonymous": True},
            about="a clinic on River Rd",
            subject=None,
            description="bills consultations that did not happen",
            evidence=[],
        )
        yield running
    finally:
        if started is not None:
            started.stop()
        broker.stop()


def opened(
    browser: Any, port: int, shots: Path, width: int = 1000, height: int = 800
) -> AbstractAsyncContextManager[Session]:
    """A session on the console that signs in at the reports page, by the keyboard."""
    return console_session(browser, port, shots, TOKENS, width, height,
                           home="/console/reports", keyboard=True)  # fmt: skip


async def test_the_reports_page_lists_a_filed_report_with_its_respond_deadline(
    browser: Any, worker: WorkerProcess, screenshots: Path
) -> None:
    report_id = "rpt-hotline-0116"
    received = received_now()
    file_report(worker, report_id, received)
    respond_by = (received + timedelta(hours=RESPOND_HOURS)).strftime("%Y-%m-%d %H:%M")
    async with opened(browser, worker.port, screenshots) as session:
        await session.sign_in(REVIEWER)
        row = await session.text(f"tr:has(a:text-is('{report_id}'))")
        await session.check(
            f"respond by {respond_by}" in row and "hotline" in row and "real name" in row, row
        )
        await session.keep("console-reports.png")
        await session.done()


async def test_a_reviewer_accepts_a_report_into_a_new_case_by_keyboard_and_the_case_lists_it(
    browser: Any, worker: WorkerProcess, screenshots: Path
) -> None:
    report_id = "rpt-hotline-0117"
    file_report(worker, report_id, received_now())
    async with opened(browser, worker.port, screenshots) as session:
        page = session.page
        await session.sign_in(REVIEWER)

        # keyboard only from here: Tab to the report's link, Enter; Tab to the button, Enter
        await session.tab_to(f"el.textContent === {json.dumps(report_id)}", "the report's link")
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
        subject = await page.locator("#accept-subject").input_value()
        await session.check(subject == SUBJECT, f"the new case's subject is {subject!r}")
        await session.tab_to("el.id === 'accept-new'", "the accept-into-a-new-case button")
        outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        await session.check(outline not in ("none", ""), f"the focus is not visible: {outline}")
        await page.keyboard.press("Enter")

        # the page reloads itself until the action is applied
        await page.get_by_text("is applied").wait_for(timeout=60_000)
        await session.check(await session.text("#status") == "accepted", "not accepted")
        timeline = await session.text("#timeline")
        case_id = (await session.text("#case")).strip()
        await session.check(
            f"report linked by {REVIEWER}: case {case_id}" in timeline
            and f"received by {DESK}" in timeline,
            timeline,
        )
        await session.keep("console-report.png", full_page=True)

        # the new case is opened on its own partition: it lists the report once it is applied
        wait_for(
            lambda: (
                call(worker.port, "GET", f"/v1/cases/{case_id}", SUPERVISOR)[1].get("report_ids")
                == [report_id]
            ),
            60,
            "the accepted report to open its case",
            explain=lambda: log_tail(worker.log_path),
        )
        async with page.expect_navigation():
            await page.get_by_role("link", name=case_id).press("Enter")
        linked = await session.text("#reports")
        await session.check(report_id in linked, f"the case page lists {linked!r}")
        await session.done()


async def test_a_supervisor_is_offered_no_report_action_and_a_forged_one_is_refused(
    browser: Any, worker: WorkerProcess, screenshots: Path
) -> None:
    report_id = "rpt-hotline-0118"
    file_report(worker, report_id, received_now())
    async with opened(browser, worker.port, screenshots) as session:
        page = session.page
        await session.sign_in(SUPERVISOR)
        await page.get_by_role("link", name=report_id).click()
        await page.wait_for_load_state("load")
        main = await session.text("main")
        await session.check("acting on it needs the reviewer role" in main, main)
        await session.check(await page.locator("main form").count() == 0,
                            "a supervisor is offered a report action's form")  # fmt: skip

        # not offered; posted anyway with the session's own CSRF token (the sign-out form's)
        csrf = await page.locator("input[name=csrf]").first.input_value()
        answer = await page.request.post(
            f"{session.base}/console/reports/{report_id}/accept",
            form={"csrf": csrf, "subject": SUBJECT, "told_reporter": "yes"},
            max_redirects=0,
        )
        refused = await answer.text()
        await session.check(
            answer.status == 403 and "report actions need reviewer" in refused, refused
        )
        status, body = call(worker.port, "GET", f"/v1/reports/{report_id}", SUPERVISOR)
        await session.check(
            (status, body.get("status"), len(body.get("history", ()))) == (200, "received", 1),
            json.dumps(body),
        )
        await session.done()


async def test_a_reviewer_without_reports_contact_does_not_see_the_reporters_name_or_contact(
    browser: Any, worker: WorkerProcess, screenshots: Path
) -> None:
    report_id = "rpt-hotline-0119"
    file_report(worker, report_id, received_now())
    async with opened(browser, worker.port, screenshots) as session:
        await session.sign_in(REVIEWER, then=f"/console/reports/{report_id}")
        html = await session.page.content()
        await session.check(CONTACT not in html and NAME not in html, "the reporter is shown")
        hidden = "real name (shown to the reports:contact role only)"
        await session.check(hidden in await session.text("main"), "no word of a hidden reporter")


async def test_a_token_holding_reports_contact_sees_the_reporters_name_and_contact(
    browser: Any, worker: WorkerProcess, screenshots: Path
) -> None:
    report_id = "rpt-hotline-0120"
    file_report(worker, report_id, received_now())
    async with opened(browser, worker.port, screenshots) as session:
        await session.sign_in(CALLER, then=f"/console/reports/{report_id}")
        main = await session.text("main")
        await session.check(f"{NAME}, {CONTACT}" in main, main)


async def test_on_a_phones_width_no_reports_page_scrolls_sideways(
    browser: Any, worker: WorkerProcess, screenshots: Path
) -> None:
    report_id = "rpt-hotline-0121-a-long-ticket-number-of-the-hotline-system"
    file_report(worker, report_id, received_now())
    for who in (REVIEWER, CALLER):  # the forms, and the reporter's identity
        async with opened(browser, worker.port, screenshots, 360, 740) as session:
            await session.sign_in(who)
            await session.fits(360)
            await session.page.goto(f"{session.base}/console/reports/{report_id}")
            await session.fits(360)
