"""The console's pages over a cases runtime holding plain dicts and a fake sanctions view, behind
the worker's access control: sign-in and its cookie, the roles (a supervisor reads, a reviewer
acts), CSRF, escaping of ids, and an action published as the API publishes it."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from claimstream.cases.actions import AdvanceCase, DecideCase
from claimstream.cases.calendar import load_calendar
from claimstream.cases.case import CaseSettings, Procedure, case_from_dict, case_to_dict
from claimstream.freezes.memory import MemoryRegistry
from claimstream.kafka.actions import unfreeze_from_input, verdict_from_input
from claimstream.model.outputs import Subject
from claimstream.sanctions.codec import action_to_dict
from claimstream.sanctions.signatures import unsigned
from claimstream.stream.app import create_app
from claimstream.stream.http.access import token_line
from claimstream.stream.http.console.pages import console_routes
from claimstream.stream.http.console.session import (
    COOKIE,
    csrf_ok,
    csrf_token,
    over_tls,
    same_origin,
)
from claimstream.stream.settings import Settings
from tests.support.http import SH, Sent, access_of, api_into, cases_runtime, clients, token_lines

TOKENS = {
    "li.na": ("reviewer", "tok-reviewer"),
    "zhou": ("supervisor", "tok-supervisor"),
    "till": ("settlement", "tok-settlement"),
}
LINES = token_lines(TOKENS)
PROC = Procedure(CaseSettings(), load_calendar(None, SH))
T0 = "2026-03-02T10:00:00+08:00"
T1 = "2026-03-09T10:00:00+08:00"
EVIL = "H<script>alert(1)</script>"
LATER = datetime.fromisoformat("2026-03-25T00:00:00+08:00").timestamp()


def case(case_id: str, subject: str, at: str, alerts: dict[str, float]) -> dict[str, Any]:
    opened = PROC.open(case_id, Subject("institution", subject), at, "system",
                       action_id=f"act-{case_id}", institution_id=subject)  # fmt: skip
    for alert_id, amount in alerts.items():
        opened = PROC.add_alert(opened, alert_id, amount, at)
    return case_to_dict(opened)


def alert(alert_id: str, severity: str, occurred: str, **extra: Any) -> dict[str, Any]:
    return {
        "alert_id": alert_id, "rule": "repeat_dispensing", "rule_version": 1,
        "severity": severity, "occurred_at": occurred, "detected_at": occurred,
        "message": "dispensed again", "event_ids": [f"evt-{alert_id}"], "details": {},
        "amount": 10.0, "legal_basis": "Regulation art. 38", "status": "open", **extra,
    }  # fmt: skip


ALERTS = {
    "alr-late": alert("alr-late", "warning", "2026-03-02T11:00:00+08:00"),
    "alr-early": alert(
        "alr-early",
        "critical",
        "2026-03-02T09:00:00+08:00",
        message="<b>markup</b> in a message",
        details={"max_days": 30},
    ),
    "alr-small": alert("alr-small", "warning", T0),
    "alr-evil": alert("alr-evil", "info", T0),
}


#: institution H2 (case-2's subject) is frozen by the ladder; H1 (case-1's) is not
FREEZE = {"command_id": "cmd-f1", "from": T0, "until": "2026-03-03T00:00:00+08:00",
          "origin": "ladder", "alert_ids": ["alr-small"]}  # fmt: skip
STANDINGS = {
    "H1": {"subject": {"kind": "institution", "id": "H1"}, "freezes": [], "suspension": None},
    "H2": {"subject": {"kind": "institution", "id": "H2"}, "freezes": [FREEZE],
           "suspension": None},
}  # fmt: skip


class View:
    """The sanctions view's reads the console uses."""

    def key_of(self, kind: str, id_: str) -> str:
        return f"{kind}:{id_}"

    def alert(self, alert_id: str) -> dict[str, Any] | None:
        return ALERTS.get(alert_id)

    def subject(self, kind: str, id_: str) -> dict[str, Any] | None:
        if kind == "institution":
            return STANDINGS.get(id_)
        return {"points": 6} if kind == "doctor" else None

    def institution(self, id_: str) -> dict[str, Any] | None:
        if id_ not in STANDINGS:
            return None
        return {
            "institution_id": id_, "grade": "B", "level": 1, "frozen_until": None,
            "freezes": STANDINGS[id_]["freezes"], "suspension": None, "open_alerts": [],
            "rollup": {"institution_id": id_, "alerts": 2, "amount": 20.0, "departments": [],
                       "doctors": [{"id": "D7", "alerts": 2, "amount": 20.0, "alert_ids": []}]},
        }  # fmt: skip


