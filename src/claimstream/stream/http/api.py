"""The query and action API on the worker's web server (faust's aiohttp server, `web_port`).

Reads, answered from the sanctions state (`Runtime.sanctions`, a `SanctionsView`):

* `GET /subjects/{kind}/{id}`: a subject's standing (level, freeze, suspension, violations,
  grade or points).
* `GET /subjects/{kind}/{id}/alerts[?status=open|confirmed|false_positive]`: its alerts.
* `GET /institutions/{id}`: grade, active freezes, open alerts and the responsibility roll-up.

Writes, published as people's actions on `claimstream.actions.v1` (the stream applies them):

* `POST /alerts/{alert_id}/review` `{verdict, by, note?, at?}`
* `POST /unfreeze` `{scope: "KIND:ID[:DRUG]" | {kind, id, drug_code?}, reason, by, ground?, at?}`

both answering 202 with the action id: accepted, applied by the worker owning the subject
within seconds. They need `Authorization: Bearer <CLAIMSTREAM_API_TOKEN>` (compared in
constant time); without a configured token every write is refused. Each write is logged with
who, why and from where, and the action record itself carries `by` and the note or reason.

`GET /openapi.json` serves the OpenAPI 3.1 document of every route (package data
`claimstream/stream/http/openapi.json`).

Key routing: a subject's state lives on the worker that owns its partition of
`claimstream.repartition.subject` (the state table's changelog partition). faust's
`app.table_route` cannot build our key (`kind:id` from two path parts) and forwards without a
loop guard, so reads ask faust's router (`app.router.key_store`: the table partitions each
worker holds, shared through the consumer group) for the owner themselves. The owner answers
from its table; any other worker forwards the GET once (marked `X-Claimstream-Forwarded`, never
forwarded again) and relays the answer; `X-Claimstream-Worker` names the worker that answered.
While the owner is unknown (no assignment yet, a rebalance) a worker answers from what it holds,
else 404 saying the subject is not on this worker, with its partition; a known owner that does
not answer gives 502.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import tzinfo
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View

from claimstream.kafka.actions import (
    ACTIONS_TOPIC,
    encode_action,
    partition_of,
    unfreeze_from_input,
    verdict_from_input,
)
from claimstream.model.events import KEY_KINDS
from claimstream.sanctions.codec import PersonAction, action_to_dict

if TYPE_CHECKING:
    import faust

    from claimstream.stream.app import Runtime
    from claimstream.stream.http.sanctions_view import SanctionsView
    from claimstream.stream.publish import BatchPublisher

log = logging.getLogger(__name__)

SUBJECT_TOPIC = "claimstream.repartition.subject"
FORWARDED = "X-Claimstream-Forwarded"
#: on every read: the worker that answered (the owner, for a forwarded read)
WORKER = "X-Claimstream-Worker"
ALERT_STATUSES = ("open", "confirmed", "false_positive")
REALM = 'Bearer realm="claimstream"'
#: longest a forwarded read may take, and a write's wait for the broker's acknowledgement, seconds
FORWARD_TIMEOUT = 5.0
PUBLISH_TIMEOUT = 15.0


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document shipped with the package."""
    text = resources.files("claimstream.stream.http").joinpath("openapi.json").read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


