"""Rules at run time: the detection configuration travels on a compacted control topic.

Every message is a full snapshot of the configuration under one key, so the compacted topic
always holds the configuration in force and a worker that starts late reads just that. A
snapshot carries its `version`; workers apply a snapshot newer than the last one they applied,
and refuse (log, count, ignore) one that does not validate, so a bad change changes nothing.
`claimstream rules set` builds the next snapshot from the latest one, validating the change
before anything is published.

Every worker reads the whole topic with its own group-less consumer: a consumer group would
give the single partition to one worker only, and every worker must apply every change.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from claimstream.detection.config import DetectionConfig
from claimstream.kafka.security import KafkaSecurity, resolve
from claimstream.model.config import ConfigError

log = logging.getLogger(__name__)

CONTROL_TOPIC = "claimstream.control.rules"
CONTROL_KEY = b"detection-config"
SCHEMA = "rules-config.v1"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One published configuration and who changed what, for `rules list` and the audit."""

    config: DetectionConfig
    changed_by: str | None = None
    changed_at: str | None = None
    reason: str | None = None
    change: Mapping[str, Any] | None = None

    @property
    def version(self) -> int:
        return self.config.version

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "schema": SCHEMA,
                "version": self.config.version,
                "config": self.config.to_dict(),
                "changed_by": self.changed_by,
                "changed_at": self.changed_at,
                "reason": self.reason,
                "change": dict(self.change) if self.change is not None else None,
            }
        )

    @classmethod
    def decode(cls, raw: bytes) -> Snapshot:
        """Parse and validate a control message; `ConfigError` says what is wrong with it."""
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"control message is not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ConfigError(f"control message is not a {SCHEMA} snapshot")
        body = data.get("config")
        version = data.get("version")
        if not isinstance(body, dict) or not isinstance(version, int) or version < 1:
            raise ConfigError("control message needs a 'config' table and a positive 'version'")
        config = DetectionConfig.from_dict({**body, "version": version})
        change = data.get("change")
        return cls(
            config=config,
            changed_by=_text(data.get("changed_by")),
            changed_at=_text(data.get("changed_at")),
            reason=_text(data.get("reason")),
            change=change if isinstance(change, dict) else None,
        )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse_assignments(assignments: Sequence[str]) -> dict[str, str]:
    """`["min_consultations=15", "mode=shadow"]` -> a dict; `ConfigError` on a malformed item."""
    changes: dict[str, str] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"expected SETTING=VALUE, got {item!r}")
        changes[key.strip()] = value.strip()
    if not changes:
        raise ConfigError("give at least one SETTING=VALUE")
    return changes


def next_snapshot(
    current: DetectionConfig,
    rule: str,
    changes: Mapping[str, str],
    *,
    by: str | None,
    reason: str | None,
    now: datetime | None = None,
) -> Snapshot:
    """The snapshot that applies `changes` to `rule` on top of `current` (or `ConfigError`)."""
    config = current.with_rule_changes(rule, changes)
    moment = now or datetime.now(UTC)
    return Snapshot(
        config=config,
        changed_by=by,
        changed_at=moment.isoformat(timespec="seconds"),
        reason=reason,
        change={"rule": rule, "settings": dict(changes)},
    )


# --- broker I/O (aiokafka) ---------------------------------------------------------------