Serve = Callable[..., Any]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    async with clients() as start_client:

        async def start(
            now: float | None = None, owner_of: Any = None, fetch: Any = None
        ) -> tuple[Any, Sent, dict[str, Any]]:
            sent = Sent()
            table = {
                "case-1": case("case-1", "H1", T0, {"alr-late": 300.0, "alr-early": 200.0}),
                "case-2": case("case-2", "H2", T0, {"alr-small": 50.0}),
                "case-3": case("case-3", "H3", T1, {}),
                "case-evil": case("case-evil", EVIL, T1, {"alr-evil": 1.0}),
            }
            runtime = cases_runtime(table, PROC, lambda: now)
            access = access_of(LINES)
            routes = console_routes(runtime, api_into(sent, View()), access, tz=lambda: SH,
                                    owner_of=owner_of, fetch=fetch)  # fmt: skip
            return await start_client(access, routes), sent, table

        yield start


def cookie(who: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={TOKENS[who][1]}"}


async def get(client: Any, path: str, who: str | None = "zhou") -> tuple[int, str]:
    headers = cookie(who) if who else {}
    async with client.get(path, headers=headers, allow_redirects=False) as response:
        return response.status, await response.text()


async def post(
    client: Any, path: str, form: dict[str, str], who: str = "li.na", **headers: str
) -> tuple[int, str, Any]:
    async with client.post(
        path, data=form, headers={**cookie(who), **headers}, allow_redirects=False
    ) as response:
        return response.status, await response.text(), response.headers


def csrf(who: str) -> str:
    return csrf_token(TOKENS[who][1])


# -- the session ------------------------------------------------------------------------------


def test_the_csrf_token_belongs_to_one_session() -> None:
    assert csrf_ok("tok-a", csrf_token("tok-a"))
    assert not csrf_ok("tok-a", csrf_token("tok-b"))
    assert not csrf_ok("tok-a", "")
    assert not csrf_ok("tok-a", None)


@pytest.mark.parametrize(
    ("headers", "same"),
    [
        ({}, True),
        ({"Origin": "http://console.example:6066"}, True),
        ({"Origin": "https://console.example:6066"}, True),
        ({"Origin": "https://evil.example"}, False),
        ({"Origin": "null"}, False),
        ({"Origin": "https://proxy.example", "X-Forwarded-Host": "proxy.example"}, True),
    ],
)
def test_a_form_is_from_this_console_when_its_origin_names_the_host_asked(
    headers: dict[str, str], same: bool
) -> None:
    assert same_origin(headers, "console.example:6066") is same


def test_the_cookie_is_secure_over_tls_or_behind_a_proxy_that_says_https() -> None:
    assert over_tls(True, {})
    assert over_tls(False, {"X-Forwarded-Proto": "https"})
    assert not over_tls(False, {})


async def test_behind_a_tls_proxy_the_cookie_is_secure(serve: Serve) -> None:
    client, _, _ = await serve()
    headers = {"X-Forwarded-Proto": "https"}
    data = {"token": "tok-supervisor"}
    async with client.post(
        "/console/login", data=data, headers=headers, allow_redirects=False
    ) as response:
        assert "Secure" in response.headers["Set-Cookie"]


async def test_signing_in_keeps_the_token_in_an_httponly_strict_console_cookie(
    serve: Serve,
) -> None:
    client, _, _ = await serve()
    async with client.post(
        "/console/login", data={"token": "tok-supervisor", "next": "/console/cases/case-1"},
        allow_redirects=False,
    ) as response:  # fmt: skip
        assert response.status == 303
        assert response.headers["Location"] == "/console/cases/case-1"
        header = response.headers["Set-Cookie"]
    assert header.startswith(f"{COOKIE}=tok-supervisor;")
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Path=/console" in header
    assert "Secure" not in header  # plain HTTP here; over TLS it is Secure


async def test_a_token_that_is_not_valid_does_not_sign_in(serve: Serve) -> None:
    client, _, _ = await serve()
    async with client.post("/console/login", data={"token": "nope"}) as response:
        assert response.status == 401
        assert "Set-Cookie" not in response.headers
        assert "That token is not valid." in await response.text()


async def test_a_settlement_token_may_not_sign_in(serve: Serve) -> None:
    client, _, _ = await serve()
    async with client.post("/console/login", data={"token": "tok-settlement"}) as response:
        assert response.status == 403
        assert "Set-Cookie" not in response.headers


async def test_after_signing_in_the_console_never_redirects_off_the_console(
    serve: Serve,
) -> None:
    client, _, _ = await serve()
    for target in ("https://evil.example/", "//evil.example/console/", "/v1/cases"):
        data = {"token": "tok-supervisor", "next": target}
        async with client.post("/console/login", data=data, allow_redirects=False) as response:
            assert response.headers["Location"] == "/console/", target


async def test_a_page_without_a_session_sends_to_the_sign_in_page(serve: Serve) -> None:
    client, _, _ = await serve()
    async with client.get("/console/cases/case-1", allow_redirects=False) as response:
        assert response.status == 303
        assert response.headers["Location"].startswith("/console/login?next=/console/cases/")


async def test_signing_out_clears_the_cookie(serve: Serve) -> None:
    client, _, _ = await serve()
    status, _, headers = await post(client, "/console/logout", {"csrf": csrf("zhou")}, "zhou")
    assert status == 303
    assert headers["Set-Cookie"].startswith(f'{COOKIE}="";') or "Max-Age=0" in headers["Set-Cookie"]


# -- reading ----------------------------------------------------------------------------------


async def test_the_queue_is_by_due_time_then_severity_then_amount_with_overdue_in_words(
    serve: Serve,
) -> None:
    client, _, _ = await serve(now=LATER)
    status, html = await get(client, "/console/")
    assert status == 200
    order = re.findall(r'href="/console/cases/([^"]+)"', html)
    # case-1 and case-2 are due together: case-1 has the critical alert
    # and case-evil (an info alert) comes before case-3 (none) at the same due time
    assert order == ["case-1", "case-2", "case-evil", "case-3"]
    row = html.split('href="/console/cases/case-1"')[1].split("</tr>")[0]
    assert "Overdue" in row and "critical" in row


async def test_the_pages_are_not_cached_framed_or_scripted(serve: Serve) -> None:
    client, _, _ = await serve()
    async with client.get("/console/", headers=cookie("zhou")) as response:
        assert response.headers["Cache-Control"] == "no-store"
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
        assert "<script" not in await response.text()


async def test_ids_and_alert_text_are_escaped_in_the_html(serve: Serve) -> None:
    client, _, _ = await serve()
    _, queue = await get(client, "/console/")
    _, page = await get(client, "/console/cases/case-evil")
    _, other = await get(client, "/console/cases/case-1")
    for html in (queue, page):
        assert EVIL not in html and "H&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>markup</b>" not in other and "&lt;b&gt;markup&lt;/b&gt;" in other


async def test_the_evidence_shows_the_alerts_in_time_order_with_rule_and_law(
    serve: Serve,
) -> None:
    client, _, _ = await serve()
    _, html = await get(client, "/console/cases/case-1")
    evidence = html.split('id="evidence-h"')[1]
    assert evidence.index("2026-03-02T09:00") < evidence.index("2026-03-02T11:00")
    assert "repeat_dispensing" in evidence and "Regulation art. 38" in evidence
    assert "max_days" in evidence and "evt-alr-early" in evidence


async def test_a_supervisor_is_not_offered_the_action_forms(serve: Serve) -> None:
    client, _, _ = await serve()
    _, html = await get(client, "/console/cases/case-1", "zhou")
    assert "/advance" not in html and "needs the reviewer role" in html


async def test_a_reviewer_is_offered_the_next_step_with_the_sessions_csrf_token(
    serve: Serve,
) -> None:
    client, _, _ = await serve()
    _, html = await get(client, "/console/cases/case-1", "li.na")
    assert 'action="/console/cases/case-1/advance"' in html
    assert f'name="csrf" value="{csrf("li.na")}"' in html
    assert 'name="to" value="re_review"' in html


async def test_the_institution_page_shows_grade_open_cases_and_doctors_points(
    serve: Serve,
) -> None:
    client, _, _ = await serve()
    status, html = await get(client, "/console/institutions/H1")
    assert status == 200
    assert "case-1" in html and "6 points" in html and ">B<" in html


# -- acting -----------------------------------------------------------------------------------


async def test_a_reviewers_advance_is_published_signed_in_their_name(serve: Serve) -> None:
    client, sent, _ = await serve()
    form = {"csrf": csrf("li.na"), "to": "re_review", "note": "records checked"}
    status, _, headers = await post(client, "/console/cases/case-1/advance", form)
    assert status == 303
    ((topic, key, value, _),) = sent.records
    record = orjson.loads(value)
    assert (topic, key) == ("claimstream.actions.v1", b"case-1")
    assert (record["type"], record["to"], record["by"]) == ("case_advance", "re_review", "li.na")
    assert "signature" in record
    assert headers["Location"] == f"/console/cases/case-1?pending={record['action_id']}"


async def test_a_supervisors_action_is_refused_403_and_nothing_is_published(
    serve: Serve,
) -> None:
    client, sent, _ = await serve()
    form = {"csrf": csrf("zhou"), "to": "re_review"}
    status, html, _ = await post(client, "/console/cases/case-1/advance", form, "zhou")
    assert (status, sent.records) == (403, [])
    assert "case actions need reviewer" in html


@pytest.mark.parametrize(
    ("form", "headers"),
    [
        ({"to": "re_review"}, {}),
        ({"to": "re_review", "csrf": csrf_token("tok-supervisor")}, {}),
        (
            {"to": "re_review", "csrf": csrf_token("tok-reviewer")},
            {"Origin": "https://evil.example"},
        ),
    ],
    ids=["no token", "another sessions token", "another origin"],
)
async def test_a_form_without_this_sessions_csrf_token_or_from_another_origin_is_refused(
    serve: Serve, form: dict[str, str], headers: dict[str, str]
) -> None:
    client, sent, _ = await serve()
    status, html, _ = await post(client, "/console/cases/case-1/advance", form, **headers)
    assert (status, sent.records) == (403, [])
    assert "did not come from your console session" in html


async def test_a_step_the_case_refuses_is_shown_and_nothing_is_published(serve: Serve) -> None:
    client, sent, _ = await serve()
    form = {"csrf": csrf("li.na"), "outcome": "confirmed", "nature": "operational_error",
            "confirmed_amount": "10"}  # fmt: skip
    status, html, _ = await post(client, "/console/cases/case-1/decide", form)
    assert (status, sent.records) == (409, [])
    assert "Not done: a decision is taken at the decision step" in html


async def test_bad_input_is_shown_on_the_case_page_and_nothing_is_published(
    serve: Serve,
) -> None:
    client, sent, _ = await serve()
    form = {"csrf": csrf("li.na"), "owner": "  "}
    status, html, _ = await post(client, "/console/cases/case-1/assign", form)
    assert (status, sent.records) == (400, [])
    assert "Not done: owner must be a non-empty string" in html


async def test_the_case_page_reloads_itself_until_the_published_action_is_applied(
    serve: Serve,
) -> None:
    client, _, table = await serve()
    _, waiting = await get(client, "/console/cases/case-1?pending=act-x", "li.na")
    assert 'http-equiv="refresh"' in waiting and "tries=1" in waiting
    table["case-1"]["history"].append(
        {
            "action_id": "act-x",
            "type": "case_advance",
            "by": "li.na",
            "at": T1,
            "step": "re_review",
            "note": "",
        }
    )
    _, applied = await get(client, "/console/cases/case-1?pending=act-x&tries=1", "li.na")
    assert 'http-equiv="refresh"' not in applied and "is applied" in applied


async def test_no_case_subject_or_institution_id_is_logged_at_info_or_above(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    client, _, _ = await serve()
    caplog.set_level(logging.INFO)
    await client.post("/console/login", data={"token": "tok-reviewer"}, allow_redirects=False)
    await get(client, "/console/cases/case-evil", "li.na")
    await post(client, "/console/cases/case-evil/advance", {"csrf": csrf("li.na")})
    await post(client, "/console/cases/case-evil/advance", {"csrf": "x"})
    await post(client, "/console/cases/case-evil/advance", {"csrf": csrf("zhou")}, "zhou")
    # the test server's access log is left out: the worker's (faust's AppRunner) has none
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.INFO and r.name != "aiohttp.access"
    ]
    assert lines  # the sign-in, the write and the refusals are logged
    assert not [line for line in lines if "case-evil" in line or "H<script>" in line]


async def test_a_case_another_worker_holds_is_read_from_its_owner_with_the_persons_token(
    serve: Serve,
) -> None:
    asked: list[tuple[str, str, str]] = []
    held = case("case-far", "H9", T0, {})

    async def fetch(owner: str, path: str, token: str) -> tuple[int, Any]:
        asked.append((owner, path, token))
        totals = dict.fromkeys(("flagged", "confirmed", "deducted", "recovered"), 0.0)
        return 200, {**held, "overdue": False, "totals": totals, "as_of": None}

    client, _, _ = await serve(owner_of=lambda space, key: ("http://w2:6066", False), fetch=fetch)
    status, html = await get(client, "/console/cases/case-far")
    assert status == 200 and "H9" in html
    assert asked == [("http://w2:6066", "/v1/cases/case-far", "tok-supervisor")]


async def test_the_worker_serves_the_console_past_its_access_control() -> None:
    settings = Settings(
        sanctions_enabled=False,
        audit_enabled=False,
        control_enabled=False,
        api_tokens=";".join(token_line(n, r, t) for n, (r, t) in TOKENS.items()),
    )
    app = create_app(settings, registry=MemoryRegistry(), sinks=[])
    client: TestClient[Any, Any] = TestClient(TestServer(app.web.web_app))  # type: ignore[attr-defined]
    await client.start_server()
    try:
        status, html = await get(client, "/console/login", None)
        assert status == 200 and "Your API token" in html
        status, _ = await get(client, "/console/", None)
        assert status == 303
        status, html = await get(client, "/console/reports", "zhou")
        assert status == 200 and "Reports" in html
    finally:
        await client.close()


def walked(state: dict[str, Any], *, decided: bool) -> dict[str, Any]:
    """The case advanced to the decision step, and decided (confirmed, 150) if `decided`."""
    current: Any = case_from_dict(state)
    current = PROC.apply(current, AdvanceCase(current.case_id, "li.na", T1, to="decision"))
    if decided:
        decision = DecideCase(current.case_id, "confirmed", "operational_error", 150.0,
                              "li.na", T1)  # fmt: skip
        current = PROC.apply(current, decision)
    return case_to_dict(current)


async def test_at_the_decision_step_the_decide_form_publishes_the_decision(
    serve: Serve,
) -> None:
    client, sent, table = await serve()
    table["case-1"] = walked(table["case-1"], decided=False)
    _, html = await get(client, "/console/cases/case-1", "li.na")
    assert 'action="/console/cases/case-1/decide"' in html and "/advance" not in html
    form = {"csrf": csrf("li.na"), "outcome": "partly_confirmed", "nature": "operational_error",
            "confirmed_amount": "120.5", "note": "one line justified"}  # fmt: skip
    status, _, _ = await post(client, "/console/cases/case-1/decide", form)
    assert status == 303
    record = orjson.loads(sent.records[0][2])
    assert (record["type"], record["outcome"], record["confirmed_amount"]) == (
        "case_decide", "partly_confirmed", 120.5
    )  # fmt: skip


async def test_once_confirmed_the_recover_form_publishes_the_money(serve: Serve) -> None:
    client, sent, table = await serve()
    table["case-1"] = walked(table["case-1"], decided=True)
    _, html = await get(client, "/console/cases/case-1", "li.na")
    assert 'action="/console/cases/case-1/recover"' in html
    form = {"csrf": csrf("li.na"), "money": "deducted", "amount": "100",
            "reference": "settlement 2026-04"}  # fmt: skip
    status, _, _ = await post(client, "/console/cases/case-1/recover", form)
    assert status == 303
    record = orjson.loads(sent.records[0][2])
    assert (record["type"], record["amount"], record["by"]) == ("case_recover", 100.0, "li.na")


async def test_more_money_than_confirmed_is_refused_and_nothing_is_published(
    serve: Serve,
) -> None:
    client, sent, table = await serve()
    table["case-1"] = walked(table["case-1"], decided=True)
    form = {"csrf": csrf("li.na"), "money": "recovered", "amount": "151"}
    status, html, _ = await post(client, "/console/cases/case-1/recover", form)
    assert (status, sent.records) == (409, [])
    assert "exceed the 150.00 confirmed" in html


async def test_a_standby_copy_of_another_workers_case_is_not_tried_but_published(
    serve: Serve,
) -> None:
    async def fetch(owner: str, path: str, token: str) -> tuple[int, Any]:
        return 502, None

    client, sent, _ = await serve(
        owner_of=lambda space, key: ("http://w2:6066", False), fetch=fetch
    )
    form = {"csrf": csrf("li.na"), "outcome": "not_confirmed"}
    status, _, _ = await post(client, "/console/cases/case-1/decide", form)
    # the owner's agent judges it (a refused notice there), as with POST /v1/cases/.../decide
    assert (status, len(sent.records)) == (303, 1)


async def test_the_sign_in_page_says_only_its_own_notes_never_a_links_text(serve: Serve) -> None:
    client, _, _ = await serve()
    _, expired = await get(client, "/console/login?why=expired", None)
    _, forged = await get(client, "/console/login?why=Email+your+token+to+x", None)
    assert "no longer valid" in expired
    assert "Email your token" not in forged and 'role="alert"' not in forged


async def test_a_token_no_longer_valid_is_signed_out_and_sent_to_sign_in(serve: Serve) -> None:
    client, _, _ = await serve()
    headers = {"Cookie": f"{COOKIE}=tok-revoked"}
    async with client.get("/console/", headers=headers, allow_redirects=False) as response:
        assert response.status == 303
        assert "why=expired" in response.headers["Location"]
        assert "Max-Age=0" in response.headers["Set-Cookie"]


# -- a reviewer's verdict on an alert, and an unfreeze (the CLI's people's actions) -----------


async def test_a_reviewer_is_offered_a_review_form_for_each_alert_held(serve: Serve) -> None:
    client, _, _ = await serve()
    _, html = await get(client, "/console/cases/case-1", "li.na")
    forms = html.split('action="/console/cases/case-1/review"')[1:]
    held = sorted(re.search(r'name="alert_id" value="([^"]+)"', f)[1] for f in forms)  # type: ignore[index]
    assert held == ["alr-early", "alr-late"]


async def test_a_supervisor_is_offered_no_review_or_unfreeze_form(serve: Serve) -> None:
    client, _, _ = await serve()
    _, case_page = await get(client, "/console/cases/case-2", "zhou")
    _, institution = await get(client, "/console/institutions/H2", "zhou")
    assert "/review" not in case_page and "/unfreeze" not in case_page
    assert "/unfreeze" not in institution and "needs the reviewer role" in institution


async def test_a_review_publishes_the_record_the_cli_builder_makes_for_the_same_input(
    serve: Serve,
) -> None:
    client, sent, _ = await serve()
    form = {"csrf": csrf("li.na"), "alert_id": "alr-late", "verdict": "false_positive",
            "note": "a repeat prescription on file"}  # fmt: skip
    status, _, headers = await post(client, "/console/cases/case-1/review", form)
    assert status == 303
    ((topic, key, value, _),) = sent.records
    record = orjson.loads(value)
    note = "a repeat prescription on file"
    cli = verdict_from_input(
        "alr-late", "false_positive", "li.na", note=note, at=record["at"], tz=SH
    )
    assert (topic, key) == ("claimstream.actions.v1", b"alr-late")
    assert unsigned(record) == action_to_dict(cli) and "signature" in record
    assert headers["Location"] == (
        f"/console/cases/case-1?pending={cli.action_id}&alert=alr-late&verdict=false_positive"
    )


async def test_a_supervisors_review_is_refused_403_and_nothing_is_published(
    serve: Serve,
) -> None:
    client, sent, _ = await serve()
    form = {"csrf": csrf("zhou"), "alert_id": "alr-late", "verdict": "confirmed"}
    status, html, _ = await post(client, "/console/cases/case-1/review", form, "zhou")
    assert (status, sent.records) == (403, [])
    assert "actions need reviewer" in html


async def test_a_review_of_another_cases_alert_is_refused_and_nothing_is_published(
    serve: Serve,
) -> None:
    client, sent, _ = await serve()
    form = {"csrf": csrf("li.na"), "alert_id": "alr-small", "verdict": "confirmed"}
    status, html, _ = await post(client, "/console/cases/case-1/review", form)
    assert (status, sent.records) == (409, [])
    assert "Not done: alert alr-small is not one of this case" in html


async def test_a_review_without_a_verdict_is_refused_and_nothing_is_published(
    serve: Serve,
) -> None:
    client, sent, _ = await serve()
    form = {"csrf": csrf("li.na"), "alert_id": "alr-late"}
    status, html, _ = await post(client, "/console/cases/case-1/review", form)
    assert (status, sent.records) == (400, [])
    assert "Not done: verdict must be one of confirmed, false_positive" in html


async def test_the_case_page_reloads_until_the_alert_has_the_verdict(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _, _ = await serve()
    path = "/console/cases/case-1?pending=act-v&alert=alr-late&verdict=confirmed"
    _, waiting = await get(client, path, "li.na")
    assert 'http-equiv="refresh"' in waiting and "verdict=confirmed&amp;tries=1" in waiting
    monkeypatch.setitem(ALERTS, "alr-late", {**ALERTS["alr-late"], "status": "confirmed"})
    _, applied = await get(client, f"{path}&tries=1", "li.na")
    assert 'http-equiv="refresh"' not in applied and "is applied" in applied


async def test_the_institution_page_offers_a_reviewer_to_lift_its_freezes_in_force(
    serve: Serve,
) -> None:
    client, _, _ = await serve()
    _, frozen = await get(client, "/console/institutions/H2", "li.na")
    _, clear = await get(client, "/console/institutions/H1", "li.na")
    assert 'action="/console/institutions/H2/unfreeze"' in frozen and "ladder" in frozen
    assert "/unfreeze" not in clear


async def test_an_unfreeze_publishes_the_record_the_cli_builder_makes_for_the_same_input(
    serve: Serve,
) -> None:
    client, sent, _ = await serve()
    form = {"csrf": csrf("li.na"), "reason": "appeal 2026-041 upheld", "ground": "appeal"}
    status, _, headers = await post(client, "/console/institutions/H2/unfreeze", form)
    assert status == 303
    ((topic, key, value, _),) = sent.records
    record = orjson.loads(value)
    cli = unfreeze_from_input("institution:H2", "appeal 2026-041 upheld", "li.na",
                              ground="appeal", at=record["at"], tz=SH)  # fmt: skip
    assert (topic, key) == ("claimstream.actions.v1", b"institution:H2")
    assert unsigned(record) == action_to_dict(cli) and "signature" in record
    assert headers["Location"] == f"/console/institutions/H2?pending={cli.action_id}&lifted=yes"


async def test_a_supervisors_unfreeze_is_refused_403_and_nothing_is_published(
    serve: Serve,
) -> None:
    client, sent, _ = await serve()
    form = {"csrf": csrf("zhou"), "reason": "appeal upheld"}
    status, html, _ = await post(client, "/console/institutions/H2/unfreeze", form, "zhou")
    assert (status, sent.records) == (403, [])
    assert "actions need reviewer" in html


async def test_an_unfreeze_without_a_reason_is_refused_and_nothing_is_published(
    serve: Serve,
) -> None:
    client, sent, _ = await serve()
    form = {"csrf": csrf("li.na"), "reason": "  "}
    status, html, _ = await post(client, "/console/institutions/H2/unfreeze", form)
    assert (status, sent.records) == (400, [])
    assert "Not done: reason must be a non-empty string" in html


async def test_an_unfreeze_form_posted_from_another_origin_is_refused(serve: Serve) -> None:
    client, sent, _ = await serve()
    form = {"csrf": csrf("li.na"), "reason": "appeal upheld"}
    headers = {"Origin": "https://evil.example"}
    status, _, _ = await post(client, "/console/institutions/H2/unfreeze", form, **headers)
    assert (status, sent.records) == (403, [])


async def test_the_case_page_offers_an_unfreeze_when_its_subject_has_freezes_in_force(
    serve: Serve,
) -> None:
    client, _, _ = await serve()
    _, frozen = await get(client, "/console/cases/case-2", "li.na")
    _, clear = await get(client, "/console/cases/case-1", "li.na")
    assert 'action="/console/cases/case-2/unfreeze"' in frozen
    assert 'name="scope" value="institution:H2"' in frozen
    assert "/unfreeze" not in clear


async def test_an_unfreeze_from_a_case_page_publishes_the_cli_builders_record(
    serve: Serve,
) -> None:
    client, sent, _ = await serve()
    form = {"csrf": csrf("li.na"), "scope": "institution:H2", "reason": "invoices supplied"}
    status, _, _ = await post(client, "/console/cases/case-2/unfreeze", form)
    assert status == 303
    record = orjson.loads(sent.records[0][2])
    cli = unfreeze_from_input("institution:H2", "invoices supplied", "li.na",
                              at=record["at"], tz=SH)  # fmt: skip
    assert unsigned(record) == action_to_dict(cli)


async def test_an_unfreeze_from_a_case_page_of_another_subject_is_refused(serve: Serve) -> None:
    client, sent, _ = await serve()
    form = {"csrf": csrf("li.na"), "scope": "institution:H1", "reason": "invoices supplied"}
    status, html, _ = await post(client, "/console/cases/case-2/unfreeze", form)
    assert (status, sent.records) == (409, [])
    assert "Not done: the scope is not this case" in html
