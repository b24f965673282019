"""The topic declarations in topics/topics.toml, loaded into frozen dataclasses and validated.

One file declares every topic so that `claimstream topics apply`, the worker, the tests and the
demo agree on names, partition counts and configs; nothing else hard-codes a partition count.
Validation enforces what would otherwise fail late and quietly: every topic of a co-partition
group has the group's partition count, and changelog names match what faust derives from the
app id and table name (a mismatch makes faust create a second, wrongly sized changelog topic).

Where the file is found (first hit wins): the `path` argument; `$CLAIMSTREAM_TOPICS_FILE`; the
source checkout this module was imported from (`<repo>/topics/topics.toml`, which covers the
editable install used in development and CI); `./topics/topics.toml`. The file is deliberately
not copied into the package: one copy cannot drift, and deployments apply topics from the repo
(or point `$CLAIMSTREAM_TOPICS_FILE` at the file they ship).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, cast

__all__ = [
    "ROLES",
    "TopicSpec",
    "Topology",
    "TopologyError",
    "default_topics_file",
    "load_topology",
    "parse_retention",
]

Role = Literal["input", "repartition", "output", "changelog", "internal"]
ROLES: tuple[Role, ...] = ("input", "repartition", "output", "changelog", "internal")
CLEANUP_POLICIES = frozenset({"delete", "compact", "compact,delete"})
ENV_TOPICS_FILE = "CLAIMSTREAM_TOPICS_FILE"

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class TopologyError(ValueError):
    """topics.toml is missing or inconsistent; the message names the file and the topic."""


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One declared topic, with the partition count already resolved for its group."""

    name: str
    role: Role
    partitions: int
    replication_factor: int
    cleanup_policy: str
    #: retention.ms; -1 keeps records forever; None leaves the broker default.
    retention_ms: int | None
    key: str
    description: str = ""
    value_schema: Path | None = None
    value: str = ""
    copartition: str | None = None
    table: str | None = None
    extra_config: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def kafka_config(self) -> dict[str, str]:
        """Topic configs to create the topic with and to compare against the broker."""
        config = {"cleanup.policy": self.cleanup_policy}
        if self.retention_ms is not None:
            config["retention.ms"] = str(self.retention_ms)
        config.update(self.extra_config)
        return config


@dataclass(frozen=True, slots=True)
class Topology:
    """All declared topics, in file order."""

    source: Path
    app_id: str
    default_partitions: int
    topics: tuple[TopicSpec, ...]

    def topic(self, name: str) -> TopicSpec:
        for spec in self.topics:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.topics)

    def by_role(self, role: Role) -> tuple[TopicSpec, ...]:
        return tuple(spec for spec in self.topics if spec.role == role)

    def copartition_groups(self) -> dict[str, tuple[TopicSpec, ...]]:
        groups: dict[str, list[TopicSpec]] = {}
        for spec in self.topics:
            if spec.copartition is not None:
                groups.setdefault(spec.copartition, []).append(spec)
        return {name: tuple(specs) for name, specs in groups.items()}

    def changelog_topic(self, table: str) -> TopicSpec:
        """The changelog declared for faust table `table` (what the worker's Table must match)."""
        for spec in self.by_role("changelog"):
            if spec.table == table:
                return spec
        raise KeyError(f"no changelog declared for table {table!r}")

    @property
    def leader_topic(self) -> str:
        return f"{self.app_id}-__assignor-__leader"


def parse_retention(value: object) -> int | None:
    """'7d' -> 604800000 ms; 'forever' -> -1; None -> None (broker default)."""
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().lower() == "forever":
            return -1
        match = _DURATION.match(value)
        if match:
            return int(match.group(1)) * _UNIT_MS[match.group(2)]
    raise ValueError(f"retention must be like '7d', '12h', '500ms' or 'forever', not {value!r}")


