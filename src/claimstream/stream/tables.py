"""The two faust objects every agent is built from: a state table and a raw-bytes topic.

Each agent of the worker (detection per key kind, sanctions, audit) keeps its state in a plain,
non-windowed table whose changelog topic is declared in topics.toml (compacted, the table's
co-partition group's partition count), and reads topics as raw bytes (decoding is the pure
core's job, so a bad record becomes a dead letter instead of a faust deserialisation error).

The store is the app's (`CLAIMSTREAM_STORE`): `memory://` keeps each state as the Python object
written, `rocksdb://` (the `rocksdb` extra) as its orjson bytes in one RocksDB database per table
partition, under `<CLAIMSTREAM_DATA_DIR>/v1/tables/<table>-<partition>.db` (one data
directory per worker process: RocksDB locks a database to one process). On RocksDB a state is
a copy: every read decodes, so a state changed in place is changed only once it is written back.

faust's RocksDB store reads a key from the database of the *current event's* partition when
there is one (faust assumes a table keyed like the stream being read); ours are read for keys of
many partitions in one batch, and wherever faust's stream iteration has set a current event
(`CLAIMSTREAM_BATCH_READER=take`, any agent iterating a stream) it is whichever came last, so
a state of another partition would read as missing. `PartitionFreeStore` reads every key
from its own partition's database, whatever the current event (writes keep going to the
partition `PartitionPointer.writing_to` names).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

import orjson

from claimstream.kafka.topology import Topology
from claimstream.stream.codec import PartitionPointer, StateCodec
from claimstream.stream.encoded import EncodedStore, exact, holds_bytes

if TYPE_CHECKING:
    from claimstream.stream.publish import BatchPublisher, Out


#: RocksDB's memory per database (one per table partition, ~10 tables x the partitions a worker
#: owns or stands by for). faust's defaults are for a few big tables: 3 memtables of 64 MB and a
#: 2 GB block cache *each*; a memtable keeps every version of a key written since its last
#: flush, and our states are rewritten on every batch that touches them, so with those
#: defaults a worker's RSS grew with the writes, not the population (21 KB per active patient
#: against the memory store's 14 KB, `python -m claimstream.devtools.state_memory`). Small
#: memtables flush early (RocksDB keeps the newest version only) and bound what each holds.
ROCKSDB_OPTIONS: dict[str, int] = {
    "write_buffer_size": 4 * 1024 * 1024,
    "max_write_buffer_number": 2,
    "block_cache_size": 8 * 1024 * 1024,
}


def state_table(
    app: Any, topology: Topology, name: str, *, encoded: bool = False
) -> tuple[Any, str, int]:
    """The table `name` with raw UTF-8 keys and orjson values, its changelog topic's name and
    its partition count (from the changelog's declaration in topics.toml). `encoded`: on the
    memory store, the states are held as their orjson bytes (`stream.encoded`)."""
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
    # our stores are built here, before anything reads `table.data`, with the arguments
    # faust's `Collection._new_store_by_url` would pass
    scheme = str(app.conf.store).partition(":")[0]
    if encoded and scheme == "memory":
        table._data = _store(EncodedStore, app, table)
    if scheme == "rocksdb":  # the store pops from its options
        table._data = _store(partition_free_store(), app, table, options=dict(ROCKSDB_OPTIONS))
    return table, spec.name, spec.partitions


def _store(kind: type[Any], app: Any, table: Any, **extra: Any) -> Any:
    """A store of `kind` for `table`, as faust would build one from the app's store URL."""
    return kind(
        app.conf.store,
        app,
        table,
        table_name=table.name,
        key_type=table.key_type,
        key_serializer=table.key_serializer,
        value_serializer=table.value_serializer,
        value_type=table.value_type,
        loop=table.loop,
        **extra,
    )


@cache
def partition_free_store() -> type[Any]:
    """faust's RocksDB store, reading each key from the database of its own partition.

    Imported on first use: faust's RocksDB module is there without the `rocksdb` extra, but
    opening a database needs it."""
    from faust.stores.rocksdb import Store

    class PartitionFreeStore(Store):
        """Reads ignore the current event: the key's partition comes from faust's key index
        (the partition it was last read from or written to) or, failing that, from a look-up
        in each open database (a bloom filter first, so a miss costs no disk read)."""

        def _get(self, key: bytes) -> bytes | None:
            found = self._get_bucket_for_key(key)
            return None if found is None else found.value

        def _contains(self, key: bytes) -> bool:
            return self._get(key) is not None

    return PartitionFreeStore


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


class TableWriter:
    """Writes a batch's changed keys to a table once each: the local store, then one changelog
    batch per partition.

    Equivalent to `table[key] = state` (and `del table[key]`), which faust implements as a
    store write plus one changelog `send_soon` per key; batching the changelog records per
    partition is what keeps one write per key per batch cheap. The delivery futures are checked
    on later writes (faust flushes the producer before any offset commit), and a failed one
    raises, so the agent stops before it acks another batch and the uncommitted input is
    processed again after a restart.

    On a store that holds bytes (`stream.encoded`), `read` hands back a state written by the
    last `write(..., remember=True)` as the object it was encoded from, as long as the store
    still holds the very bytes made of it (nothing wrote, deleted or recovered the key since),
    instead of decoding them again: a key busy in consecutive batches (a doctor, an
    institution) is decoded once, not once per batch. Each such state is handed out once (the
    caller changes it and writes it back, or it is read from the store next time).
    """

    def __init__(
        self, table: Any, changelog: str, pointer: PartitionPointer | str, publisher: BatchPublisher
    ) -> None:
        self.table = table
        self.changelog = changelog
        #: the source topic whose partition numbers the store is told it is writing to
        self.pointer = PartitionPointer(pointer) if isinstance(pointer, str) else pointer
        self.publisher = publisher
        self._pending: list[Any] = []
        #: key -> (the bytes stored, the state they were made of), of the last remembering write
        self._recent: dict[str, tuple[bytes, Any]] = {}

    def read(self, key: str) -> Any:
        """The state of `key` (None: none), as `table.data.get`, decoded only when the last
        remembering write did not leave it (see the class doc)."""
        recent = self._recent.pop(key, None)
        store = self.table.data
        if recent is not None and store.data.raw.get(key) is recent[0]:  # only filled on bytes
            return recent[1]
        return store.get(key)

    async def write(
        self,
        writes: Mapping[str, tuple[Any, int]],
        deletes: Mapping[str, int] | None = None,
        *,
        remember: bool = False,
    ) -> list[Awaitable[Any]]:
        """Store `writes` (key -> (value, partition)) and delete `deletes` (key -> partition).

        Returns the delivery futures of this call's changelog records, for a caller whose next
        write must not reach the broker before these (`pending-<kind>`'s deletes).
        `remember`: `read` may hand these states back (they replace what it had); the
        caller must not change them otherwise."""
        by_partition: dict[int, list[tuple[str, Any]]] = {}
        for key, (value, partition) in writes.items():
            by_partition.setdefault(partition, []).append((key, value))
        for key, partition in (deletes or {}).items():
            by_partition.setdefault(partition, []).append((key, None))
        if not by_partition:
            return []
        store = self.table.data
        as_bytes = holds_bytes(self.table)  # the store keeps the changelog's bytes themselves
        recent: dict[str, tuple[bytes, Any]] | None = {} if remember and as_bytes else None
        out: list[Out] = []
        for partition, items in by_partition.items():
            with self.pointer.writing_to(partition):
                for key, value in items:
                    if value is not None:
                        # right-sized at once: orjson's buffer is ~13 x the JSON, and a
                        # batch's records wait for the producer together (`encoded.exact`)
                        blob = exact(orjson.dumps(value))
                        store[key] = blob if as_bytes else value
                        if recent is not None:
                            recent[key] = (blob, value)
                        out.append((self.changelog, key.encode(), blob, partition))
                    elif key in store:
                        del store[key]
                        out.append((self.changelog, key.encode(), None, partition))
        if recent is not None:
            self._recent = recent
        self._check_delivered()
        futures = await self.publisher.send(out)
        self._pending.extend(futures)
        return futures

    def _check_delivered(self) -> None:
        still: list[Any] = []
        for future in self._pending:
            if not future.done():
                still.append(future)
            elif future.exception() is not None:
                raise RuntimeError(f"a write to {self.changelog} failed") from future.exception()
        self._pending = still
