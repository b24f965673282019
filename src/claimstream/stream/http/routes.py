"""The API's HTTP side: aiohttp handlers over `Api`, and key routing between workers.

`api_routes` returns plain aiohttp route definitions; the worker adds them to faust's web
server (an aiohttp application), tests to their own `aiohttp.web.Application`.

Key routing: a subject's state lives on the worker that owns its partition of
`claimstream.repartition.subject` (the `state-subject` table's changelog partition), an
alert's on the owner of its partition of `claimstream.repartition.alert` (the `alert-index`
table's). faust's `app.table_route` cannot build the subject key (`kind:id` from two path
parts) and forwards without a loop guard, so reads ask faust's router (`app.router.key_store`:
the table partitions each worker holds, shared through the consumer group) for the owner
themselves (`router_owner`). The owner answers from its table; any other worker forwards the
GET once (marked `X-Claimstream-Forwarded`, never forwarded again) and relays the answer;
`X-Claimstream-Worker` names the worker that answered. While the owner is unknown (no
assignment yet, a rebalance) a worker answers from what it holds, else 404 saying the key is not
on this worker, with its partition; a known owner that does not answer gives 502.
`routed_read` is that routing, for these reads and any other keyed read (the benchmark's, by
peer group: `claimstream.stream.http.benchmark`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from yarl import URL

from claimstream.model.events import KEY_KINDS
from claimstream.sanctions.codec import PersonAction
from claimstream.stream.http.api import (
    ALERT,
    SUBJECT,
    Api,
    Caller,
    NotTheCaller,
    Reply,
    openapi_document,
)

log = logging.getLogger(__name__)

#: where the access control (`claimstream.stream.http.access`) leaves the request's `Caller`
CALLER = web.RequestKey("claimstream.caller", Caller)
FORWARDED = "X-Claimstream-Forwarded"
#: on every read: the worker that answered (the owner, for a forwarded read)
WORKER = "X-Claimstream-Worker"
#: longest a forwarded read may take, seconds
FORWARD_TIMEOUT = 5.0

#: (owner url or None when unknown, is it this worker)
Owner = tuple[str | None, bool]
#: (key space: "subject" or "alert", key) -> its owner
OwnerOf = Callable[[str, str], Owner]
#: (owner url, the request) -> the owner's answer, relayed
Forward = Callable[[str, web.Request], Awaitable[web.StreamResponse]]


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


def route_of(request: web.Request) -> str:
    """The route's pattern (`/subjects/{kind}/{id}`): what logs may name (a path holds ids)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "?"


def api_routes(
    api: Api, *, worker_url: str, owner_of: OwnerOf, forward: Forward
) -> list[web.RouteDef]:
    """The API's routes; reads go to the key's owner (`owner_of`) through `forward`."""

    def reply(answer: Reply) -> web.Response:
        return json_response(answer.status, answer.body, {**answer.headers, WORKER: worker_url})

    async def routed(
        request: web.Request, space: str, key: str | None, local: Callable[[], Reply]
    ) -> web.StreamResponse:
        """Answer from this worker when it owns `key`, else forward the GET to the owner."""
        if key is None:
            return reply(local())

        def ownerless() -> web.Response:  # what we hold, if any; else say it is not here
            answer = local()
            if answer.status == 404:
                answer = api.not_here(space, key, None, "its owner is not known yet (rebalancing?)")
            return reply(answer)

        def failed(owner: str, why: str) -> web.Response:
            body = {
                "error": f"{key} is on worker {owner}, which did not answer: {why}",
                "key": key,
                "partition": api.partition(key, space),
                "owner": owner,
            }
            return reply(Reply(502, body))

        return await routed_read(
            request,
            space,
            key,
            lambda: reply(local()),
            owner_of=owner_of,
            forward=forward,
            failed=failed,
            ownerless=ownerless,
        )

    def subject_key(kind: str, id_: str) -> str | None:
        if api.view is None or kind not in KEY_KINDS:
            return None  # answered locally: 503 / 400
        return api.view.key_of(kind, id_)

    async def subject(request: web.Request) -> web.StreamResponse:
        kind, id_ = request.match_info["kind"], request.match_info["id"]
        return await routed(
            request, SUBJECT, subject_key(kind, id_), lambda: api.subject(kind, id_)
        )

    async def subject_alerts(request: web.Request) -> web.StreamResponse:
        kind, id_ = request.match_info["kind"], request.match_info["id"]
        status = request.query.get("status") or None
        return await routed(
            request, SUBJECT, subject_key(kind, id_), lambda: api.alerts(kind, id_, status)
        )

    async def institution(request: web.Request) -> web.StreamResponse:
        id_ = request.match_info["id"]
        key = subject_key("institution", id_)
        return await routed(request, SUBJECT, key, lambda: api.institution(id_))

    async def alert(request: web.Request) -> web.StreamResponse:
        alert_id = request.match_info["alert_id"]
        key = alert_id if api.view is not None else None
        return await routed(request, ALERT, key, lambda: api.alert(alert_id))

    async def write(
        request: web.Request, build: Callable[[Any, Caller], PersonAction]
    ) -> web.Response:
        caller = request[CALLER]  # set by the access control, which let it through
        try:
            body = await request.json()
        except ValueError:
            return reply(Reply(400, {"error": "the request body must be JSON"}))
        try:
            action = build(body, caller)
        except NotTheCaller as exc:
            log.warning("API write refused (403) %s %s from %s by %s: %s", request.method,
                        route_of(request), request.remote, caller.name, exc)  # fmt: skip
            return reply(Reply(403, {"error": str(exc)}))
        except ValueError as exc:
            return reply(Reply(400, {"error": str(exc)}))
        return reply(await api.publish(action, request.remote, caller.name))

    async def review(request: web.Request) -> web.Response:
        alert_id = request.match_info["alert_id"]
        return await write(request, lambda body, caller: api.review_action(alert_id, body, caller))

    async def unfreeze(request: web.Request) -> web.Response:
        return await write(request, api.unfreeze_action)

    async def openapi(request: web.Request) -> web.Response:
        return json_response(200, openapi_document())

    return [
        web.get("/subjects/{kind}/{id}", subject),
        web.get("/subjects/{kind}/{id}/alerts", subject_alerts),
        web.get("/institutions/{id}", institution),
        web.get("/alerts/{alert_id}", alert),
        web.post("/alerts/{alert_id}/review", review),
        web.post("/unfreeze", unfreeze),
        web.get("/openapi.json", openapi),
    ]


