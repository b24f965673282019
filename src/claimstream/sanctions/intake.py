"""The intake of records both the sanctions and the cases steps read: one way to parse, verify
and dead-letter them.

Two readers share `claimstream.actions.v1`: the sanctions' index step (reviews, unfreezes,
remediations, checks' feedback) and the cases agent (`case_*` actions). Each takes the records
that are its own (`ours`) and leaves the others' alone; only one of them (`refuse_garbage`, the
sanctions) dead-letters a record that is not a JSON object at all, so it is dead-lettered once.
An action that is ours is verified (`verify`, `ActionVerifier.check`) before anything is read
from it: unsigned, unknown-key and badly signed ones become `Refused` with the signature's
reason. `parsed` turns a record parser's ValueError / TypeError / KeyError into `Refused`.

`each` runs one batch: every record inside its own `try`, a `Refused` record becomes a dead
letter with its reason, any other exception (a bug) a `processing_error` dead letter and an
ERROR line naming the origin and the frames but never the message (it may quote an id). The
batch goes on.

What stays each reader's own is *dedup*: whether an action was applied already is a question
about the state it changes (an alert's verdict on record, a subject's applied action ids, a
case's timeline), so it is asked there.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import orjson

from claimstream.model.outputs import DeadLetter
from claimstream.model.records import Record, origin
from claimstream.sanctions.signatures import SignatureError

log = logging.getLogger(__name__)

Json = dict[str, Any]
#: checks a person's action record before it is used: raises `SignatureError` to refuse it
#: (`claimstream.sanctions.signatures.ActionVerifier.check`)
Verify = Callable[[Json], object]
T = TypeVar("T")


class Refused(Exception):
    """A record that cannot be used: dead-lettered with `reason`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def json_object(raw: bytes | None, reason: str) -> Json:
    """The JSON object in `raw`; `Refused(reason)` when there is none."""
    if raw is None:
        raise Refused(reason, "the message has no value")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Refused(reason, f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise Refused(reason, "the value is not a JSON object")
    return data


def verified(verify: Verify, data: Json) -> None:
    """`data`'s signature checked; `Refused` with the signature's reason when it fails."""
    try:
        verify(data)
    except SignatureError as refused:
        raise Refused(refused.reason, str(refused)) from None


def read_action(
    raw: bytes | None,
    verify: Verify,
    *,
    ours: Callable[[Json], bool],
    refuse_garbage: bool,
) -> Json | None:
    """The action record in `raw` when it is `ours`, verified; None when it is another
    reader's (or not JSON and `refuse_garbage` is off: the other reader dead-letters it)."""
    try:
        data = json_object(raw, "invalid_action")
    except Refused:
        if refuse_garbage:
            raise
        return None
    if not ours(data):
        return None
    verified(verify, data)
    return data


def parsed(parse: Callable[[Json], T], data: Json, reason: str, what: str) -> T:
    """`parse(data)`, its ValueError / TypeError / KeyError a `Refused(reason)`."""
    try:
        return parse(data)
    except (ValueError, TypeError, KeyError) as exc:
        raise Refused(reason, f"not {what}: {exc}") from None


def each(
    records: Iterable[Record], dead_letters: list[DeadLetter], one: Callable[[Record], None]
) -> None:
    """`one(record)` for every record; what fails becomes a dead letter and the batch goes on."""
    for record in records:
        try:
            one(record)
        except Refused as refused:
            dead_letters.append(
                DeadLetter(refused.reason, str(refused), origin(record), record.value or b"")
            )
        except Exception as exc:  # noqa: BLE001  (a bug hit by one record must not stop the stream)
            log.error(
                "processing failed at %s (the dead letter has the message)\n%s",
                origin(record),
                frames(exc),
            )
            detail = f"{type(exc).__name__}: {exc} | " + traceback.format_exc(limit=3)
            dead_letters.append(
                DeadLetter("processing_error", detail[:2000], origin(record), record.value or b"")
            )


def frames(exc: BaseException) -> str:
    """An exception's type and traceback frames for a log line, without its message: the
    message may quote a record or a key (an id), the frames only name our code."""
    where = "".join(traceback.format_tb(exc.__traceback__, limit=-6))
    return f"Traceback (message left out: it may hold an id):\n{where}{type(exc).__name__}"
