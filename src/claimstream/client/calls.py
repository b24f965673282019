"""The worker's calls as plain requests, their headers, what an answer's status means (a
refusal, an error, or worth trying again), and when and how long to wait before trying again:
what the blocking `Client` and the asyncio `AsyncClient` share, so they send and judge alike."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from claimstream.client.answers import (
    RETRIED,
    ClaimstreamError,
    Handling,
    RequestRefused,
    WorkerUnavailable,
    message_of,
)

#: an event (a JSON object of the event contract), a list of one patient's events, or the
#: bytes of either as read from a file (sent as they are: the worker judges them)
Events = Mapping[str, Any] | Sequence[Mapping[str, Any]] | bytes


@dataclass(frozen=True, slots=True)
class Call:
    """One request. Every call may be sent again: a check changes nothing, a feedback carries
    its own time (so the same action id), a look-up reads."""

    method: str
    path: str
    body: bytes | None = None


def headers_of(call: Call, token: str | None) -> dict[str, str]:
    """The request headers of `call`: JSON both ways, and the bearer token when there is one."""
    headers = {"Accept": "application/json"}
    if call.body is not None:
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def check_call(events: Events, check_id: str | None = None) -> Call:
    if isinstance(events, bytes | bytearray):
        if check_id is not None:
            raise ValueError("a check_id goes with events given as objects, not as bytes")
        return Call("POST", "/v1/check", bytes(events))
    given: Any = dict(events) if isinstance(events, Mapping) else [dict(e) for e in events]
    body: Any = given if check_id is None else {"check_id": check_id, "events": given}
    return Call("POST", "/v1/check", orjson.dumps(body))


def feedback_call(
    check_id: str, handlings: Iterable[Handling | Mapping[str, Any]], at: str | None
) -> Call:
    """The feedback with its time fixed here (now, with this machine's offset, unless given):
    a retry then publishes the same action (same id), which the stream counts once."""
    violations = [h.to_dict() if isinstance(h, Handling) else dict(h) for h in handlings]
    when = at or datetime.now().astimezone().isoformat(timespec="seconds")
    path = f"/v1/check/{urllib.parse.quote(check_id, safe='')}/feedback"
    return Call("POST", path, orjson.dumps({"violations": violations, "at": when}))


def freezes_call(kind: str, id_: str, drug_code: str | None = None) -> Call:
    path = f"/freezes/{urllib.parse.quote(kind, safe='')}/{urllib.parse.quote(id_, safe='')}"
    if drug_code:
        path += "?" + urllib.parse.urlencode({"drug_code": drug_code})
    return Call("GET", path)


@dataclass(frozen=True, slots=True)
class Retry:
    """`retries` more tries after the first, waiting `backoff` seconds doubled each time (or
    what the worker's `Retry-After` asks), never more than `max_wait`."""

    retries: int = 3
    backoff: float = 0.2
    max_wait: float = 5.0

    def wait(self, attempt: int, retry_after: str | None) -> float:
        """Seconds to wait before try `attempt + 1` (attempts count from 0)."""
        asked: float | None = None
        if retry_after is not None:
            try:
                asked = float(retry_after)
            except ValueError:
                asked = None
        own = self.backoff * (2**attempt)
        return max(0.0, min(self.max_wait, asked if asked is not None else own))


def decode(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return {"error": body[:200].decode("utf-8", "replace")}


def base_url(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"the worker's address must be an http(s) URL, got {url!r}")
    return url.rstrip("/")


def error_of(status: int, body: Any) -> tuple[str, ClaimstreamError | None]:
    """An error answer (`status` >= 400, its decoded `body`): the worker's sentence, and what
    to raise at once: `RequestRefused` for a 4xx, `ClaimstreamError` for another 5xx; None for
    502/503/504, which are worth trying again."""
    message = message_of(status, body)
    if status in RETRIED:
        return message, None
    if status < 500:
        return message, RequestRefused(status, message, body)
    return message, ClaimstreamError(f"HTTP {status}: {message}")


def gave_up(call: Call, url: str, last: str, retry: Retry, status: int | None) -> WorkerUnavailable:
    """What every try of `call` ending in no answer, or in a 502/503/504, raises."""
    return WorkerUnavailable(
        f"{call.method} {url}{call.path}: {last} (after {retry.retries + 1} tries)", status
    )
