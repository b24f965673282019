"""The console in a real browser against a real worker: Debian's Chromium, headless, driven by
Playwright (`executable_path`, never a browser Playwright downloads), on a worker of the local
broker whose alerts opened a case. A supervisor signs in, opens the queue and the case, and is
refused a reviewer's action; a reviewer advances the case with the keyboard alone and sees the
timeline update. Every page fits a 360 px screen. On a failure a screenshot is kept and named
in the message; with `CONSOLE_SCREENSHOTS=DIR` the pages docs/console.md shows are
saved there too (`docs/img`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import orjson
import pytest

from claimstream.model.outputs import Alert, Subject, stable_id
from tests.integration.stream_support import (
    WorkerProcess,
    log_tail,
    produce,
    start_broker,
    wait_for,
)
from tests.support.browser import Session, console_session
from tests.support.casework import api_call, casework_worker

pytestmark = pytest.mark.integration

ALERTS = "claimstream.alerts.v1"
REVIEWER, SUPERVISOR = "li.na", "zhou.jian"
TOKENS = {REVIEWER: "cs_console-reviewer", SUPERVISOR: "cs_console-supervisor"}
INSTITUTION = "H-console-1"


def alert(name: str, minute: int, amount: float, severity: str) -> Alert:
    return Alert(
        alert_id=stable_id("alr", "console-it", name),
        rule="repeat_dispensing",
        rule_version=1,
        severity=severity,  # type: ignore[arg-type]
        subject=Subject("institution", INSTITUTION),
        patient_id="P-console-1",
        institution_id=INSTITUTION,
        doctor_id="D-console-1",
        department_id="cardiology",
        event_ids=(f"evt-{name}",),
        occurred_at=f"2026-03-02T10:{minute:02d}:00+08:00",
        detected_at=f"2026-03-02T10:{minute:02d}:01+08:00",
        message="dispensed again within the supply of the last dispensing",
        details={"days_since_last": 3, "supply_days": 30},
        amount=amount,
        legal_basis="Regulations on the Supervision of the Medical Security Fund, art. 15",
        behaviour="repeat_charging",
    )


def api_get(port: int, path: str) -> tuple[int, Any]:
    return api_call(port, TOKENS[SUPERVISOR], "GET", path)


@pytest.fixture
def worker_with_a_case(tmp_path: Path) -> Iterator[tuple[WorkerProcess, str]]:
    """A worker on the local broker, and the case two alerts opened on it."""
    broker = start_broker()
    worker: WorkerProcess | None = None
    try:
        roles = {REVIEWER: "reviewer", SUPERVISOR: "supervisor"}
        worker = casework_worker(broker.url, TOKENS, roles, "claimstream-console-it", tmp_path)
        running = worker
        produce(
            broker.bootstrap,
            [
                (ALERTS, INSTITUTION.encode(), orjson.dumps(a.to_dict()))
                for a in (alert("a", 0, 300.0, "high"), alert("b", 5, 200.0, "warning"))
            ],
        )

        def listed() -> str | None:
            status, body = api_get(running.port, "/v1/cases")
            if status != 200 or not body["cases"] or body["cases"][0]["alerts"] < 2:
                return None
            return str(body["cases"][0]["case_id"])

        case_id = wait_for(listed, 120, "the alerts to open a case",
                           explain=lambda: log_tail(running.log_path))  # fmt: skip
        yield running, case_id
    finally:
        if worker is not None:
            worker.stop()
        broker.stop()


def opened(
    browser: Any, port: int, shots: Path, width: int = 1000, height: int = 800
) -> AbstractAsyncContextManager[Session]:
    """A session on the console that signs in at the queue, with the button."""
    return console_session(browser, port, shots, TOKENS, width, height)


async def test_a_supervisor_reads_the_queue_and_the_case_and_is_refused_an_action(
    browser: Any, worker_with_a_case: tuple[WorkerProcess, str], screenshots: Path
) -> None:
    worker, case_id = worker_with_a_case
    async with opened(browser, worker.port, screenshots) as session:
        page = session.page
        await session.sign_in(SUPERVISOR)

        queue = await session.text("main")
        await session.check(case_id in queue and "First review" in queue, queue)
        await session.keep("console-queue.png")
        await page.get_by_role("link", name=case_id).click()
        await page.wait_for_load_state("load")
        case = await session.text("main")
        await session.check("repeat_dispensing" in case and "art. 15" in case, case)
        await session.check("needs the reviewer role" in case, "no read-only notice")
        await session.check(await page.locator("form[action$='/advance']").count() == 0,
                            "a supervisor is offered the advance form")  # fmt: skip

        # the form is not offered; posted anyway (with the session's own CSRF token), it is refused
        csrf = await page.locator("input[name=csrf]").first.input_value()
        answer = await page.request.post(
            f"{session.base}/console/cases/{case_id}/advance",
            form={"csrf": csrf, "to": "re_review"},
            max_redirects=0,
        )
        refused = await answer.text()
        await session.check(answer.status == 403 and "need reviewer" in refused, refused)
        status, body = api_get(worker.port, f"/v1/cases/{case_id}")
        await session.check((status, body.get("step")) == (200, "first_review"), json.dumps(body))
        await session.check(session.errors == [] and session.fetched == [],
                            f"{session.errors} {session.fetched}")  # fmt: skip


async def test_a_reviewer_advances_a_case_by_keyboard_and_sees_the_timeline_update(
    browser: Any, worker_with_a_case: tuple[WorkerProcess, str], screenshots: Path
) -> None:
    worker, case_id = worker_with_a_case
    async with opened(browser, worker.port, screenshots) as session:
        page = session.page
        await session.sign_in(REVIEWER)
        await page.get_by_role("link", name=case_id).click()
        await page.wait_for_load_state("load")

        # keyboard only: the first stop is the skip link, and Tab reaches the advance button
        await page.keyboard.press("Tab")
        first = await page.evaluate("document.activeElement.textContent")
        await session.check(first == "Skip to the content", f"first Tab stop: {first!r}")
        await page.get_by_label("Note (optional)").first.focus()
        await page.keyboard.type("records checked")
        for _ in range(10):
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement.id") == "advance":
                break
        focused = await page.evaluate("document.activeElement.id")
        await session.check(focused == "advance", f"Tab did not reach the button: {focused!r}")
        outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        await session.check(outline not in ("none", ""), f"the focus is not visible: {outline}")
        await page.keyboard.press("Enter")

        # the page reloads itself until the action is applied
        applied = page.get_by_text("is applied")
        await applied.wait_for(timeout=60_000)
        timeline = await session.text("#timeline")
        await session.check(
            f"advanced by {REVIEWER} to Re-review (复审): records checked" in timeline, timeline
        )
        await session.check("Re-review" in await session.text("#step"), "the step did not change")
        await session.keep("console-case.png")
        _, body = api_get(worker.port, f"/v1/cases/{case_id}")
        await session.check(body["step"] == "re_review" and body["history"][-1]["by"] == REVIEWER,
                            json.dumps(body))  # fmt: skip


async def test_on_a_phones_width_no_console_page_scrolls_sideways(
    browser: Any, worker_with_a_case: tuple[WorkerProcess, str], screenshots: Path
) -> None:
    worker, case_id = worker_with_a_case
    async with opened(browser, worker.port, screenshots, 360, 740) as session:
        await session.page.goto(f"{session.base}/console/login")
        await session.fits(360)
        await session.sign_in(REVIEWER)
        await session.fits(360)
        await session.keep("console-queue-360.png")
        await session.page.goto(f"{session.base}/console/cases/{case_id}")
        await session.fits(360)
        await session.page.goto(f"{session.base}/console/institutions/{INSTITUTION}")
        await session.fits(360)


async def test_a_reviewer_marks_an_alert_a_false_positive_by_keyboard_and_sees_it_applied(
    browser: Any, worker_with_a_case: tuple[WorkerProcess, str], screenshots: Path
) -> None:
    worker, case_id = worker_with_a_case
    alert_id = stable_id("alr", "console-it", "a")
    async with opened(browser, worker.port, screenshots) as session:
        page = session.page
        await session.sign_in(REVIEWER)
        await page.goto(f"{session.base}/console/cases/{case_id}")
        form = page.locator(f"form.review:has(input[name=alert_id][value='{alert_id}'])")
        await session.check(await form.count() == 1, "no review form for the alert")

        # keyboard only: the radio chosen with Space, the note typed, Tab to the button, Enter
        await form.get_by_label("false positive").focus()
        await page.keyboard.press("Space")
        await form.get_by_label("Note (optional)").focus()
        await page.keyboard.type("a repeat prescription on file")
        await page.keyboard.press("Tab")
        focused = await page.evaluate("document.activeElement.textContent")
        await session.check(focused == "Record the review", f"Tab reached {focused!r}")
        await page.keyboard.press("Enter")

        # the page reloads itself until the alert's status is the verdict
        await page.get_by_text("is applied").wait_for(timeout=60_000)
        status, body = api_get(worker.port, f"/alerts/{alert_id}")
        await session.check((status, body.get("status")) == (200, "false_positive"),
                            json.dumps(body))  # fmt: skip
        await session.check(session.errors == [] and session.fetched == [],
                            f"{session.errors} {session.fetched}")  # fmt: skip
