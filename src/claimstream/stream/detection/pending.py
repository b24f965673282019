"""`pending-<kind>`: the events an aligned (doctor, institution) processor holds, in a table.

A doctor's or institution's event waits in memory (`align.PendingBuffer`) until the input
partitions' watermark has passed it, which can be long after its record was consumed and its
offset committed. So that a restart loses none, every event that begins to wait is written to
the changelog-backed table `pending-<kind>`, and deleted once released (docs/time.md §7 item 4):

* key: `<key>\\x1f<event time>\\x1f<event id>` (ids never contain U+001F; the time is `repr` of
  the POSIX seconds, which reads back exactly);
* value: the record as consumed: its bytes (the event's JSON text), topic, partition, offset,
  arrival time and `cs-source` header;
* partition: the record's own (the repartition topic's partition owns the key), so the table's
  partition p is recovered by whoever is assigned partition p of the repartition topic.

Order, per batch: new waiting events are written with the batch's key states; released ones are
deleted only once the key states of the batch are on the broker. A crash in between then
re-releases an event whose key has already seen it (its dedup makes it a duplicate); the other
order could lose it.

After every rebalance (`entries`), the entries of the assigned partitions are decoded back into
`Held`s, as they were when the event began to wait; those at or before their key's last
released event (`split`) were released already and are deleted instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from claimstream.detection.align import Held
from claimstream.detection.decode import decode_event
from claimstream.detection.processor import SOURCE_HEADER, BatchResult
from claimstream.model.events import Event
from claimstream.model.records import Record
from claimstream.rules.base import State

log = logging.getLogger(__name__)

SEPARATOR = "\x1f"


def entry_key(held: Held) -> str:
    return f"{held.key}{SEPARATOR}{held.ts!r}{SEPARATOR}{held.event_id}"


def entry_value(held: Held) -> dict[str, Any]:
    record: Record = held.tag
    source = b""
    for name, value in record.headers:
        if name == SOURCE_HEADER:
            source = value
    return {
        "v": (record.value or b"").decode(),
        "t": record.topic,
        "p": record.partition,
        "o": record.offset,
        "a": record.arrived_at,
        "s": source.decode(errors="replace"),
    }


def changes(result: BatchResult) -> tuple[dict[str, tuple[Any, int]], dict[str, int]]:
    """What a batch changes in the table: (entries to write, entries to delete).

    An event held and released within the same batch is neither: it never needs to survive.
    """
    released = {entry_key(h): h.home for h in result.released}
    writes: dict[str, tuple[Any, int]] = {}
    for held in result.held:
        key = entry_key(held)
        if released.pop(key, None) is None:
            writes[key] = (entry_value(held), held.home)
    return writes, released


def held_of(key: str, value: Mapping[str, Any]) -> Held | None:
    """The `Held` an entry stands for (None: not one this version can read; logged)."""
    try:
        owner, _, _ = key.rsplit(SEPARATOR, 2)
        raw = str(value["v"]).encode()
        event = decode_event(raw)
        if not isinstance(event, Event):
            raise ValueError(event.reason)
        partition = int(value["p"])
        headers: tuple[tuple[str, bytes], ...] = ()
        if value.get("s"):
            headers = ((SOURCE_HEADER, str(value["s"]).encode()),)
        record = Record(
            owner.encode(),
            raw,
            str(value["t"]),
            partition,
            int(value["o"]),
            float(value["a"]),
            headers,
        )
    except (KeyError, TypeError, ValueError, UnicodeError):
        log.warning("a waiting event in the pending table could not be read and was left there")
        return None
    return Held(event.ts, event.event_id, owner, event, record, home=partition)


def split(
    held: Iterable[Held], load: Callable[[str], State | None]
) -> tuple[list[Held], list[Held]]:
    """(still waiting, already released) among restored entries, by their key's stored state.

    A key releases its events in (time, id) order and records the last one as "rel" in its
    state, which is stored before the released entries are deleted; so an entry at or before
    its key's "rel" was released (a crash came between the two writes), and putting it back
    would apply it a second time once the key's dedup has forgotten its id (a backlog moves
    event time by days a second)."""
    waiting: list[Held] = []
    released: list[Held] = []
    for entry in held:
        state = load(entry.key)
        mark = state.get("rel") if state is not None else None
        if mark is not None and (entry.ts, entry.event_id) <= (mark[0], mark[1]):
            released.append(entry)
        else:
            waiting.append(entry)
    return waiting, released


def entries(items: Iterable[tuple[str, Any]], partitions: frozenset[int]) -> Iterator[Held]:
    """The waiting events of `partitions` among the table's `items` (key, value)."""
    for key, value in items:
        if not isinstance(value, Mapping) or value.get("p") not in partitions:
            continue
        held = held_of(key, value)
        if held is not None:
            yield held
