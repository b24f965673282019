"""The query and action API's logic, free of HTTP plumbing: each call takes plain values and
returns a `Reply` (status, JSON body, headers), so tests call it with fakes. The HTTP side
(aiohttp handlers, key routing between workers) is `claimstream.stream.http.routes`.

Reads, answered from the sanctions state (a `SanctionsView`; None while sanctions are off):

* `GET /subjects/{kind}/{id}`: a subject's standing (level, freeze, suspension, violations,
  grade or points).
* `GET /subjects/{kind}/{id}/alerts[?status=open|confirmed|false_positive]`: its alerts.
* `GET /institutions/{id}`: grade, active freezes, open alerts and the responsibility roll-up.
* `GET /alerts/{alert_id}`: one alert (alert.v1 plus its review status) from the alert index.

Writes, published as people's actions on `claimstream.actions.v1` (the stream applies them):

* `POST /alerts/{alert_id}/review` `{verdict, by?, note?, at?}`
* `POST /unfreeze` `{scope: "KIND:ID[:DRUG]" | {kind, id, drug_code?}, reason, by?, ground?, at?}`

both answering 202 with the action id: accepted, applied by the worker owning the subject
within seconds. Who may call what is `claimstream.stream.http.access` (a write needs the
`reviewer` role); the action is made in the caller's name: `by` is the token's name, and a body
that names someone else is refused (403). (The deprecated `CLAIMSTREAM_API_TOKEN` has no name of
its own: its actions take `by` from the body, as before.) The record is signed with the
worker's action key (`claimstream.sanctions.signatures`), which the sanctions agents verify;
a worker without one refuses writes (503) unless unsigned actions are accepted (development).
Each write is logged with the action id, the type, `by`, the caller and the peer, never the
subject's id or the free text (a note may quote an id: the record itself carries it).

`GET /openapi.json` serves the OpenAPI 3.1 document of every route (package data
`claimstream/stream/http/openapi.json`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from functools import cache
from importlib import resources
from typing import Any

from claimstream.kafka.actions import (
    ACTIONS_TOPIC,
    SIGNING_KEY_FILE,
    AnyAction,
    action_record,
    encode_action,
    partition_of,
    unfreeze_from_input,
    verdict_from_input,
)
from claimstream.model.events import KEY_KINDS
from claimstream.sanctions.codec import PersonAction
from claimstream.sanctions.signatures import ActionSigner
from claimstream.stream.http.sanctions_view import SanctionsView

log = logging.getLogger(__name__)

#: the key spaces reads are routed by, and the topic whose partitions place their keys
SUBJECT, ALERT = "subject", "alert"
SUBJECT_TOPIC = "claimstream.repartition.subject"
ALERT_TOPIC = "claimstream.repartition.alert"
TOPICS = {SUBJECT: SUBJECT_TOPIC, ALERT: ALERT_TOPIC}
ALERT_STATUSES = ("open", "confirmed", "false_positive")
#: a write's longest wait for the broker's acknowledgement, seconds
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


#: publishes (topic, key, value, partition) records and returns once the broker acknowledged
Send = Callable[[Iterable[tuple[str, bytes | None, bytes | None, int | None]]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """What the API reads of the worker's configuration and topology."""

    #: publish unsigned actions when the worker has no signing key (development only)
    accept_unsigned: bool = False
    #: whether this worker runs the sanctions agents (says why reads answer 503)
    sanctions_enabled: bool = True
    #: partitions of the actions topic, and of each key space's topic (None: unknown)
    actions_partitions: int = 1
    partitions: Mapping[str, int | None] | None = None
    publish_timeout: float = PUBLISH_TIMEOUT


@dataclass(frozen=True, slots=True)
class Caller:
    """Who made a request: the name of the token presented, and its roles."""

    name: str
    roles: frozenset[str]
    #: the deprecated single `CLAIMSTREAM_API_TOKEN` (its actions take `by` from the body)
    legacy: bool = False


class NotTheCaller(ValueError):
    """A write that names someone other than its caller as `by` (answered 403)."""


