"""The casework API: read cases, and publish case actions as signed people's actions.

Reads (role `supervisor`):

* `GET /v1/cases[?step=S&overdue=true|false&limit=N]`: summaries of the cases this worker holds
  (its partitions of the `cases` table), by due time, the overdue first. With several workers,
  each lists its own share (ask each, or a single worker in small deployments).
* `GET /v1/cases/{case_id}`: one case, timeline and money lines included; asked of the worker
  owning the case's partition (forwarded once, as the sanctions' reads are).

Writes (role `reviewer`), each published on `claimstream.actions.v1`, keyed by the case id,
signed with the worker's action key, in the caller's name (`by` as the other writes: a body
naming someone else is refused, 403), answered 202 with the action id:

* `POST /v1/cases/open` `{subject: "KIND:ID", institution_id?, note?, at?}`
* `POST /v1/cases/{case_id}/advance` `{to?, note?, at?}`
* `POST /v1/cases/{case_id}/assign` `{owner, at?}`
* `POST /v1/cases/{case_id}/decide` `{outcome, nature?, confirmed_amount?, confirmed_alerts?,
  note?, at?}` (`confirmed_alerts`: a partly confirmed decision's confirmed alerts, of the case)
* `POST /v1/cases/{case_id}/recover` `{money: deducted|recovered, amount, reference?, note?, at?}`

An advance without `to` names the next step of the case when this worker holds it (so two
advances within one second are two actions, and a repeated click is one). When this worker
holds the case, the transition is tried on it first and a refusal answers 409
with its reason (`not_later`, `wrong_step`, `over_confirmed`, ...): nothing is published. A
case held elsewhere is published as is; the cases agent refuses it there if it must (a
`refused` notice on `claimstream.cases.v1`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import tzinfo
from typing import Any

from aiohttp import web

from claimstream.cases.actions import STEPS, AdvanceCase, CaseAction, OpenCase
from claimstream.cases.case import Refusal, case_from_dict
from claimstream.kafka.case_actions import (
    advance_from_input,
    assign_from_input,
    decide_from_input,
    open_from_input,
    recover_from_input,
)
from claimstream.stream.cases import CasesRuntime
from claimstream.stream.http.api import Api, Caller, NotTheCaller, Reply
from claimstream.stream.http.routes import (
    CALLER,
    WORKER,
    Forward,
    OwnerOf,
    json_response,
)

#: the key space of case reads (faust's router: the `cases` table)
CASE = "case"
MAX_LIMIT = 1000


def _by(data: dict[str, Any], caller: Caller) -> object:
    given = data.get("by")
    if caller.legacy:
        return given
    if given is not None and given != caller.name:
        raise NotTheCaller(
            f"by must be the caller's own name ({caller.name}) or left out: actions are made "
            "in the name of the token that calls"
        )
    return caller.name


def _at(data: dict[str, Any]) -> str | None:
    at = data.get("at")
    if at is not None and not isinstance(at, str):
        raise ValueError("at must be an RFC 3339 string with a UTC offset")
    return at


def tried(
    runtime: CasesRuntime, owner_of: OwnerOf | None, action: CaseAction
) -> CaseAction | Reply:
    """The action to publish, or the 409 answer of the case refusing it.

    Tried only on this worker's own copy of the case (a standby copy of another worker's may
    lag; `owner_of` None: no other worker is known). An advance without `to` is made to name
    the case's next step: two advances within one second are then two actions, and a repeated
    click (the same step named twice) is one."""
    if isinstance(action, OpenCase):
        return action
    owner, here = owner_of(CASE, action.case_id) if owner_of is not None else (None, True)
    held = runtime.table.data.get(action.case_id) if here or owner is None else None
    if held is None:
        return action
    case = case_from_dict(held)
    if isinstance(action, AdvanceCase) and action.to is None and case.step != "closed":
        action = replace(action, to=STEPS[STEPS.index(case.step) + 1])
    result = runtime.procedure.apply(case, action)
    if isinstance(result, Refusal):
        body = {"error": result.detail, "reason": result.reason, "case_id": action.case_id}
        return Reply(409, body)
    return action


async def publish_case_action(
    runtime: CasesRuntime,
    api: Api,
    owner_of: OwnerOf | None,
    action: CaseAction,
    remote: str | None,
    caller: str,
) -> Reply:
    """What every case action of the API and the console does: try it on the held case
    (`tried`: a refusal publishes nothing, 409), then publish it signed in `caller`'s name
    (202 with the action and case ids)."""
    ready = tried(runtime, owner_of, action)
    if isinstance(ready, Reply):
        return ready
    answer = await api.publish(ready, remote, caller)
    if answer.status == 202 and isinstance(answer.body, dict):
        answer.body["case_id"] = ready.case_id
    return answer


def case_routes(
    runtime: CasesRuntime | None,
    api: Api,
    *,
    tz: Callable[[], tzinfo],
    worker_url: str,
    owner_of: OwnerOf,
    forward: Forward,
) -> list[web.RouteDef]:
    """The `/v1/cases` routes over `runtime` (None: casework is off on this worker, 503)."""

    def reply(answer: Reply) -> web.Response:
        return json_response(answer.status, answer.body, {**answer.headers, WORKER: worker_url})

    def off() -> web.Response:
        body = {"error": "casework is disabled on this worker (CLAIMSTREAM_CASES_ENABLED=false)"}
        return reply(Reply(503, body, {"Retry-After": "5"}))

    async def listing(request: web.Request) -> web.Response:
        if runtime is None:
            return off()
        query = request.query
        overdue: bool | None = None
        if "overdue" in query:
            if query["overdue"] not in ("true", "false"):
                return reply(Reply(400, {"error": "overdue must be true or false"}))
            overdue = query["overdue"] == "true"
        try:
            limit = int(query.get("limit", "100"))
        except ValueError:
            return reply(Reply(400, {"error": "limit must be a whole number"}))
        if not 1 <= limit <= MAX_LIMIT:
            return reply(Reply(400, {"error": f"limit must be from 1 to {MAX_LIMIT}"}))
        try:
            rows = runtime.list(step=query.get("step") or None, overdue=overdue, limit=limit)
        except ValueError as exc:
            return reply(Reply(400, {"error": str(exc)}))
        return reply(Reply(200, {"as_of": runtime.now(), "cases": rows}))

    def local_case(case_id: str) -> Reply:
        assert runtime is not None
        found = runtime.case(case_id)
        if found is None:
            body = {
                "error": f"no case {case_id} is held on this worker",
                "key": case_id,
                "partition": runtime.partition(case_id),
            }
            return Reply(404, body)
        return Reply(200, found)

    async def one(request: web.Request) -> web.StreamResponse:
        if runtime is None:
            return off()
        case_id = request.match_info["case_id"]
        if request.headers.get("X-Claimstream-Forwarded"):
            return reply(local_case(case_id))
        owner, here = owner_of(CASE, case_id)
        if here or owner is None:
            return reply(local_case(case_id))
        try:
            return await forward(owner, request)
        except Exception as exc:  # noqa: BLE001  (owner down or mid-rebalance: say so)
            why = f"{type(exc).__name__}: {exc}".rstrip(": ")
            body = {"error": f"{case_id} is on worker {owner}, which did not answer: {why}"}
            return reply(Reply(502, body))

    async def write(
        request: web.Request, build: Callable[[dict[str, Any], Caller], CaseAction]
    ) -> web.Response:
        if runtime is None:
            return off()
        caller = request[CALLER]
        try:
            body = await request.json()
        except ValueError:
            return reply(Reply(400, {"error": "the request body must be JSON"}))
        if not isinstance(body, dict):
            return reply(Reply(400, {"error": "the request body must be a JSON object"}))
        try:
            action = build(body, caller)
        except NotTheCaller as exc:
            return reply(Reply(403, {"error": str(exc)}))
        except ValueError as exc:
            return reply(Reply(400, {"error": str(exc)}))
        return reply(
            await publish_case_action(runtime, api, owner_of, action, request.remote, caller.name)
        )

    async def open_case(request: web.Request) -> web.Response:
        return await write(
            request,
            lambda b, c: open_from_input(
                b.get("subject"),
                _by(b, c),
                institution_id=b.get("institution_id"),
                note=b.get("note"),
                at=_at(b),
                tz=tz(),
            ),
        )

    async def advance(request: web.Request) -> web.Response:
        case_id = request.match_info["case_id"]
        return await write(
            request,
            lambda b, c: advance_from_input(
                case_id, _by(b, c), to=b.get("to"), note=b.get("note"), at=_at(b), tz=tz()
            ),
        )

    async def assign(request: web.Request) -> web.Response:
        case_id = request.match_info["case_id"]
        return await write(
            request,
            lambda b, c: assign_from_input(case_id, b.get("owner"), _by(b, c), at=_at(b), tz=tz()),
        )

    async def decide(request: web.Request) -> web.Response:
        case_id = request.match_info["case_id"]
        return await write(
            request,
            lambda b, c: decide_from_input(
                case_id,
                b.get("outcome"),
                _by(b, c),
                nature=b.get("nature"),
                confirmed_amount=b.get("confirmed_amount", 0),
                note=b.get("note"),
                confirmed_alerts=b.get("confirmed_alerts"),
                at=_at(b),
                tz=tz(),
            ),
        )

    async def recover(request: web.Request) -> web.Response:
        case_id = request.match_info["case_id"]
        return await write(
            request,
            lambda b, c: recover_from_input(
                case_id,
                b.get("money"),
                b.get("amount"),
                _by(b, c),
                reference=b.get("reference"),
                note=b.get("note"),
                at=_at(b),
                tz=tz(),
            ),
        )

    return [
        web.get("/v1/cases", listing),
        web.post("/v1/cases/open", open_case),
        web.get("/v1/cases/{case_id}", one),
        web.post("/v1/cases/{case_id}/advance", advance),
        web.post("/v1/cases/{case_id}/assign", assign),
        web.post("/v1/cases/{case_id}/decide", decide),
        web.post("/v1/cases/{case_id}/recover", recover),
    ]
