"""People's actions onto `claimstream.actions.v1`: build them from user input, and publish them.

`claimstream alerts review`, `claimstream unfreeze` and the worker's POST API all go through
the builders here (`verdict_from_input`, `unfreeze_from_input`, `feedback_from_input`), so the
CLI and the API refuse the same bad input with the same words before anything is published: an
unknown verdict, ground or handling, a malformed scope `KIND:ID[:DRUG]`, an empty `by` or
reason, a time without a UTC offset. The record is `action_to_dict(action)`
(topics/schemas/action.v1.json) keyed by `action_key(action)` (the alert id, the scope `kind:id`
of an unfreeze, or the check id of a check's feedback), signed by the
publisher's Ed25519 key when it has one (`action_record`; `claimstream.sanctions.signatures`):
workers refuse unsigned actions unless told to accept them. `read_signer` reads the key file
(`CLAIMSTREAM_ACTION_SIGNING_KEY_FILE`, PKCS#8 PEM) for the command line and the worker alike.

`publish_action` is the command-line path: its own aiokafka producer with `acks=all` and no
idempotence (Tansu refuses idempotent producers), stopped before it returns; an unreachable
broker raises `ActionPublishError` saying where it tried. The worker's API publishes through
its own producer (`stream.publish.BatchPublisher`) with `encode_action`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from aiokafka.partitioner import murmur2

from claimstream.cases.actions import CASE_ACTION_CLASSES, CaseAction, case_action_to_dict
from claimstream.cases.report_actions import (
    REPORT_ACTION_CLASSES,
    ReportAction,
    report_action_to_dict,
)
from claimstream.kafka.security import KafkaSecurity, resolve
from claimstream.model.config import ConfigError
from claimstream.model.events import KEY_KINDS, KeyKind
from claimstream.model.ids import id_problem, is_valid_id
from claimstream.model.outputs import Scope
from claimstream.sanctions.actions import (
    HANDLINGS,
    VERDICTS,
    CheckFeedback,
    Handling,
    ManualUnfreeze,
    UnfreezeGround,
    Verdict,
)
from claimstream.sanctions.codec import PersonAction, action_key, action_to_dict
from claimstream.sanctions.signatures import ActionSigner

__all__ = [
    "ACTIONS_TOPIC",
    "GROUNDS",
    "SIGNING_KEY_FILE",
    "ActionPublishError",
    "ActionTopicMissing",
    "AnyAction",
    "Receipt",
    "action_record",
    "encode_action",
    "feedback_from_input",
    "local_now",
    "normalize_at",
    "parse_scope",
    "partition_of",
    "publish_action",
    "read_signer",
    "unfreeze_from_input",
    "verdict_from_input",
]

ACTIONS_TOPIC = "claimstream.actions.v1"
#: what may be published on the actions topic: the sanctions' actions and case actions
#: (claimstream.cases.actions, keyed by their case id) and report actions (keyed by report id)
AnyAction = PersonAction | CaseAction | ReportAction
#: the Ed25519 private key (PKCS#8 PEM) this process signs people's actions with
SIGNING_KEY_FILE = "CLAIMSTREAM_ACTION_SIGNING_KEY_FILE"
GROUNDS: tuple[UnfreezeGround, ...] = ("appeal", "reviewer")
#: most violations one feedback may answer (a check reports at most one per rule and event)
MAX_HANDLINGS = 100
#: longest the command line waits for the broker (connect + acknowledgement), seconds
DEFAULT_TIMEOUT = 15.0


class ActionPublishError(RuntimeError):
    """The action could not be published (broker unreachable, topic missing, timeout)."""


class ActionTopicMissing(ActionPublishError):
    """The broker answered and has no such topic (`claimstream topics apply` creates it)."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """Where a published action went."""

    action_id: str
    topic: str
    key: str
    partition: int
    offset: int | None = None


# --- building actions from user input ------------------------------------------------------


def zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None


def local_now(tz: tzinfo) -> str:
    """Now, RFC 3339 to the second, with the offset of `tz` (the configured time zone)."""
    return datetime.now(tz).isoformat(timespec="seconds")


def normalize_at(text: str | None, tz: tzinfo) -> str:
    """`text` as RFC 3339 with its own offset (`Z` becomes `+00:00`), or now in `tz` if empty.

    A time without a UTC offset is refused: actions take effect in event time, and a naive
    time would mean different instants on different machines.
    """
    if text is None or not text.strip():
        return local_now(tz)
    raw = text.strip()
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise ValueError(
            f"at must be an RFC 3339 time such as 2026-03-01T09:30:00+08:00, got {raw!r}"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError(f"at needs a UTC offset (e.g. +08:00 or Z), got {raw!r}")
    return parsed.isoformat(timespec="seconds" if parsed.microsecond == 0 else "milliseconds")


def _required(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    return value.strip()


def _optional_text(value: object, name: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    return value.strip()


def parse_scope(value: object) -> Scope:
    """`KIND:ID[:DRUG]` (or `{"kind", "id", "drug_code"?}`) as a `Scope`; `ValueError` if bad."""
    if isinstance(value, dict):
        kind, id_, drug = value.get("kind"), value.get("id"), value.get("drug_code")
        text = f"{kind}:{id_}" + (f":{drug}" if drug else "")
        if drug is not None and (not isinstance(drug, str) or not drug.strip()):
            raise ValueError("scope.drug_code must be a non-empty string when given")
    elif isinstance(value, str):
        text = value.strip()
        parts = text.split(":", 2)
        if len(parts) < 2:
            raise ValueError(f"scope must be KIND:ID or KIND:ID:DRUG, got {text!r}")
        kind, id_ = parts[0], parts[1]
        drug = parts[2] if len(parts) == 3 else None
        if drug is not None and not drug.strip():
            raise ValueError(f"scope has an empty drug code: {text!r}")
    else:
        raise ValueError("scope must be a string KIND:ID[:DRUG] or an object {kind, id}")
    if kind not in KEY_KINDS:
        raise ValueError(f"scope kind must be one of {', '.join(KEY_KINDS)}, got {kind!r}")
    if not isinstance(id_, str) or not id_.strip():
        raise ValueError(f"scope needs a non-empty id: {text!r}")
    return Scope(cast(KeyKind, kind), id_.strip(), drug.strip() if drug else None)


def verdict_from_input(
    alert_id: object,
    verdict: object,
    by: object,
    *,
    note: object = None,
    at: str | None = None,
    tz: tzinfo,
) -> Verdict:
    """A reviewer's verdict from untrusted input; `ValueError` says what is wrong."""
    alert = _required(alert_id, "alert_id")
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    return Verdict(
        alert_id=alert,
        verdict=verdict,
        by=_required(by, "by"),
        at=normalize_at(at, tz),
        note=_optional_text(note, "note"),
    )