async def routed_read(
    request: web.Request,
    space: str,
    key: str | None,
    local: Callable[[], web.StreamResponse],
    *,
    owner_of: OwnerOf | None,
    forward: Forward | None,
    failed: Callable[[str, str], web.StreamResponse],
    ownerless: Callable[[], web.StreamResponse] | None = None,
) -> web.StreamResponse:
    """A GET of `key` of the key space `space`, answered by the worker that owns the key.

    `local()` answers here: when this worker owns the key, when there is no key (None) or no
    routing (`owner_of` or `forward` None), or when the request was forwarded already (never
    twice). While the owner is unknown (starting, rebalancing), `ownerless()` answers (by
    default `local()`: what this worker holds). Otherwise the GET is forwarded to the owner and
    its answer relayed; an owner that does not answer is logged (the route, never the path: it
    holds ids) and answered with `failed(owner, why)`, a 502.
    """
    if key is None or owner_of is None or forward is None or request.headers.get(FORWARDED):
        return local()
    owner, here = owner_of(space, key)
    if here:
        return local()
    if owner is None:
        return (ownerless or local)()
    try:
        return await forward(owner, request)
    except Exception as exc:  # noqa: BLE001  (owner down or mid-rebalance: say so, don't hang)
        why = f"{type(exc).__name__}: {exc}".rstrip(": ")
        log.warning("forwarding a read of %s to %s failed: %s", route_of(request), owner, why)
        return failed(owner, why)


class Forwarder:
    """Relays a GET to the worker owning its key, marked as forwarded (so never again)."""

    def __init__(
        self,
        session: Callable[[], aiohttp.ClientSession],
        worker_url: str,
        timeout: float = FORWARD_TIMEOUT,
    ) -> None:
        self.session = session
        self.worker_url = worker_url
        self.timeout = timeout

    async def __call__(self, owner: str, request: web.Request) -> web.StreamResponse:
        target = URL(owner).with_path(request.path).with_query(request.query)
        headers = {FORWARDED: self.worker_url, "Accept": "application/json"}
        if "Authorization" in request.headers:  # the owner checks the caller's token again
            headers["Authorization"] = request.headers["Authorization"]
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with self.session().get(target, headers=headers, timeout=timeout) as response:
            body = await response.read()
            relayed = {WORKER: response.headers.get(WORKER, owner), FORWARDED: self.worker_url}
            if "Retry-After" in response.headers:
                relayed["Retry-After"] = response.headers["Retry-After"]
            return web.Response(
                body=body,
                status=response.status,
                content_type=response.content_type,
                headers=relayed,
            )


def router_owner(app: Any, tables: Mapping[str, str]) -> OwnerOf:
    """The worker owning a key of the table of its key space (`tables`: space -> table name),
    from faust's router."""

    def owner_of(space: str, key: str) -> Owner:
        try:
            url = app.router.key_store(tables[space], key)
        except Exception:  # noqa: BLE001  (no assignment yet, no topic metadata: owner unknown)
            return None, False
        me = app.conf.canonical_url
        here = (url.host, url.port) == (me.host, me.port)
        return str(url), here

    return owner_of