class Api:
    """The API's logic: reads of `view`, writes through `send` signed by `signer`, the time
    zone from `tz`."""

    def __init__(
        self,
        view: SanctionsView | None,
        send: Send,
        settings: ApiSettings,
        tz: Callable[[], tzinfo],
        signer: ActionSigner | None = None,
    ) -> None:
        self.view = view
        self.send = send
        self.settings = settings
        self.signer = signer
        self._tz = tz
        self.partitions = dict(settings.partitions or {})

    # --- reads ------------------------------------------------------------------------------

    def unavailable(self) -> Reply:
        why = (
            "sanctions are disabled on this worker (CLAIMSTREAM_SANCTIONS_ENABLED=false)"
            if not self.settings.sanctions_enabled
            else "the sanctions state is not ready on this worker yet"
        )
        return Reply(503, {"error": why}, {"Retry-After": "5"})

    def partition(self, key: str, space: str = SUBJECT) -> int | None:
        count = self.partitions.get(space)
        if count is None:
            return None
        return partition_of(key.encode(), count)

    def not_found(self, key: str) -> Reply:
        return Reply(
            404,
            {"error": f"no sanctions state for {key} (no alert or action about it is held)",
             "key": key, "partition": self.partition(key)},
        )  # fmt: skip

    def not_here(self, space: str, key: str, owner: str | None, detail: str) -> Reply:
        return Reply(
            404,
            {
                "error": f"{key} is not on this worker: {detail}",
                "key": key,
                "partition": self.partition(key, space),
                "topic": TOPICS[space],
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

    def alert(self, alert_id: str) -> Reply:
        view = self.view
        if view is None:
            return self.unavailable()
        found = view.alert(alert_id)
        if found is None:
            body = {
                "error": f"no alert {alert_id} is held (never seen here, or older than the "
                "sanctions horizon)",
                "key": alert_id,
                "partition": self.partition(alert_id, ALERT),
                "topic": ALERT_TOPIC,
            }
            return Reply(404, body)
        return Reply(200, found)

    # --- writes -----------------------------------------------------------------------------

    @property
    def tz(self) -> tzinfo:
        return self._tz()

    def review_action(self, alert_id: str, body: Any, caller: Caller) -> PersonAction:
        data = _object(body)
        return verdict_from_input(
            alert_id,
            data.get("verdict"),
            _by(data, caller),
            note=data.get("note"),
            at=_at(data),
            tz=self.tz,
        )

    def unfreeze_action(self, body: Any, caller: Caller) -> PersonAction:
        data = _object(body)
        return unfreeze_from_input(
            data.get("scope"),
            data.get("reason"),
            _by(data, caller),
            ground=data.get("ground"),
            at=_at(data),
            tz=self.tz,
        )

    async def publish(self, action: AnyAction, remote: str | None, caller: str) -> Reply:
        if self.signer is None and not self.settings.accept_unsigned:
            log.warning("API write refused (503): no action signing key (%s)", SIGNING_KEY_FILE)
            body = {
                "error": f"this worker cannot sign actions ({SIGNING_KEY_FILE} is unset), and "
                "workers refuse unsigned ones: nothing was published",
                "action_id": action.action_id,
            }
            return Reply(503, body)
        record = action_record(action, self.signer)
        key, value = encode_action(action, self.signer)
        try:
            async with asyncio.timeout(self.settings.publish_timeout):
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
        partition = partition_of(key, self.settings.actions_partitions)
        # the key is left out (an unfreeze's key is the subject's id), and the free text too
        # (a reason or a note may quote an id): the record on the topic holds both
        log.warning(
            "API write: %s %s by %r (token %s) from %s, signed by %s, published to %s partition %d",
            record["type"],
            action.action_id,
            action.by,
            caller,
            remote or "?",
            record.get("key_id", "nobody (unsigned)"),
            ACTIONS_TOPIC,
            partition,
        )
        return Reply(
            202,
            {
                "action_id": action.action_id,
                "topic": ACTIONS_TOPIC,
                "key": key.decode(),
                "partition": partition,
                "record": record,
            },
        )


def _by(data: Mapping[str, Any], caller: Caller) -> object:
    """Who the action is by: the caller; the body's `by` only with the legacy token."""
    given = data.get("by")
    if caller.legacy:
        return given
    if given is not None and given != caller.name:
        raise NotTheCaller(
            f"by must be the caller's own name ({caller.name}) or left out: actions are made "
            "in the name of the token that calls"
        )
    return caller.name


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValueError("the request body must be a JSON object")
    return body


def _at(data: Mapping[str, Any], name: str = "at") -> str | None:
    """A time field (`at`, or `name`) of a request body, as given (the builders parse it)."""
    at = data.get(name)
    if at is not None and not isinstance(at, str):
        raise ValueError(f"{name} must be an RFC 3339 string with a UTC offset")
    return at