async def read_latest(
    bootstrap: str, topic: str = CONTROL_TOPIC, *, security: KafkaSecurity | None = None
) -> Snapshot | None:
    """The newest valid snapshot on the control topic, or None when nothing was published.

    Callers bound the wait with `asyncio.timeout`. `security`: TLS and SASL (default: the
    `CLAIMSTREAM_KAFKA_*` variables).
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        **resolve(security).client_options(),
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        if not assigned:
            return None
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        latest: Snapshot | None = None
        for tp, end in ends.items():
            while await consumer.position(tp) < end:
                batches = await consumer.getmany(tp, timeout_ms=200)
                for records in batches.values():
                    for record in records:
                        latest = _newer(latest, record.value)
        return latest
    finally:
        await consumer.stop()


def _newer(latest: Snapshot | None, raw: bytes | None) -> Snapshot | None:
    if raw is None:
        return latest
    try:
        snapshot = Snapshot.decode(raw)
    except ConfigError as exc:
        log.warning("ignoring an invalid control message: %s", exc)
        return latest
    return snapshot if latest is None or snapshot.version > latest.version else latest


async def publish(
    bootstrap: str,
    snapshot: Snapshot,
    topic: str = CONTROL_TOPIC,
    *,
    security: KafkaSecurity | None = None,
) -> None:
    """Publish a snapshot and wait for the broker's acknowledgement."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=False,
        acks="all",
        **resolve(security).client_options(),
    )
    await producer.start()
    try:
        await producer.send_and_wait(topic, snapshot.encode(), key=CONTROL_KEY)
    finally:
        await producer.stop()


async def follow_topic(
    bootstrap: str,
    topic: str,
    handle: Callable[[bytes | None], Awaitable[Any] | Any],
    stop: asyncio.Event | None = None,
    poll_ms: int = 500,
    security: KafkaSecurity | None = None,
) -> None:
    """Hand every record value of every partition of `topic`, from the beginning, to `handle`
    (awaited when it returns an awaitable), until `stop` is set or the task is cancelled.

    A group-less consumer: every worker reads the whole topic (the control topic, the commands
    for the doctors' suspensions), whatever partitions its consumer group gives it.
    """
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        group_id=None,
        **resolve(security).client_options(),
    )
    await consumer.start()
    try:
        await consumer.topics()  # the cluster's metadata: every partition of the topic
        partitions = consumer.partitions_for_topic(topic) or {0}
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        while stop is None or not stop.is_set():
            batches = await consumer.getmany(timeout_ms=poll_ms)
            for records in batches.values():
                for record in records:
                    outcome = handle(record.value)
                    if inspect.isawaitable(outcome):
                        await outcome
    finally:
        await consumer.stop()


class ControlWatcher:
    """Follows the control topic in a worker and hands every newer valid snapshot over.

    `on_snapshot` is called with each snapshot whose version is above the last applied one;
    `on_invalid` with the reason a message was refused (the worker logs and counts it).
    `security`: TLS and SASL (the worker passes its settings'; None: the environment's).
    """

    def __init__(
        self,
        bootstrap: str,
        on_snapshot: Callable[[Snapshot], Awaitable[None] | None],
        on_invalid: Callable[[str], None] | None = None,
        topic: str = CONTROL_TOPIC,
        poll_ms: int = 500,
        security: KafkaSecurity | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.security = security
        self.topic = topic
        self.on_snapshot = on_snapshot
        self.on_invalid = on_invalid
        self.poll_ms = poll_ms
        self.applied_version: int | None = None

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Consume until `stop` is set (or the task is cancelled)."""
        await follow_topic(
            self.bootstrap, self.topic, self.handle, stop, self.poll_ms, self.security
        )

    async def handle(self, raw: bytes | None) -> None:
        if raw is None:
            return
        try:
            snapshot = Snapshot.decode(raw)
        except ConfigError as exc:
            log.warning("refused a control message: %s", exc)
            if self.on_invalid is not None:
                self.on_invalid(str(exc))
            return
        if self.applied_version is not None and snapshot.version <= self.applied_version:
            return
        try:
            outcome = self.on_snapshot(snapshot)
            if outcome is not None:
                await outcome
        except (ConfigError, OSError, ValueError) as exc:
            # e.g. reference data that no longer loads: the configuration in force stays, and
            # the watcher goes on (a later snapshot of the same version is tried again)
            log.warning("could not apply control version %s: %s", snapshot.version, exc)
            if self.on_invalid is not None:
                self.on_invalid(f"version {snapshot.version} not applied: {exc}")
            return
        self.applied_version = snapshot.version