def unfreeze_from_input(
    scope: object,
    reason: object,
    by: object,
    *,
    ground: object = "reviewer",
    at: str | None = None,
    tz: tzinfo,
) -> ManualUnfreeze:
    """A manual unfreeze from untrusted input; `ValueError` says what is wrong."""
    parsed = parse_scope(scope)
    if ground is None:
        ground = "reviewer"
    if ground not in GROUNDS:
        raise ValueError(f"ground must be one of {', '.join(GROUNDS)}, got {ground!r}")
    return ManualUnfreeze(
        scope=parsed,
        reason=_required(reason, "reason"),
        by=_required(by, "by"),
        at=normalize_at(at, tz),
        ground=ground,
    )


def feedback_from_input(
    check_id: object,
    violations: object,
    by: object,
    *,
    at: str | None = None,
    tz: tzinfo,
    rules: Collection[str],
) -> CheckFeedback:
    """A clinician's answer to a check from untrusted input; `ValueError` says what is wrong.

    `violations`: a non-empty list of `{"rule", "handling", "reason"?, "alert_id"?}`, the rule
    one of `rules` (the rule names the checks report), `handling` one of `HANDLINGS`; a
    violation settled anyway (`continued`) needs its reason.
    """
    check = _required(check_id, "check_id")
    if (problem := id_problem("check_id", check)) is not None:
        raise ValueError(problem)
    if not isinstance(violations, list) or not violations:
        raise ValueError("violations must be a non-empty list of {rule, handling, reason}")
    if len(violations) > MAX_HANDLINGS:
        raise ValueError(f"violations holds {len(violations)} items; at most {MAX_HANDLINGS}")
    handlings = tuple(
        _handling(item, f"violations[{n}]", rules) for n, item in enumerate(violations)
    )
    return CheckFeedback(check, handlings, _required(by, "by"), normalize_at(at, tz))


