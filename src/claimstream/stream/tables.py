"""The two faust objects every agent is built from: a state table and a raw-bytes topic.

Each agent of the worker (detection per key kind, sanctions, audit) keeps its state in a plain,
non-windowed table whose changelog topic is declared in topics.toml (compacted, the table's
co-partition group's partition count), and reads topics as raw bytes (decoding is the pure
core's job, so a bad record becomes a dead letter instead of a faust deserialisation error).
"""

from __future__ import annotations

from typing import Any

from claimstream.stream.codec import StateCodec
from claimstream.topology import Topology


def state_table(app: Any, topology: Topology, name: str) -> tuple[Any, str, int]:
    """The table `name` with raw UTF-8 keys and orjson values, its changelog topic's name and
    its partition count (from the changelog's declaration in topics.toml)."""
    spec = topology.changelog_topic(name)
    codec = StateCodec()
    table: Any = app.Table(
        name,
        default=None,
        partitions=spec.partitions,
        key_type=str,
        changelog_topic=app.topic(
            spec.name,
            partitions=spec.partitions,
            key_type=str,
            key_serializer="raw",
            value_serializer=codec,
            compacting=True,
            acks=False,
            internal=False,
        ),
    )
    # faust derives a table's serializers from its types ("json" for str); the store (built
    # lazily on first `table.data`) and the changelog writes must use ours: raw UTF-8 keys,
    # orjson states.
    table.key_serializer = "raw"
    table.value_serializer = codec
    return table, spec.name, spec.partitions


def raw_topic(app: Any, *names: str, partitions: int) -> Any:
    """One faust topic object over `names` (consumed together, co-partitioned), bytes in."""
    return app.topic(
        *names,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=partitions,
    )
