"""The premise of `CLAIMSTREAM_BROKER_FLAVOR=tansu`: when a partition's last batch holds one
record, Tansu reports the true end offset, so faust's changelog recovery reads every record."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from claimstream.devtools.localbroker import LocalBroker
from claimstream.stream.publish import BatchPublisher

pytestmark = pytest.mark.integration
CHANGELOG = "claimstream-state-patient-changelog"


class _App:
    """The one thing BatchPublisher needs of a faust app: its aiokafka producer."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = self
        self._producer = producer

    def _ensure_producer(self) -> AIOKafkaProducer:
        return self._producer


async def test_a_flush_ending_in_a_one_record_batch_reports_the_true_end_offset(
    local_broker: LocalBroker,
) -> None:
    tp = TopicPartition(CHANGELOG, 0)
    producer = AIOKafkaProducer(bootstrap_servers=local_broker.bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=local_broker.bootstrap)
    await producer.start()
    await consumer.start()
    try:
        publisher = BatchPublisher(
            _App(producer), {CHANGELOG: 8}, single_record_topics=frozenset({CHANGELOG})
        )
        before = (await consumer.end_offsets([tp]))[tp]
        records = [(CHANGELOG, f"k{i}".encode(), b"{}", 0) for i in range(10)]
        await publisher.send_and_wait(records)
        assert (await consumer.end_offsets([tp]))[tp] == before + 10
    finally:
        await producer.stop()
        await consumer.stop()
