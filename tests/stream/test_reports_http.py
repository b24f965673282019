"""The reports API over a cases runtime holding plain dicts: the front desk files a report
(idempotently), supervisors read without the reporter's identity, only `reports:contact` sees
the contact, reviewers act (a refusal of the held report is 409), bad fields are named."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest

from claimstream.cases.calendar import load_calendar
from claimstream.cases.case import CaseSettings, Procedure, case_to_dict
from claimstream.cases.reports import Reporter, new_report
from claimstream.model.outputs import Subject
from claimstream.stream.http.reports import report_routes
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
    "desk": ("intake", "tok-desk"),
    "li.na": ("reviewer", "tok-reviewer"),
    "zhou": ("supervisor", "tok-supervisor"),
    "wu": ("supervisor,reports:contact", "tok-contact"),
    "ops": ("admin", "tok-admin"),
}
LINES = token_lines(TOKENS)
PROC = Procedure(CaseSettings(), CAL)
T0 = "2026-03-06T10:00:00+08:00"
CONTACT = "138-0000-0000"
HELD = new_report(T0, "hotline", Reporter(False, "Zhang San", CONTACT), "pharmacy on Elm St",
                  "sells cards", report_id="rpt-held")  # fmt: skip
CASE = PROC.open("case-1", Subject("institution", "H1"), T0, "system", action_id="act-0")
BODY = {
    "channel": "web",
    "reporter": {"anonymous": False, "name": "Li Si", "contact": CONTACT},
    "about": "clinic on Oak St",
    "description": "bills visits that did not happen",
    "evidence": ["photo-1"],
    "received_at": T0,
}


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name][1]}"}


Serve = Callable[..., Any]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    async with clients() as start_client:

        async def start(*, enabled: bool = True) -> tuple[Any, Sent]:
            sent = Sent()
            runtime = None
            if enabled:
                runtime = cases_runtime({"case-1": case_to_dict(CASE)}, PROC)
                with_reports(runtime, [HELD], CAL, lambda: None)
            routes = report_routes(
                runtime, api_into(sent), tz=lambda: SH, worker_url="http://w",
                owner_of=lambda space, key: ("http://w", True), forward=None,  # type: ignore[arg-type]
            )  # fmt: skip
            return await start_client(access_of(LINES), routes), sent

        yield start


async def post(client: Any, path: str, body: Any, who: str) -> tuple[int, Any, str]:
    async with client.post(path, data=orjson.dumps(body), headers=auth(who)) as response:
        text = await response.text()
        return response.status, orjson.loads(text), text


async def get(client: Any, path: str, who: str = "zhou") -> tuple[int, Any, str]:
    async with client.get(path, headers=auth(who)) as response:
        text = await response.text()
        return response.status, orjson.loads(text), text


async def test_the_front_desk_files_a_report_published_signed_under_its_id(serve: Serve) -> None:
    client, sent = await serve()
    status, body, _ = await post(client, "/v1/reports", BODY, "desk")
    ((topic, key, value, _),) = sent.records
    record = orjson.loads(value)
    assert (status, topic, key.decode()) == (202, "claimstream.actions.v1", body["report_id"])
    assert (record["type"], record["by"], "signature" in record) == ("report_receive", "desk", True)


async def test_a_retried_post_is_the_same_report(serve: Serve) -> None:
    client, sent = await serve()
    first = (await post(client, "/v1/reports", BODY, "desk"))[1]["report_id"]
    again = (await post(client, "/v1/reports", BODY, "desk"))[1]["report_id"]
    assert first == again and sent.records[0][1] == sent.records[1][1]


async def test_a_report_this_worker_holds_is_not_published_again(serve: Serve) -> None:
    client, sent = await serve()
    status, body, _ = await post(client, "/v1/reports", {**BODY, "report_id": "rpt-held"}, "desk")
    assert (status, body["repeated"], sent.records) == (200, True, [])


async def test_the_answer_to_a_filed_report_does_not_repeat_the_contact(serve: Serve) -> None:
    client, _ = await serve()
    assert CONTACT not in (await post(client, "/v1/reports", BODY, "desk"))[2]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"channel": "fax"}, "channel"),
        ({"reporter": {"anonymous": False, "name": "Li Si"}}, "reporter"),
        ({"description": " "}, "description"),
        ({"subject": "hospital:H1"}, "subject"),
        ({"received_at": "2026-03-06T10:00:00"}, "received_at"),
        ({"report_id": "a b"}, "report_id"),
    ],
)
async def test_a_bad_field_is_400_naming_it_and_publishes_nothing(
    serve: Serve, change: dict[str, Any], field: str
) -> None:
    client, sent = await serve()
    status, body, _ = await post(client, "/v1/reports", {**BODY, **change}, "desk")
    assert (status, body["field"], sent.records) == (400, field, [])


async def test_the_front_desk_may_not_read_reports(serve: Serve) -> None:
    client, _ = await serve()
    assert (await get(client, "/v1/reports", who="desk"))[0] == 403


async def test_the_front_desk_may_not_act_on_a_report(serve: Serve) -> None:
    client, sent = await serve()
    status, _, _ = await post(client, "/v1/reports/rpt-held/acknowledge", {}, "desk")
    assert (status, sent.records) == (403, [])


async def test_a_supervisor_lists_reports_without_the_reporter(serve: Serve) -> None:
    client, _ = await serve()
    status, body, text = await get(client, "/v1/reports")
    assert (status, [r["report_id"] for r in body["reports"]]) == (200, ["rpt-held"])
    assert CONTACT not in text and "Zhang San" not in text


@pytest.mark.parametrize("who", ["zhou", "li.na", "ops"])
async def test_a_report_is_shown_without_the_contact_to_every_role_but_reports_contact(
    serve: Serve, who: str
) -> None:
    client, _ = await serve()
    status, body, text = await get(client, "/v1/reports/rpt-held", who=who)
    assert (status, "reporter" in body, CONTACT in text) == (200, False, False)


async def test_the_reports_contact_role_sees_the_contact(serve: Serve) -> None:
    client, _ = await serve()
    body = (await get(client, "/v1/reports/rpt-held", who="wu"))[1]
    assert body["reporter"] == {"anonymous": False, "name": "Zhang San", "contact": CONTACT}


async def test_no_log_line_carries_the_contact(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client, _ = await serve()
    await post(client, "/v1/reports", BODY, "desk")
    await get(client, "/v1/reports/rpt-held", who="wu")
    assert caplog.records and CONTACT not in caplog.text and "Li Si" not in caplog.text


async def test_an_acceptance_into_a_new_case_is_published_with_the_derived_case_id(
    serve: Serve,
) -> None:
    client, sent = await serve()
    status, body, _ = await post(
        client, "/v1/reports/rpt-held/accept", {"subject": "institution:H9"}, "li.na"
    )
    record = orjson.loads(sent.records[0][2])
    assert (status, record["case_id"], record["subject"]["id"]) == (202, body["case_id"], "H9")


async def test_an_acceptance_into_an_unknown_case_held_here_is_409(serve: Serve) -> None:
    client, sent = await serve()
    status, body, _ = await post(
        client, "/v1/reports/rpt-held/accept", {"case_id": "case-none"}, "li.na"
    )
    assert (status, body["reason"], sent.records) == (409, "unknown_case", [])


async def test_feedback_before_a_decision_is_409_undecided(serve: Serve) -> None:
    client, sent = await serve()
    status, body, _ = await post(client, "/v1/reports/rpt-held/feedback", {}, "li.na")
    assert (status, body["reason"], sent.records) == (409, "undecided", [])


async def test_an_acceptance_naming_both_a_case_and_a_subject_is_400(serve: Serve) -> None:
    client, _ = await serve()
    body = {"case_id": "case-1", "subject": "institution:H1"}
    assert (await post(client, "/v1/reports/rpt-held/accept", body, "li.na"))[0] == 400


async def test_casework_off_answers_503(serve: Serve) -> None:
    client, _ = await serve(enabled=False)
    assert (await post(client, "/v1/reports", BODY, "desk"))[0] == 503
