"""Producing many records at once: one aiokafka batch per topic-partition instead of a send each.

`producer.send()` costs tens of microseconds of Python per record (faust's wrapper, aiokafka's
partitioner and accumulator); re-keyed events and changelog writes are produced by the tens of
thousands per second, so they go through `create_batch`/`send_batch`: records are grouped by
partition (murmur2 of the key, as Kafka's Java client and aiokafka partition, or round robin
for key-less records) and appended to batches, each sent with one call. The returned futures
resolve when the broker acknowledged the batch; faust flushes the producer before committing
offsets, so changelog batches need not be awaited on the hot path.

A record may carry Kafka headers as a fifth element (`Out` with headers): the patient agent's
forwards carry their event's source partition and its progress, the watermark markers only
headers (docs/time.md, "What the stream must carry").

For `single_record_topics` the last record of each partition goes in a batch of its own: Tansu
reports a partition's end offset (`ListOffsets(latest)`, which faust's changelog recovery reads
up to) as its last batch's base offset + 1, which is right only when that batch holds one record.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any

from claimstream.kafka.actions import partition_of

#: Kafka record headers: (name, value) pairs
Headers = tuple[tuple[str, bytes], ...]
#: topic, key, value (None: tombstone), partition (None: by key)
Out = tuple[str, bytes | None, bytes | None, int | None]
#: the same with headers
OutWithHeaders = tuple[str, bytes | None, bytes | None, int | None, Headers]
_Item = tuple[bytes | None, bytes | None, Headers]
#: shared by every record without headers (aiokafka only reads it)
_NO_HEADERS: list[tuple[str, bytes]] = []


class BatchPublisher:
    def __init__(
        self,
        app: Any,
        partitions: Mapping[str, int],
        single_record_topics: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.partitions = dict(partitions)
        self.single_record_topics = single_record_topics
        self._round_robin = itertools.count()

    def _partition(self, topic: str, key: bytes | None, partition: int | None) -> int:
        if partition is not None:
            return partition
        count = self.partitions[topic]
        if key is None:
            return next(self._round_robin) % count
        return partition_of(key, count)

    async def send(self, records: Iterable[Out | OutWithHeaders]) -> list[Awaitable[Any]]:
        """Hand records to the producer in batches; return the batches' delivery futures."""
        producer = self.app.producer._ensure_producer()
        groups: dict[tuple[str, int], list[_Item]] = {}
        for record in records:
            topic, key, value, partition = record[0], record[1], record[2], record[3]
            headers: Headers = record[4] if len(record) > 4 else ()
            where = (topic, self._partition(topic, key, partition))
            groups.setdefault(where, []).append((key, value, headers))
        # aiokafka queues one batch per partition: `send_batch` of a partition's second batch
        # waits until the sender took the first (a linger and a loop turn). So every partition's
        # first batch goes before any partition's one-record tail: one such wait per call, not
        # one per partition.
        tails: list[tuple[str, int, list[_Item]]] = []
        futures: list[Awaitable[Any]] = []
        for (topic, partition), items in groups.items():
            if topic in self.single_record_topics and len(items) > 1:
                tails.append((topic, partition, items[-1:]))  # the partition's last batch
                items = items[:-1]
            futures.extend(await self._send_chunk(producer, topic, partition, items))
        for topic, partition, tail in tails:
            futures.extend(await self._send_chunk(producer, topic, partition, tail))
        return futures

    @staticmethod
    async def _send_chunk(
        producer: Any, topic: str, partition: int, items: list[_Item]
    ) -> list[Awaitable[Any]]:
        futures: list[Awaitable[Any]] = []
        batch = producer.create_batch()
        for key, value, headers in items:
            listed = list(headers) if headers else _NO_HEADERS  # aiokafka takes a list only
            if batch.append(key=key, value=value, timestamp=None, headers=listed) is None:
                batch.close()
                futures.append(await producer.send_batch(batch, topic, partition=partition))
                batch = producer.create_batch()
                batch.append(key=key, value=value, timestamp=None, headers=listed)
        batch.close()
        futures.append(await producer.send_batch(batch, topic, partition=partition))
        return futures

    async def send_and_wait(self, records: Iterable[Out | OutWithHeaders]) -> None:
        await asyncio.gather(*await self.send(records))

    async def publish(self, topic: str, key: bytes | None, value: bytes) -> Awaitable[Any]:
        """One record (the `Publisher` protocol of the Kafka sink)."""
        futures = await self.send([(topic, key, value, None)])
        return asyncio.gather(*futures)
