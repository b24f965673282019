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

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import tzinfo
from typing import Any, TypeVar

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
from claimstream.stream.http.api import Api, Caller, NotTheCaller, Reply, _at, _by
from claimstream.stream.http.routes import (
    CALLER,
    FORWARDED,
    WORKER,
    Forward,
    OwnerOf,
    json_response,
)

#: the key space of case reads (faust's router: the `cases` table)
CASE = "case"
MAX_LIMIT = 1000

A = TypeVar("A")


# -- what the cases' and the reports' routes share (claimstream.stream.http.reports) ----------


def worker_reply(worker_url: str) -> Callable[[Reply], web.Response]:
    """A reply as JSON, naming the worker that answered."""

    def reply(answer: Reply) -> web.Response:
        return json_response(answer.status, answer.body, {**answer.headers, WORKER: worker_url})

    return reply


def casework_off() -> Reply:
    """The answer of every casework route when casework is off on this worker."""
    body = {"error": "casework is disabled on this worker (CLAIMSTREAM_CASES_ENABLED=false)"}
    return Reply(503, body, {"Retry-After": "5"})


def limit_of(query: Mapping[str, str], *, named: bool = False) -> int | Reply:
    """A listing's `limit` (default 100), or the 400 answer (`named`: naming the field)."""
    field = {"field": "limit"} if named else {}
    try:
        limit = int(query.get("limit", "100"))
    except ValueError:
        return Reply(400, {"error": "limit must be a whole number"} | field)
    if not 1 <= limit <= MAX_LIMIT:
        return Reply(400, {"error": f"limit must be from 1 to {MAX_LIMIT}"} | field)
    return limit


async def held_or_forwarded(
    request: web.Request,
    space: str,
    key: str,
    local: Callable[[], Reply],
    owner_of: OwnerOf,
    forward: Forward,
) -> Reply | web.StreamResponse:
    """A read of `key`: `local()` when this worker owns it (or nobody is known to, or the
    request was forwarded already), else the owner's answer relayed (502 when it fails)."""
    if request.headers.get(FORWARDED):
        return local()
    owner, here = owner_of(space, key)
    if here or owner is None:
        return local()
    try:
        return await forward(owner, request)
    except Exception as exc:  # noqa: BLE001  (owner down or mid-rebalance: say so)
        why = f"{type(exc).__name__}: {exc}".rstrip(": ")
        return Reply(502, {"error": f"{key} is on worker {owner}, which did not answer: {why}"})


async def action_of(
    request: web.Request,
    build: Callable[[dict[str, Any], Caller], A],
    field_of: Callable[[str], str | None] | None = None,
) -> A | Reply:
    """The action a write's JSON body asks for, in the caller's name, or the answer refusing
    it: 400 (`field_of`: naming the field) or 403 (a body naming someone else)."""
    try:
        body = await request.json()
    except ValueError:
        return Reply(400, {"error": "the request body must be JSON"})
    if not isinstance(body, dict):
        return Reply(400, {"error": "the request body must be a JSON object"})
    try:
        return build(body, request[CALLER])
    except NotTheCaller as exc:
        return Reply(403, {"error": str(exc)})
    except ValueError as exc:
        named = {} if field_of is None else {"field": field_of(str(exc))}
        return Reply(400, {"error": str(exc)} | named)


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

    reply = worker_reply(worker_url)

    def off() -> web.Response:
        return reply(casework_off())

    async def listing(request: web.Request) -> web.Response:
        if runtime is None:
            return off()
        query = request.query
        overdue: bool | None = None
        if "overdue" in query:
            if query["overdue"] not in ("true", "false"):
                return reply(Reply(400, {"error": "overdue must be true or false"}))
            overdue = query["overdue"] == "true"
        limit = limit_of(query)
        if isinstance(limit, Reply):
            return reply(limit)
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
        answer = await held_or_forwarded(
            request, CASE, case_id, lambda: local_case(case_id), owner_of, forward
        )
        return reply(answer) if isinstance(answer, Reply) else answer

    async def write(
        request: web.Request, build: Callable[[dict[str, Any], Caller], CaseAction]
    ) -> web.Response:
        if runtime is None:
            return off()
        action = await action_of(request, build)
        if isinstance(action, Reply):
            return reply(action)
        return reply(
            await publish_case_action(
                runtime, api, owner_of, action, request.remote, request[CALLER].name
            )
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
