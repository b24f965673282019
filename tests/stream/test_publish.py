"""`BatchPublisher` with aiokafka's own record batches (no broker): what each partition gets."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch

from claimstream.stream.publish import BatchPublisher

TOPIC = "claimstream.repartition.doctor"


class Producer:
    """Builds real aiokafka batches; `send_batch` keeps what each partition was sent."""

    def __init__(self) -> None:
        self.sent: dict[int, list[Any]] = {}

    def _ensure_producer(self) -> Producer:
        return self

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(16384, 0)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> Any:
        records = DefaultRecordBatch(bytes(batch._build()))
        self.sent.setdefault(partition, []).extend(records)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def publisher() -> tuple[BatchPublisher, Producer]:
    producer = Producer()
    return BatchPublisher(SimpleNamespace(producer=producer), {TOPIC: 4}), producer


async def test_records_carry_their_headers_to_the_partition_asked_for() -> None:
    pub, producer = publisher()
    headers = (("cs-source", b"claims/3"), ("cs-progress", b"1700000000.0"))
    await pub.send_and_wait([(TOPIC, b"D1", b"{}", 2, headers)])
    (record,) = producer.sent[2]
    assert (record.key, record.value) == (b"D1", b"{}")
    assert list(record.headers) == list(headers)


async def test_a_marker_has_no_key_and_no_value_only_its_header() -> None:
    pub, producer = publisher()
    marker = (("cs-marker", b'{"claims/0": [1.0, false]}'),)
    await pub.send_and_wait([(TOPIC, None, None, p, marker) for p in range(4)])
    for p in range(4):
        (record,) = producer.sent[p]
        assert (record.key, record.value) == (None, None)
        assert list(record.headers) == list(marker)


async def test_records_without_headers_are_sent_as_before() -> None:
    pub, producer = publisher()
    await pub.send_and_wait([(TOPIC, b"D1", b"a", 1), (TOPIC, b"D1", b"b", 1)])
    assert [(r.value, list(r.headers)) for r in producer.sent[1]] == [(b"a", []), (b"b", [])]
