"""The casework API over a cases runtime holding plain dicts: reads for supervisors, case actions
for reviewers, published signed on the actions topic, a transition the held case refuses
answered 409 before anything is published."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson
import pytest

from claimstream.cases.calendar import load_calendar
from claimstream.cases.case import Case, CaseSettings, Procedure, case_to_dict
from claimstream.model.outputs import Subject
from claimstream.stream.http.cases import case_routes
from tests.support.http import SH, Sent, access_of, api_into, cases_runtime, clients, token_lines

TOKENS = {"li.na": ("reviewer", "tok-reviewer"), "zhou": ("supervisor", "tok-supervisor")}
LINES = token_lines(TOKENS)
PROC = Procedure(CaseSettings(), load_calendar(None, SH))
T0 = "2026-03-02T10:00:00+08:00"
CASE = PROC.open("case-1", Subject("institution", "H1"), T0, "system", action_id="act-0")
#: the case at its decision step, linking two alerts
AT_DECISION = replace(CASE, step="decision", alert_ids=("alr-1", "alr-2"))
PARTLY = {"outcome": "partly_confirmed", "nature": "operational_error", "confirmed_amount": 10}


def auth(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name][1]}"}


Serve = Callable[..., Any]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    async with clients() as start_client:

        async def start(
            *,
            enabled: bool = True,
            now: float | None = None,
            here: bool = True,
            case: Case = CASE,
            forward: Any = None,
        ) -> tuple[Any, Sent]:
            sent = Sent()
            runtime = None
            if enabled:
                runtime = cases_runtime({"case-1": case_to_dict(case)}, PROC, lambda: now)
            routes = case_routes(
                runtime, api_into(sent), tz=lambda: SH, worker_url="http://w",
                owner_of=lambda space, key: ("http://w" if here else "http://other", here),
                forward=forward,
            )  # fmt: skip
            return await start_client(access_of(LINES), routes), sent

        yield start


async def post(client: Any, path: str, body: Any, who: str = "li.na") -> tuple[int, Any]:
    async with client.post(path, data=orjson.dumps(body), headers=auth(who)) as response:
        return response.status, await response.json()


async def get(client: Any, path: str, who: str = "zhou") -> tuple[int, Any]:
    async with client.get(path, headers=auth(who)) as response:
        return response.status, await response.json()


async def test_a_supervisor_lists_the_held_cases_with_their_overdue_flag(serve: Serve) -> None:
    client, _ = await serve(now=datetime.fromisoformat("2026-04-01T00:00:00+08:00").timestamp())
    status, body = await get(client, "/v1/cases?overdue=true")
    assert status == 200
    assert [(c["case_id"], c["overdue"]) for c in body["cases"]] == [("case-1", True)]


async def test_a_case_is_shown_with_its_timeline(serve: Serve) -> None:
    client, _ = await serve()
    status, body = await get(client, "/v1/cases/case-1")
    assert (status, body["step"], body["history"][0]["type"]) == (200, "first_review", "case_open")


async def test_an_unknown_case_is_404(serve: Serve) -> None:
    client, _ = await serve()
    assert (await get(client, "/v1/cases/case-nope"))[0] == 404


async def test_an_advance_is_published_signed_naming_the_next_step(serve: Serve) -> None:
    client, sent = await serve()
    status, body = await post(client, "/v1/cases/case-1/advance", {"note": "checked", "at": T0})
    assert (status, body["case_id"]) == (202, "case-1")
    ((topic, key, value, _),) = sent.records
    record = orjson.loads(value)
    assert (topic, key) == ("claimstream.actions.v1", b"case-1")
    assert (record["type"], record["to"], record["by"]) == ("case_advance", "re_review", "li.na")
    assert "signature" in record


async def test_a_transition_the_held_case_refuses_is_409_and_publishes_nothing(
    serve: Serve,
) -> None:
    client, sent = await serve()
    body = {"outcome": "confirmed", "nature": "operational_error", "confirmed_amount": 10}
    status, answer = await post(client, "/v1/cases/case-1/decide", body)
    assert (status, answer["reason"], sent.records) == (409, "wrong_step", [])


async def test_a_supervisor_may_not_act(serve: Serve) -> None:
    client, sent = await serve()
    status, _ = await post(client, "/v1/cases/case-1/advance", {}, who="zhou")
    assert (status, sent.records) == (403, [])


async def test_an_action_in_someone_elses_name_is_403(serve: Serve) -> None:
    client, sent = await serve()
    status, _ = await post(client, "/v1/cases/case-1/advance", {"by": "wang.fang"})
    assert (status, sent.records) == (403, [])


async def test_bad_input_is_400_and_publishes_nothing(serve: Serve) -> None:
    client, sent = await serve()
    status, answer = await post(
        client, "/v1/cases/case-1/recover", {"money": "recovered", "amount": -5}
    )
    assert (status, sent.records) == (400, [])
    assert "amount" in answer["error"]


async def test_a_case_opened_by_hand_is_published_under_its_derived_id(serve: Serve) -> None:
    client, sent = await serve()
    status, body = await post(client, "/v1/cases/open", {"subject": "doctor:D7", "at": T0})
    assert status == 202 and body["case_id"].startswith("case-")
    assert sent.records[0][1] == body["case_id"].encode()


async def test_casework_off_answers_503(serve: Serve) -> None:
    client, _ = await serve(enabled=False)
    assert (await get(client, "/v1/cases"))[0] == 503


async def test_a_case_owned_by_another_worker_is_published_untried(serve: Serve) -> None:
    client, sent = await serve(here=False)  # this worker's copy is a standby's: it may lag
    body = {"outcome": "confirmed", "nature": "operational_error", "confirmed_amount": 10}
    status, _ = await post(client, "/v1/cases/case-1/decide", body)
    assert (status, len(sent.records)) == (202, 1)


async def test_a_partly_confirmed_decision_publishes_the_alerts_it_confirms(serve: Serve) -> None:
    client, sent = await serve(case=AT_DECISION)
    body = {**PARTLY, "confirmed_alerts": ["alr-2"], "at": T0}
    status, _ = await post(client, "/v1/cases/case-1/decide", body)
    assert status == 202
    record = orjson.loads(sent.records[0][2])
    assert (record["outcome"], record["confirmed_alerts"]) == ("partly_confirmed", ["alr-2"])


async def test_confirmed_alerts_the_held_case_does_not_link_are_409_naming_the_field(
    serve: Serve,
) -> None:
    client, sent = await serve(case=AT_DECISION)
    body = {**PARTLY, "confirmed_alerts": ["alr-1", "alr-9"]}
    status, answer = await post(client, "/v1/cases/case-1/decide", body)
    assert (status, answer["reason"], sent.records) == (409, "invalid", [])
    assert "confirmed_alerts" in answer["error"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"confirmed_alerts": "alr-1"}, "confirmed_alerts must be a list of alert ids"),
        ({"confirmed_alerts": ["alr-1", "alr-1"]}, "confirmed_alerts names the alert alr-1 twice"),
        ({"confirmed_alerts": ["alr 1"]}, "confirmed_alerts contains ' '"),
        ({"outcome": "confirmed", "confirmed_alerts": ["alr-1"]},
         "confirmed_alerts goes only with a partly_confirmed decision"),
    ],
)  # fmt: skip
async def test_bad_confirmed_alerts_are_400_naming_the_field(
    serve: Serve, change: dict[str, Any], words: str
) -> None:
    client, sent = await serve(case=AT_DECISION)
    status, answer = await post(client, "/v1/cases/case-1/decide", {**PARTLY, **change})
    assert (status, sent.records) == (400, [])
    assert words in answer["error"]


async def test_a_case_on_another_worker_is_relayed_from_it(serve: Serve) -> None:
    from aiohttp import web

    async def forward(owner: str, request: Any) -> web.Response:
        return web.json_response({"relayed_from": owner})

    client, _ = await serve(here=False, forward=forward)
    assert await get(client, "/v1/cases/case-1") == (200, {"relayed_from": "http://other"})


async def test_a_case_on_another_worker_that_does_not_answer_is_502_naming_it(
    serve: Serve,
) -> None:
    async def forward(owner: str, request: Any) -> Any:
        raise ConnectionRefusedError("refused")

    client, _ = await serve(here=False, forward=forward)
    status, body = await get(client, "/v1/cases/case-1")
    assert (status, body["error"]) == (
        502,
        "case-1 is on worker http://other, which did not answer: ConnectionRefusedError: refused",
    )