def _handling(item: object, where: str, rules: Collection[str]) -> Handling:
    if not isinstance(item, dict):
        raise ValueError(f"{where} must be an object {{rule, handling, reason}}")
    rule = item.get("rule")
    if rule not in rules:
        raise ValueError(f"{where}.rule must be a rule name (one of {', '.join(sorted(rules))})")
    handling = item.get("handling")
    if handling not in HANDLINGS:
        raise ValueError(
            f"{where}.handling must be one of {', '.join(HANDLINGS)}, got {handling!r}"
        )
    reason = _optional_text(item.get("reason"), f"{where}.reason")
    if handling == "continued" and not reason:
        raise ValueError(f"{where}.reason is required when the claim is settled anyway")
    alert_id = item.get("alert_id")
    if alert_id is not None and (not isinstance(alert_id, str) or not is_valid_id(alert_id)):
        raise ValueError(f"{where}.alert_id must be the alert id the check gave")
    return Handling(str(rule), handling, reason, alert_id)


# --- records -------------------------------------------------------------------------------


def read_signer(path: str, variable: str = SIGNING_KEY_FILE) -> ActionSigner:
    """The signing key at `path`; `ConfigError` names the variable (or option) and the file,
    never the key."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{variable}: cannot read {path}: {exc.strerror or exc}") from None
    return ActionSigner.from_pem(data, f"{variable} ({path})")


def action_record(action: AnyAction, signer: ActionSigner | None = None) -> dict[str, Any]:
    """The action.v1 record of `action`, signed by `signer` when given."""
    if isinstance(action, CASE_ACTION_CLASSES):
        record = case_action_to_dict(action)
    elif isinstance(action, REPORT_ACTION_CLASSES):
        record = report_action_to_dict(action)
    else:
        record = action_to_dict(action)
    return signer.sign(record) if signer is not None else record


def encode_action(action: AnyAction, signer: ActionSigner | None = None) -> tuple[bytes, bytes]:
    """The actions topic record of `action` (signed by `signer` when given): (key, value); a
    case action is keyed by its case id, a report action by its report id."""
    if isinstance(action, CASE_ACTION_CLASSES):
        key = action.case_id
    elif isinstance(action, REPORT_ACTION_CLASSES):
        key = action.report_id
    else:
        key = action_key(action)
    return key.encode(), orjson.dumps(action_record(action, signer))


def partition_of(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2) gives `key`."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


async def publish_action(
    bootstrap: str,
    action: AnyAction,
    *,
    topic: str = ACTIONS_TOPIC,
    ack_timeout: float = DEFAULT_TIMEOUT,
    signer: ActionSigner | None = None,
    security: KafkaSecurity | None = None,
) -> Receipt:
    """Publish one action (signed by `signer` when given) and wait for the broker's
    acknowledgement (acks=all).

    Raises `ActionPublishError` when the broker cannot be reached, the topic does not exist,
    or nothing is acknowledged within `ack_timeout` seconds. `security`: TLS and SASL
    (default: the `CLAIMSTREAM_KAFKA_*` variables).
    """
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    key, value = encode_action(action, signer)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,
        request_timeout_ms=int(ack_timeout * 1000),
        **resolve(security).client_options(),
    )
    started = False
    try:
        async with asyncio.timeout(ack_timeout):
            try:
                await producer.start()
            except KafkaError as exc:
                raise ActionPublishError(f"cannot reach the broker at {bootstrap}: {exc}") from exc
            started = True
            # all-topics metadata: asking for the topic by name would let the broker create it
            cluster = await producer.client.fetch_all_metadata()
            if topic not in cluster.topics():
                raise ActionTopicMissing(
                    f"topic {topic} does not exist at {bootstrap} "
                    "(create it with `claimstream topics apply`)"
                )
            meta = await producer.send_and_wait(topic, value, key=key)
    except TimeoutError:
        raise ActionPublishError(
            f"no acknowledgement from the broker at {bootstrap} within {ack_timeout:g} s"
        ) from None
    except KafkaError as exc:
        raise ActionPublishError(f"publishing to {topic} at {bootstrap} failed: {exc}") from exc
    finally:
        if started:
            await producer.stop()
        else:  # a failed start may leave a half-open client behind
            with contextlib.suppress(Exception):
                await producer.stop()
    return Receipt(action.action_id, topic, key.decode(), meta.partition, meta.offset)
