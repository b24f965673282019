"""One consumed message as the pure processors see it: raw key and value, and where it was.

Detection and sanctions processors take `Record`s so they are tested with plain lists; the
stream adapter builds them from faust events (`stream.batches.records_of`), tests by hand.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Record:
    """One consumed message: its raw key and value and its origin."""

    key: bytes | None
    value: bytes | None
    topic: str
    partition: int
    offset: int
    #: wall-clock seconds when the worker received it (for arrival-to-alert latency)
    arrived_at: float = 0.0
    #: the record's Kafka headers; on the repartition topics they carry event-time progress
    #: (`claimstream.detection.align`: the source of a re-keyed event, watermark markers)
    headers: tuple[tuple[str, bytes], ...] = ()


def origin(record: Record) -> dict[str, object]:
    return {"topic": record.topic, "partition": record.partition, "offset": record.offset}