class Reply:
    """A status and a JSON body (the views turn it into a faust response)."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


#: (owner url or None when unknown, is it this worker)
Owner = tuple[str | None, bool]


class Api:
    """The API's logic, free of HTTP plumbing so tests can call it with plain values."""

    def __init__(
        self,
        runtime: Runtime,
        send: Callable[[list[tuple[str, bytes | None, bytes | None, int | None]]], Awaitable[Any]],
        *,
        owner_of: Callable[[str], Owner] | None = None,
        partitions: int | None = None,
        publish_timeout: float = PUBLISH_TIMEOUT,
    ) -> None:
        self.runtime = runtime
        self.send = send
        self.publish_timeout = publish_timeout
        self.owner_of = owner_of or (lambda key: (None, True))
        try:
            self.actions_partitions = runtime.topology.topic(ACTIONS_TOPIC).partitions
        except KeyError:
            self.actions_partitions = 1
        if partitions is None:
            try:
                partitions = runtime.topology.topic(SUBJECT_TOPIC).partitions
            except KeyError:
                partitions = None
        self.subject_partitions = partitions

    # --- reads ------------------------------------------------------------------------------

    @property
    def view(self) -> SanctionsView | None:
        return self.runtime.sanctions

    def unavailable(self) -> Reply:
        why = (
            "sanctions are disabled on this worker (CLAIMSTREAM_SANCTIONS_ENABLED=false)"
            if not self.runtime.settings.sanctions_enabled
            else "the sanctions state is not ready on this worker yet"
        )
        return Reply(503, {"error": why}, {"Retry-After": "5"})

    def partition(self, key: str) -> int | None:
        if self.subject_partitions is None:
            return None
        return partition_of(key.encode(), self.subject_partitions)

    def not_found(self, key: str) -> Reply:
        return Reply(
            404,
            {"error": f"no sanctions state for {key} (no alert or action about it is held)",
             "key": key, "partition": self.partition(key)},
        )  # fmt: skip

    def not_here(self, key: str, owner: str | None, detail: str) -> Reply:
        return Reply(
            404,
            {
                "error": f"{key} is not on this worker: {detail}",
                "key": key,
                "partition": self.partition(key),
                "topic": SUBJECT_TOPIC,
                "owner": owner,
            },
        )

    @staticmethod
    def bad_kind(kind: str) -> Reply | None:
        if kind in KEY_KINDS:
            return None
        return Reply(400, {"error": f"kind must be one of {', '.join(KEY_KINDS)}, got {kind!r}"})

    def subject(self, kind: str, id_: str) -> Reply:
        view = self.view
        if view is None:
            return self.unavailable()
        if (bad := self.bad_kind(kind)) is not None:
            return bad
        found = view.subject(kind, id_)
        if found is None:
            return self.not_found(view.key_of(kind, id_))
        return Reply(200, found)

    def alerts(self, kind: str, id_: str, status: str | None) -> Reply:
        view = self.view
        if view is None:
            return self.unavailable()
        if (bad := self.bad_kind(kind)) is not None:
            return bad
        if status is not None and status not in ALERT_STATUSES:
            return Reply(
                400, {"error": f"status must be one of {', '.join(ALERT_STATUSES)}, got {status!r}"}
            )
        found = view.alerts(kind, id_, status)
        if found is None:
            return self.not_found(view.key_of(kind, id_))
        body = {"subject": {"kind": kind, "id": id_}, "status": status, "alerts": found}
        return Reply(200, body)

    def institution(self, id_: str) -> Reply:
        view = self.view
        if view is None:
            return self.unavailable()
        found = view.institution(id_)
        if found is None:
            return self.not_found(view.key_of("institution", id_))
        return Reply(200, found)

    # --- writes -----------------------------------------------------------------------------

    def authorize(self, header: str | None) -> Reply | None:
        """None when `header` carries the configured bearer token, else the 401 to answer."""
        token = self.runtime.settings.api_token
        if not token:
            return Reply(
                401,
                {"error": "writes are disabled on this worker: CLAIMSTREAM_API_TOKEN is unset"},
                {"WWW-Authenticate": REALM},
            )
        scheme, _, given = (header or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return Reply(
                401,
                {"error": "this call needs Authorization: Bearer <token>"},
                {"WWW-Authenticate": REALM},
            )
        if not hmac.compare_digest(given.strip().encode(), token.encode()):
            return Reply(
                401,
                {"error": "the bearer token is not valid"},
                {"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
            )
        return None

    @property
    def tz(self) -> tzinfo:
        return self.runtime.engine.config.tz

    def review_action(self, alert_id: str, body: Any) -> PersonAction:
        data = _object(body)
        return verdict_from_input(
            alert_id,
            data.get("verdict"),
            data.get("by"),
            note=data.get("note"),
            at=_at(data),
            tz=self.tz,
        )

    def unfreeze_action(self, body: Any) -> PersonAction:
        data = _object(body)
        return unfreeze_from_input(
            data.get("scope"),
            data.get("reason"),
            data.get("by"),
            ground=data.get("ground"),
            at=_at(data),
            tz=self.tz,
        )

    async def publish(self, action: PersonAction, remote: str | None) -> Reply:
        key, value = encode_action(action)
        record = action_to_dict(action)
        try:
            async with asyncio.timeout(self.publish_timeout):
                await self.send([(ACTIONS_TOPIC, key, value, None)])
        except Exception as exc:  # any producer failure: the caller must know it did not land
            log.exception("API write %s NOT acknowledged", action.action_id)
            why = f"{type(exc).__name__}: {exc}".rstrip(": ")
            body = {
                "error": f"could not publish to {ACTIONS_TOPIC}: {why}; it may still land, and "
                "repeating the same call is safe (same action_id, applied once)",
                "action_id": action.action_id,
            }
            return Reply(503, body, {"Retry-After": "5"})
        why = record.get("reason") or record.get("note") or ""
        log.warning(
            "API write: %s %s by %r from %s (why: %r) published to %s key %s",
            record["type"],
            action.action_id,
            action.by,
            remote or "?",
            why,
            ACTIONS_TOPIC,
            key.decode(),
        )
        return Reply(
            202,
            {
                "action_id": action.action_id,
                "topic": ACTIONS_TOPIC,
                "key": key.decode(),
                "partition": partition_of(key, self.actions_partitions),
                "record": record,
            },
        )


def _remote(request: Request) -> str | None:
    """The client's address (aiohttp's `Request.remote`; faust's base type does not declare it)."""
    remote = getattr(request, "remote", None)
    return remote if isinstance(remote, str) else None


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object")
    return body


def _at(data: Mapping[str, Any]) -> str | None:
    at = data.get("at")
    if at is not None and not isinstance(at, str):
        raise ValueError("at must be an RFC 3339 string with a UTC offset")
    return at


def install_api(app: faust.App, runtime: Runtime, publisher: BatchPublisher) -> None:
    """Add the API's views to `app`."""
    api = Api(
        runtime,
        publisher.send_and_wait,
        owner_of=_router_owner(app, runtime),
        publish_timeout=PUBLISH_TIMEOUT,
    )

    def reply(view: View, answer: Reply) -> Response:
        headers = {**answer.headers, WORKER: str(app.conf.canonical_url)}
        return view.json(answer.body, status=answer.status, headers=headers)

    async def routed(
        view: View, request: Request, key: str | None, local: Callable[[], Reply]
    ) -> Response:
        """Answer from this worker when it owns `key`, else forward the GET to the owner."""
        if key is None or request.headers.get(FORWARDED):
            return reply(view, local())
        owner, here = api.owner_of(key)
        if here:
            return reply(view, local())
        if owner is None:  # no assignment known (starting, rebalancing): what we hold, if any
            answer = local()
            if answer.status == 404:
                answer = api.not_here(key, None, "its owner is not known yet (rebalancing?)")
            return reply(view, answer)
        try:
            return await _forward(app, view, request, owner)
        except Exception as exc:  # noqa: BLE001  (owner down or mid-rebalance: say so, don't hang)
            why = f"{type(exc).__name__}: {exc}".rstrip(": ")
            log.warning("forwarding %s to %s failed: %s", request.url.path, owner, why)
            body = {
                "error": f"{key} is on worker {owner}, which did not answer: {why}",
                "key": key,
                "partition": api.partition(key),
                "owner": owner,
            }
            return reply(view, Reply(502, body))

    def key_of(kind: str, id_: str) -> str | None:
        view = runtime.sanctions
        if view is None or kind not in KEY_KINDS:
            return None  # answered locally: 503 / 400
        return view.key_of(kind, id_)

    class SubjectView(View):
        async def get(self, request: Request, kind: str, id: str) -> Response:
            return await routed(self, request, key_of(kind, id), lambda: api.subject(kind, id))

    class SubjectAlertsView(View):
        async def get(self, request: Request, kind: str, id: str) -> Response:
            status = request.query.get("status") or None
            return await routed(
                self, request, key_of(kind, id), lambda: api.alerts(kind, id, status)
            )

    class InstitutionView(View):
        async def get(self, request: Request, id: str) -> Response:
            return await routed(
                self, request, key_of("institution", id), lambda: api.institution(id)
            )

    async def write(view: View, request: Request, build: Callable[[Any], PersonAction]) -> Response:
        denied = api.authorize(request.headers.get("Authorization"))
        if denied is not None:
            log.warning("API write refused (401) %s %s from %s: %s", request.method,
                        request.url.path, _remote(request), denied.body["error"])  # fmt: skip
            return reply(view, denied)
        try:
            body = await request.json()
        except ValueError:
            return view.json({"error": "the request body must be JSON"}, status=400)
        try:
            action = build(body)
        except ValueError as exc:
            return view.json({"error": str(exc)}, status=400)
        return reply(view, await api.publish(action, _remote(request)))

    class ReviewView(View):
        async def post(self, request: Request, alert_id: str) -> Response:
            return await write(self, request, lambda body: api.review_action(alert_id, body))

    class UnfreezeView(View):
        async def post(self, request: Request) -> Response:
            return await write(self, request, api.unfreeze_action)

    class OpenApiView(View):
        async def get(self, request: Request) -> Response:
            return self.json(openapi_document())

    app.page("/subjects/{kind}/{id}")(SubjectView)
    app.page("/subjects/{kind}/{id}/alerts")(SubjectAlertsView)
    app.page("/institutions/{id}")(InstitutionView)
    app.page("/alerts/{alert_id}/review")(ReviewView)
    app.page("/unfreeze")(UnfreezeView)
    app.page("/openapi.json")(OpenApiView)


def _router_owner(app: faust.App, runtime: Runtime) -> Callable[[str], Owner]:
    """The worker owning a key of the sanctions table, from faust's router."""

    def owner_of(key: str) -> Owner:
        view = runtime.sanctions
        if view is None:
            return None, True
        try:
            url = app.router.key_store(view.table.name, key)
        except Exception:  # noqa: BLE001  (no assignment yet, no topic metadata: owner unknown)
            return None, False
        me = app.conf.canonical_url
        here = (url.host, url.port) == (me.host, me.port)
        return str(url), here

    return owner_of


async def _forward(app: faust.App, view: View, request: Request, owner: str) -> Response:
    import aiohttp
    from yarl import URL

    target = URL(owner).with_path(request.url.path).with_query(request.url.query)
    headers = {FORWARDED: str(app.conf.canonical_url), "Accept": "application/json"}
    timeout = aiohttp.ClientTimeout(total=FORWARD_TIMEOUT)
    async with app.http_client.get(target, headers=headers, timeout=timeout) as response:
        body = await response.read()
        answered_by = response.headers.get(WORKER, owner)
    return view.bytes(
        body,
        content_type=response.content_type,
        status=response.status,
        headers={WORKER: answered_by, FORWARDED: str(app.conf.canonical_url)},
    )
