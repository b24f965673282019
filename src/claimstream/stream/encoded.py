"""The memory store holding each state as its orjson bytes (`CLAIMSTREAM_COMPACT_STATE`).

faust's memory store keeps the Python object written: a patient's 1.25 KB of JSON state is
about 5.4 KB of dicts, lists, tuples, floats and strings, and with CPython's per-object
overhead the worker's RSS grew by 13-14 KB per active patient (docs/benchmarks.md, "State
memory"). Held as bytes, a state costs its JSON and a dict slot. Each read decodes it (a few
microseconds for a patient, once per key per batch: the processor keeps the batch's working
states), and a write stores the bytes `TableWriter` encodes for the changelog anyway, so the
hot path pays one decode per key and batch and nothing per event.

A read returns a new object, as the RocksDB store's does: a state changed in place is changed
only once it is written back, which every agent already does (`TableWriter`).

Bytes kept must be `exact`: orjson (3.12 on) returns its output in the buffer it grew while
encoding, about a power of two above the output (16 KB for a 1.2 KB patient state), and never
shrinks it; a state held as orjson returned it cost ~13 times its JSON (docs/benchmarks.md,
"State memory"). A changelog record recovered at start is kept as it arrived (the Kafka
client's bytes are allocated to their length).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

import orjson
from faust.stores.memory import Store

_loads = orjson.loads
_dumps = orjson.dumps


def exact(blob: bytes) -> bytes:
    """`blob` in a buffer of its own length: what to keep of `orjson.dumps`'s output (see the
    module doc). A copy (a memcpy of the state's bytes, next to the microseconds of encoding)."""
    return bytes(memoryview(blob))


class EncodedStates(MutableMapping[Any, Any]):
    """A mapping of keys to states held as orjson bytes: bytes set are taken as already
    encoded and kept as they are (what `TableWriter` hands over, `exact`), anything else is
    encoded; None stays None (faust marks a deleted key that way while it recovers a
    changelog)."""

    __slots__ = ("raw",)

    def __init__(self) -> None:
        self.raw: dict[Any, bytes | None] = {}

    def __getitem__(self, key: Any) -> Any:
        blob = self.raw[key]
        return None if blob is None else _loads(blob)

    def get(self, key: Any, default: Any = None) -> Any:
        blob = self.raw.get(key)
        if blob is None:
            return default if key not in self.raw else None
        return _loads(blob)

    def __setitem__(self, key: Any, value: Any) -> None:
        self.raw[key] = value if value is None or type(value) is bytes else exact(_dumps(value))

    def __delitem__(self, key: Any) -> None:
        del self.raw[key]

    def __contains__(self, key: object) -> bool:
        return key in self.raw

    def __iter__(self) -> Iterator[Any]:
        return iter(self.raw)

    def __len__(self) -> int:
        return len(self.raw)

    def clear(self) -> None:
        self.raw.clear()


class EncodedStore(Store):  # type: ignore[type-arg]  # faust's store: untyped
    """faust's memory store over `EncodedStates`; a changelog record it recovers is kept as
    the bytes it arrived as (faust has decoded it once already; it is not encoded again)."""

    def __post_init__(self) -> None:
        self.data: EncodedStates = EncodedStates()
        self._key_partition: dict[Any, int] = {}

    def _create_batch_iterator(
        self,
        mark_as_delete: Callable[[Any], None],
        to_key: Callable[[Any], Any],
        to_value: Callable[[Any], Any],
        batch: Iterable[Any],
    ) -> Iterable[tuple[Any, Any]]:
        for event in batch:
            key = to_key(event.key)
            raw = event.message.value
            if raw is None:
                mark_as_delete(key)
            self._key_partition[key] = event.message.partition
            yield key, raw if type(raw) is bytes else to_value(event.value)


def holds_bytes(table: Any) -> bool:
    """Whether `table`'s store is an `EncodedStore` (its writer may hand over bytes)."""
    return isinstance(getattr(table.data, "data", None), EncodedStates)
