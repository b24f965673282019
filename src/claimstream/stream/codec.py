"""faust glue that is easy to get subtly wrong: the state codec and the table's partition.

* `StateCodec` stores a key's state (a JSON-shaped dict) as orjson bytes in the changelog;
  faust's own json codec goes through its model registry on every value and is slower.
* `writing_to(partition)` makes a table write land in that partition's changelog (and RocksDB
  column). faust takes the partition of a table write from the *current event*; inside a
  `take_events` batch that is whichever event came last, and in a sweep there is none, so we
  set it explicitly for every key we write.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from faust.serializers.codecs import Codec
from faust.streams import _current_event


class StateCodec(Codec):
    def _dumps(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def _loads(self, s: bytes) -> Any:
        return orjson.loads(s)


class _Message:
    __slots__ = ("offset", "partition", "topic")

    def __init__(self, topic: str, partition: int) -> None:
        self.topic = topic
        self.partition = partition
        self.offset = -1


class _At:
    """Stands in for faust's current event: only `.message.topic/.partition` are read."""

    __slots__ = ("__weakref__", "message")

    def __init__(self, topic: str, partition: int) -> None:
        self.message = _Message(topic, partition)


class PartitionPointer:
    """Reusable stand-ins for every partition of one source topic."""

    def __init__(self, source_topic: str) -> None:
        self.source_topic = source_topic
        self._stubs: dict[int, _At] = {}

    @contextmanager
    def writing_to(self, partition: int) -> Iterator[None]:
        stub = self._stubs.get(partition)
        if stub is None:
            stub = self._stubs[partition] = _At(self.source_topic, partition)
        token = _current_event.set(weakref.ref(stub))  # type: ignore[arg-type]  # duck-typed
        try:
            yield
        finally:
            _current_event.reset(token)
