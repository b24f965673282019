"""Watermark markers: how the owner of input partitions tells the aligned agents (doctor,
institution, trace code) how far each partition has come, whether or not anything is forwarded
(docs/time.md §7 item 2).

Every `interval` (about a second) the worker sends one marker record, with no key and no value,
to every partition of the aligned repartition topics. Its header `cs-marker` holds a JSON
object `{"family/partition": [progress or null, idle]}` for the input partitions this worker is
assigned: the progress is the patient processor's (the highest event time confirmed by two
consecutive records of that partition), the same figure a forwarded event carries in its
`cs-progress` header.

Ordering. A marker must not overtake the forwards it speaks for: the patient agent runs each
batch's processing and the delivery of its forwards under `Pipeline.lock`, and the marker is
built and delivered under the same lock, so on every repartition partition it follows every
forward of the records its progress counts.

Idleness. A partition is reported idle only when nothing was read from it for
`source_idle_seconds` of wall time (counted from when it was assigned to this worker, for one
not read since) **and** it has been read to its end as far as the consumer knows (committed or
read offset at the partition's high watermark): a partition with a backlog is never idle, so
the aligned side never gives up waiting for records that are merely not fetched yet (after a
rebalance the high watermark is unknown until the first fetch, which counts as a backlog).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import orjson

from claimstream.detection.processor import MARKER_HEADER
from claimstream.model.events import FAMILY_OF
from claimstream.model.records import Record

log = logging.getLogger(__name__)

#: (topic, partition)
Where = tuple[str, int]


class ClockMark(NamedTuple):
    """One detection input's say in the sanctions ladder's clock (`Detection.watermarks`).

    `confirmed`: the event time up to which what it feeds has produced its alerts (None: not
    known yet); `last`: its latest record's event time, what it counts for once it is quiet
    (None: none). `waiting` None: an input partition, quiet once it has not moved for a while
    and is read to its end (the sanctions side judges that); True or False: an aligned kind's
    partition, which holds the clock while events wait (or its partition has unread records).
    """

    topic: str
    partition: int
    confirmed: float | None
    last: float | None
    waiting: bool | None = None


def family_of_topic(topics: Iterable[str]) -> dict[str, str]:
    """Input topic -> its family (`settlement.<family>.v1`, a family `model.events.FAMILY_OF`
    names); other topics are left out."""
    families = set(FAMILY_OF.values())
    out: dict[str, str] = {}
    for topic in topics:
        parts = topic.split(".")
        if len(parts) >= 3 and parts[1] in families:
            out[topic] = parts[1]
    return out


class SourceWatch:
    """When each input partition this worker reads was last heard from, and how far it was read
    (what a marker's idleness is judged on)."""

    def __init__(self, families: Mapping[str, str], idle_after: float) -> None:
        self.families = dict(families)
        self.idle_after = idle_after
        self.heard: dict[Where, float] = {}
        self.read: dict[Where, int] = {}

    def seen(self, records: Iterable[Record], now: float) -> None:
        """A batch of the patient agent was handled."""
        last: dict[Where, int] = {}
        for record in records:
            last[(record.topic, record.partition)] = record.offset
        for where, offset in last.items():
            if where[0] not in self.families:
                continue  # the patient repartition topic: no source of its own
            self.heard[where] = now
            if offset + 1 > self.read.get(where, 0):
                self.read[where] = offset + 1

    def assigned(self, owned: Iterable[Where], now: float) -> None:
        """The input partitions assigned after a rebalance: the newly assigned ones count their
        quiet from now, the revoked ones are forgotten."""
        owned = {where for where in owned if where[0] in self.families}
        for where in list(self.heard):
            if where not in owned:
                del self.heard[where]
                self.read.pop(where, None)
        for where in owned:
            self.heard.setdefault(where, now)

    def report(
        self,
        owned: Iterable[Where],
        progress: Mapping[str, float],
        end: Callable[[Where], int | None],
        committed: Mapping[Where, int],
        now: float,
    ) -> dict[str, list[Any]]:
        """The marker's body for the input partitions `owned`: each one's source name ->
        [progress or None, idle]. `end` is the partition's high watermark as the consumer last
        fetched it (None: not known yet), `committed` the group's committed offsets."""
        body: dict[str, list[Any]] = {}
        for where in sorted(owned):
            family = self.families.get(where[0])
            if family is None:
                continue
            source = f"{family}/{where[1]}"
            heard = self.heard.setdefault(where, now)
            idle = False
            if now - heard >= self.idle_after:
                highwater = end(where)
                done = max(self.read.get(where, 0), committed.get(where) or 0)
                idle = highwater is not None and done >= highwater
            body[source] = [progress.get(source), idle]
        return body


def marker_headers(body: Mapping[str, list[Any]]) -> tuple[tuple[str, bytes], ...]:
    return ((MARKER_HEADER, orjson.dumps(body)),)