def default_topics_file() -> Path:
    """The topics.toml used when none is given; see the module docstring for the order."""
    env = os.environ.get(ENV_TOPICS_FILE)
    if env:
        return Path(env)
    candidates = [
        Path(__file__).resolve().parents[3] / "topics" / "topics.toml",
        Path.cwd() / "topics" / "topics.toml",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise TopologyError(f"no topics.toml found (tried {tried}); set ${ENV_TOPICS_FILE}")


def load_topology(
    path: str | os.PathLike[str] | None = None,
    partitions: int | None = None,
    replication_factor: int | None = None,
) -> Topology:
    """Load and validate topics.toml.

    `partitions` overrides the file's co-partitioned partition count (tests use fewer), and
    `replication_factor` the file's replication factor (production wants 3); topics with their
    own `partitions` keep it.
    """
    source = Path(path) if path is not None else default_topics_file()
    try:
        doc = tomllib.loads(source.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TopologyError(f"{source}: {exc}") from exc
    try:
        return _build(source, doc, partitions, replication_factor)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, TopologyError):
            raise
        raise TopologyError(f"{source}: {exc}") from exc


def _build(
    source: Path, doc: dict[str, Any], partitions: int | None, replication: int | None
) -> Topology:
    default_partitions = _positive(partitions or doc.get("partitions", 8), "partitions")
    rf = _positive(replication or doc.get("replication_factor", 1), "replication_factor")
    app_id = str(doc.get("faust", {}).get("app_id", "claimstream"))
    raw_topics = doc.get("topic", [])
    if not isinstance(raw_topics, list) or not raw_topics:
        raise TopologyError(f"{source}: no [[topic]] declared")
    specs = tuple(_topic(source, raw, default_partitions, rf) for raw in raw_topics)
    topology = Topology(source, app_id, default_partitions, specs)
    _validate(topology)
    return topology


def _topic(source: Path, raw: dict[str, Any], default_partitions: int, rf: int) -> TopicSpec:
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise TopologyError(f"{source}: a [[topic]] has no name")
    try:
        role = raw["role"]
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        group = raw.get("copartition")
        if group is not None and "partitions" in raw:
            raise ValueError(
                "a co-partitioned topic takes the top-level partition count; "
                "remove its `partitions` or its `copartition`"
            )
        if group is None and "partitions" not in raw:
            raise ValueError("needs `partitions` (or a `copartition` group)")
        cleanup = str(raw.get("cleanup_policy", "delete")).replace(" ", "")
        if cleanup not in CLEANUP_POLICIES:
            raise ValueError(f"cleanup_policy must be one of {sorted(CLEANUP_POLICIES)}")
        schema = raw.get("value_schema")
        extra = {str(k): str(v) for k, v in dict(raw.get("config", {})).items()}
        return TopicSpec(
            name=name,
            role=cast(Role, role),
            partitions=_positive(raw.get("partitions", default_partitions), "partitions"),
            replication_factor=rf,
            cleanup_policy=cleanup,
            retention_ms=parse_retention(raw.get("retention")),
            key=str(raw["key"]),
            description=str(raw.get("description", "")),
            value_schema=(source.parent / schema) if schema else None,
            value=str(raw.get("value", "")),
            copartition=group,
            table=raw.get("table"),
            extra_config=MappingProxyType(extra),
        )
    except (KeyError, TypeError, ValueError) as exc:
        detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise TopologyError(f"{source}: topic {name!r}: {detail}") from exc


def _validate(topology: Topology) -> None:
    seen: set[str] = set()
    for spec in topology.topics:
        if spec.name in seen:
            raise TopologyError(f"{topology.source}: topic {spec.name!r} declared twice")
        seen.add(spec.name)
        if spec.role == "changelog":
            expected = f"{topology.app_id}-{spec.table}-changelog"
            if spec.name != expected:
                raise TopologyError(
                    f"{topology.source}: changelog {spec.name!r} must be named {expected!r} "
                    "(faust derives it from the app id and the table name)"
                )
            if spec.copartition is None:
                raise TopologyError(
                    f"{topology.source}: changelog {spec.name!r} needs the `copartition` group "
                    "of the stream that updates its table"
                )
    for group, specs in topology.copartition_groups().items():
        counts = {spec.partitions for spec in specs}
        if len(counts) != 1:  # unreachable via the file format, kept as the invariant's guard
            raise TopologyError(f"{topology.source}: group {group!r} has counts {counts}")


def _positive(value: object, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{what} must be a positive integer, not {value!r}")
    return value
