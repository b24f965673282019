"""Apply topics.toml to a broker: create what is missing, report what differs (drift).

Topics must exist with their declared partition counts *before* any worker or producer touches
them: faust and aiokafka send metadata requests for the topics they use, and brokers with
auto-creation (Tansu always; Kafka with auto.create.topics.enable) then create them with the
broker's default count (Tansu: 4), silently breaking co-partitioning. For the same reason this
module only ever asks for the metadata of *all* topics: a metadata request naming a missing
topic would create it.

An unreachable broker raises `claimstream.kafka.url.BrokerUnreachable` (an `OSError`).

Drift is reported, never "fixed": changing a live topic's partition count re-maps keys, and
Tansu supports neither AlterConfigs nor CreatePartitions anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from claimstream.kafka.security import KafkaSecurity, resolve
from claimstream.kafka.topology import TopicSpec, Topology
from claimstream.kafka.url import BrokerUnreachable

__all__ = ["ApplyReport", "TopicStatus", "apply_topics", "apply_topics_sync"]

Status = Literal["ok", "created", "drift", "missing", "error"]
_TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True, slots=True)
class TopicStatus:
    """How one declared topic compares with the broker."""

    name: str
    status: Status
    declared_partitions: int
    actual_partitions: int | None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ApplyReport:
    """The outcome of one apply or check, in declaration order."""

    bootstrap: str
    topics: tuple[TopicStatus, ...]
    #: topics on the broker that topics.toml does not declare and that look like ours.
    undeclared: tuple[str, ...] = ()
    #: False when the broker would not describe topic configs (only partitions were compared).
    configs_checked: bool = True
    notes: tuple[str, ...] = field(default=())

    def with_status(self, *statuses: Status) -> tuple[TopicStatus, ...]:
        return tuple(t for t in self.topics if t.status in statuses)

    @property
    def drifted(self) -> bool:
        return bool(self.with_status("drift"))

    @property
    def in_sync(self) -> bool:
        """Every declared topic exists as declared."""
        return not self.with_status("drift", "missing", "error")

    def format_table(self) -> str:
        """A fixed-width table for humans: topic, partitions, status, what differs."""
        rows = [("TOPIC", "PARTITIONS", "STATUS", "DETAILS")]
        for t in self.topics:
            actual = "-" if t.actual_partitions is None else str(t.actual_partitions)
            parts = str(t.declared_partitions)
            if t.actual_partitions not in (None, t.declared_partitions):
                parts = f"{t.declared_partitions} (broker: {actual})"
            rows.append((t.name, parts, t.status, "; ".join(t.problems)))
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        lines = [
            f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip()
            for r in rows
        ]
        counts: dict[str, int] = {}
        for t in self.topics:
            counts[t.status] = counts.get(t.status, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        lines.append(f"\n{len(self.topics)} declared topics on {self.bootstrap}: {summary}")
        if self.undeclared:
            lines.append("undeclared topics on the broker: " + ", ".join(self.undeclared))
        lines.extend(self.notes)
        return "\n".join(lines)


async def apply_topics(
    bootstrap: str,
    topology: Topology,
    *,
    create: bool = True,
    request_timeout: float = 30.0,
    security: KafkaSecurity | None = None,
) -> ApplyReport:
    """Create missing topics (unless `create` is False) and compare all of them to the broker.

    `request_timeout` bounds connecting and the whole apply, so an unreachable broker fails fast:
    `BrokerUnreachable` when no connection could be made within it. `security`: TLS and SASL
    (default: the `CLAIMSTREAM_KAFKA_*` variables, `claimstream.kafka.security`).
    """
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaConnectionError

    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap,
        client_id="claimstream-topics",
        request_timeout_ms=int(request_timeout * 1000),
        **resolve(security).client_options(),
    )
    try:
        async with asyncio.timeout(request_timeout):
            await admin.start()
    except (KafkaConnectionError, TimeoutError, OSError) as exc:
        with contextlib.suppress(Exception):
            await admin.close()
        if isinstance(exc, TimeoutError):
            detail = f"no answer within {request_timeout:g} s"
        elif isinstance(exc, KafkaConnectionError):
            detail = "no Kafka broker answered"  # aiokafka's text is a repr of its host list
        else:
            detail = exc.strerror or str(exc)
        raise BrokerUnreachable(bootstrap, detail) from exc
    try:
        async with asyncio.timeout(request_timeout):
            return await _apply(admin, bootstrap, topology, create)
    finally:
        await admin.close()


def apply_topics_sync(
    bootstrap: str,
    topology: Topology,
    *,
    create: bool = True,
    request_timeout: float = 30.0,
    security: KafkaSecurity | None = None,
) -> ApplyReport:
    """apply_topics for callers without an event loop (CLI, sync fixtures, LocalBroker users)."""
    return asyncio.run(
        apply_topics(
            bootstrap,
            topology,
            create=create,
            request_timeout=request_timeout,
            security=security,
        )
    )


async def _apply(admin: Any, bootstrap: str, topology: Topology, create: bool) -> ApplyReport:
    existing = await _describe_all(admin)
    missing = [spec for spec in topology.topics if spec.name not in existing]
    created: dict[str, str | None] = {}
    if create and missing:
        created = await _create(admin, missing)
        existing = await _describe_all(admin)
    present = [spec.name for spec in topology.topics if spec.name in existing]
    configs, configs_checked = await _describe_configs(admin, present)

    statuses = []
    for spec in topology.topics:
        if spec.name in created and created[spec.name] is not None:
            statuses.append(
                TopicStatus(spec.name, "error", spec.partitions, None, (str(created[spec.name]),))
            )
        elif spec.name not in existing:
            statuses.append(TopicStatus(spec.name, "missing", spec.partitions, None))
        else:
            statuses.append(
                _compare(spec, existing[spec.name], configs.get(spec.name), spec.name in created)
            )
    notes = () if configs_checked else ("note: the broker did not describe topic configs",)
    return ApplyReport(
        bootstrap=bootstrap,
        topics=tuple(statuses),
        undeclared=_undeclared(topology, existing),
        configs_checked=configs_checked,
        notes=notes,
    )


def _compare(
    spec: TopicSpec,
    partitions: list[Mapping[str, Any]],
    broker_config: Mapping[str, str] | None,
    just_created: bool,
) -> TopicStatus:
    problems: list[str] = []
    actual = len(partitions)
    if actual != spec.partitions:
        problems.append(f"partitions {actual}, declared {spec.partitions}")
    replicas = min((len(p.get("replicas", ())) for p in partitions), default=0)
    if partitions and replicas != spec.replication_factor:
        problems.append(f"replication factor {replicas}, declared {spec.replication_factor}")
    for key, want in spec.kafka_config().items():
        have = (broker_config or {}).get(key)
        if have is not None and _normalize(key, have) != _normalize(key, want):
            problems.append(f"{key}={have}, declared {want}")
    if problems:
        return TopicStatus(spec.name, "drift", spec.partitions, actual, tuple(problems))
    status: Status = "created" if just_created else "ok"
    return TopicStatus(spec.name, status, spec.partitions, actual)


def _normalize(key: str, value: str) -> str:
    if key == "cleanup.policy":
        return ",".join(sorted(v.strip() for v in value.split(",")))
    return value.strip()


async def _describe_all(admin: Any) -> dict[str, list[Mapping[str, Any]]]:
    """name -> partition metadata, for every topic (never name one: see module docstring)."""
    topics = await admin.describe_topics()
    return {t["topic"]: list(t["partitions"]) for t in topics if t.get("error_code", 0) == 0}


async def _create(admin: Any, specs: Iterable[TopicSpec]) -> dict[str, str | None]:
    """Create `specs`; name -> None when created (or created meanwhile), else the error."""
    from aiokafka.admin import NewTopic

    new = [
        NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=s.kafka_config())
        for s in specs
    ]
    response = await admin.create_topics(new)
    result: dict[str, str | None] = {}
    for entry in response.topic_errors:
        name, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        ok = code in (0, _TOPIC_ALREADY_EXISTS)
        result[name] = None if ok else f"create failed: error {code} {message or ''}".strip()
    return result


async def _describe_configs(admin: Any, names: list[str]) -> tuple[dict[str, dict[str, str]], bool]:
    """name -> {config: value} as the broker reports them; (_, False) if it will not say."""
    if not names:
        return {}, True
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
        )
    except Exception:  # noqa: BLE001 - any refusal just means "configs not comparable"
        return {}, False
    configs: dict[str, dict[str, str]] = {}
    for response in responses:
        for resource in response.resources:
            error_code, _message, _type, name, entries = resource[:5]
            if error_code == 0:
                configs[name] = {e[0]: e[1] for e in entries if e[1] is not None}
    return configs, True


def _undeclared(topology: Topology, existing: Mapping[str, object]) -> tuple[str, ...]:
    prefixes = (f"{topology.app_id}-", f"{topology.app_id}.", "settlement.")
    declared = set(topology.names())
    return tuple(sorted(n for n in existing if n not in declared and n.startswith(prefixes)))
