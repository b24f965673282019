"""`POST /v1/check` and `POST /v1/check/{check_id}/feedback`: the pre-settlement check over HTTP.

`POST /v1/check` (role `settlement`; docs/check.md): the body is one event, a list of one
patient's events, or `{"check_id"?, "events"}`; the answer is `{"check_id", "decision",
"violations", "freezes", "rule_version", "evaluated_at", "events"}`
(`claimstream.detection.check.answer`). The patient's state lives on the worker owning its
partition of the detection input (the `state-patient` table's changelog partition), so a
worker that does not own it forwards the request once to the owner (marked
`X-Claimstream-Forwarded`, never forwarded again) and relays the answer, as the reads of
`routes.py` do; `X-Claimstream-Worker` names the worker that answered. 503 with `Retry-After`
while the answer would be a guess: the worker is rebalancing or recovering its tables, the
patient's owner is not known yet (or, for a forwarded request, is no longer this worker), or
the freeze registry cannot answer for sure (a `pass` that missed a freeze would be wrong). A
body the stream would refuse is 400 with the dead-letter reason (`reason`), the event's
position (`index`) and id. The check publishes nothing and changes no state; it counts
`claimstream_checks_total{decision}` and each violation's amount in
`claimstream_violation_amount_yuan_total{rule, source="check"}` (the fund amount a check
flagged before the money moved; the stream's alerts count `source="stream"`).

`POST /v1/check/{check_id}/feedback` (role `settlement`; the platform's 3103): `{"violations":
[{"rule", "alert_id"?, "handling": "modified"|"continued"|"cancelled", "reason"}], "by"?,
"at"?}` publishes the clinician's answer as a `check_feedback` action on the actions topic,
signed by the worker's API key like every action of the API, in the caller's name (a `by`
naming someone else is 403), and answers 202 with the action id. Any worker takes it: the
sanctions index agent counts it once (`claimstream_check_overrides_total{rule,handling}`) and
the audit agent chains it.

Nothing here logs an id: a refused check is answered, not logged; a forwarding failure names
the route's pattern and the owner's address only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from claimstream.detection.check import (
    BadRequest,
    CheckRequest,
    Evaluation,
    answer,
    evaluate,
    freeze_scopes,
    read_request,
)
from claimstream.detection.engine import Engine
from claimstream.freezes.base import Freeze, FreezeRegistry, RegistryUnavailable
from claimstream.kafka.actions import feedback_from_input
from claimstream.model.timefmt import iso
from claimstream.observability.metrics import Metrics
from claimstream.rules import RULES
from claimstream.rules.base import State
from claimstream.stream.http.api import Api, NotTheCaller, Reply, _by
from claimstream.stream.http.routes import (
    CALLER,
    FORWARD_TIMEOUT,
    FORWARDED,
    WORKER,
    OwnerOf,
    json_response,
    route_of,
)

log = logging.getLogger(__name__)

#: the key space a check is routed by (`routes.router_owner`), and the table that places it
PATIENT = "patient"
PATIENT_TABLE = "state-patient"
#: seconds a client is asked to wait before asking again
RETRY_AFTER = "2"
#: (owner url, the request, its body) -> the owner's answer, relayed
ForwardPost = Callable[[str, web.Request, bytes], Awaitable[web.StreamResponse]]


def unavailable(why: str) -> Reply:
    return Reply(503, {"error": why}, {"Retry-After": RETRY_AFTER})


@dataclass(frozen=True, slots=True)
class CheckService:
    """What a check needs of the worker, as plain callables (tests give fakes).

    `engine()` is the detection engine in force (it changes with the control topic), `state(id)`
    a patient's stored state, `recovering()` and `registry_state()` a reason not to answer yet
    (None: go ahead), `clock()` the wall clock the stream's future check uses.
    """

    engine: Callable[[], Engine]
    state: Callable[[str], State | None]
    registry: FreezeRegistry
    metrics: Metrics
    recovering: Callable[[], str | None] = lambda: None
    registry_state: Callable[[], str | None] = lambda: None
    clock: Callable[[], float] = time.time

    async def check(self, request: CheckRequest) -> Reply:
        """Evaluate `request` on this worker (the owner of its patient)."""
        if (why := self.recovering()) is not None:
            return unavailable(f"this worker cannot check yet: {why}")
        engine = self.engine()
        now = self.clock()
        evaluation = evaluate(engine, self.state(request.patient_id), request, now)
        if isinstance(evaluation, BadRequest):
            return Reply(400, evaluation.to_dict())
        if (why := self.registry_state()) is not None:
            return unavailable(f"the freeze registry cannot answer for sure: {why}")
        try:
            freezes = await self.freezes(request, now)
        except RegistryUnavailable as exc:
            return unavailable(f"the freeze registry cannot be reached: {exc}")
        body = answer(request, evaluation, freezes, iso(now, engine.config.tz))
        self.count(body["decision"], evaluation)
        return Reply(200, body)

    async def freezes(self, request: CheckRequest, now: float) -> list[dict[str, Any]]:
        """The freezes in force for the patient (its drugs), its doctors and institutions."""
        lookups = [
            self.registry.lookup(kind, id_, drug, now=now)
            for kind, id_, drug in freeze_scopes(request.events)
        ]
        found: dict[str, Freeze] = {}
        for freezes in await asyncio.gather(*lookups):
            for freeze in freezes:
                found.setdefault(freeze.key, freeze)
        return [freeze.to_dict() for freeze in found.values()]

    def count(self, decision: str, evaluation: Evaluation) -> None:
        self.metrics.check_answered(decision)
        for found in evaluation.violations:
            self.metrics.violation_amount(found.alert.rule, found.amount, "check")


def check_routes(
    service: CheckService,
    api: Api,
    *,
    tz: Callable[[], tzinfo],
    worker_url: str,
    owner_of: OwnerOf,
    forward: ForwardPost,
) -> list[web.RouteDef]:
    """The check's routes: checks go to the patient's owner (`owner_of`) through `forward`;
    feedback is published through `api` (signed, in the caller's name) by any worker."""

    def reply(given: Reply) -> web.Response:
        return json_response(given.status, given.body, {**given.headers, WORKER: worker_url})

    async def check(request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        parsed = read_request(raw)
        if isinstance(parsed, BadRequest):
            return reply(Reply(400, parsed.to_dict()))
        owner, here = owner_of(PATIENT, parsed.patient_id)
        if here:
            return reply(await service.check(parsed))
        if request.headers.get(FORWARDED):
            return reply(unavailable("the patient's partition is no longer on this worker"))
        if owner is None:
            return reply(unavailable("the patient's owner is not known yet (rebalancing?)"))
        try:
            return await forward(owner, request, raw)
        except Exception as exc:  # noqa: BLE001  (owner down or mid-rebalance: say so, don't hang)
            why = f"{type(exc).__name__}: {exc}".rstrip(": ")
            log.warning("forwarding %s to %s failed: %s", route_of(request), owner, why)
            return reply(
                Reply(
                    502,
                    {"error": f"the patient is on worker {owner}, which did not answer: {why}",
                     "owner": owner},
                    {"Retry-After": RETRY_AFTER},
                )
            )  # fmt: skip

    async def feedback(request: web.Request) -> web.Response:
        caller = request[CALLER]  # set by the access control, which let it through
        try:
            body = await request.json()
        except ValueError:
            return reply(Reply(400, {"error": "the request body must be JSON"}))
        try:
            if not isinstance(body, dict):
                raise ValueError("the request body must be a JSON object {violations, by?, at?}")
            at = body.get("at")
            if at is not None and not isinstance(at, str):
                raise ValueError("at must be an RFC 3339 string with a UTC offset")
            action = feedback_from_input(
                request.match_info["check_id"],
                body.get("violations"),
                _by(body, caller),
                at=at,
                tz=tz(),
                rules=RULES,
            )
        except NotTheCaller as exc:
            log.warning("API write refused (403) %s %s from %s by %s: %s", request.method,
                        route_of(request), request.remote, caller.name, exc)  # fmt: skip
            return reply(Reply(403, {"error": str(exc)}))
        except ValueError as exc:
            return reply(Reply(400, {"error": str(exc)}))
        return reply(await api.publish(action, request.remote, caller.name))

    return [
        web.post("/v1/check", check),
        web.post("/v1/check/{check_id}/feedback", feedback),
    ]


class PostForwarder:
    """Relays a check to the worker owning its patient, marked as forwarded (so never again)."""

    def __init__(
        self,
        session: Callable[[], aiohttp.ClientSession],
        worker_url: str,
        timeout: float = FORWARD_TIMEOUT,
    ) -> None:
        self.session = session
        self.worker_url = worker_url
        self.timeout = timeout

    async def __call__(self, owner: str, request: web.Request, body: bytes) -> web.StreamResponse:
        target = URL(owner).with_path(request.path).with_query(request.query)
        headers = {
            FORWARDED: self.worker_url,
            "Accept": "application/json",
            "Content-Type": "application/json",
        }
        if "Authorization" in request.headers:  # the owner checks the caller's token again
            headers["Authorization"] = request.headers["Authorization"]
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        session = self.session()
        async with session.post(target, data=body, headers=headers, timeout=timeout) as response:
            relayed = {WORKER: response.headers.get(WORKER, owner), FORWARDED: self.worker_url}
            if "Retry-After" in response.headers:
                relayed["Retry-After"] = response.headers["Retry-After"]
            return web.Response(
                body=await response.read(),
                status=response.status,
                content_type=response.content_type,
                headers=relayed,
            )


def worker_recovering(app: Any) -> Callable[[], str | None]:
    """Why faust `app` cannot answer from its tables right now (None: it can)."""

    def recovering() -> str | None:
        if app.rebalancing:
            return "a rebalance is under way"
        if not app.tables.recovery.completed.is_set() or getattr(app, "in_recovery", False):
            return "table recovery has not finished"
        return None

    return recovering
