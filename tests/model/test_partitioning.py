"""Kafka's default partitioner in pure Python agrees with Kafka's Java client and aiokafka."""

from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from claimstream.model.partitioning import murmur2, partition_for

#: org.apache.kafka.common.utils.UtilsTest.testMurmur2: input -> Java's signed int
JAVA_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


@pytest.mark.parametrize(("data", "signed"), JAVA_VECTORS)
def test_murmur2_gives_the_java_clients_hash(data: bytes, signed: int) -> None:
    assert murmur2(data) == signed & 0xFFFFFFFF


def test_murmur2_agrees_with_aiokafka_on_random_keys() -> None:
    rng = random.Random(11)
    for _ in range(3_000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
        assert murmur2(data) == aiokafka_murmur2(data) & 0xFFFFFFFF


def test_a_key_lands_where_kafkas_default_partitioner_puts_it() -> None:
    for key in ("P000001", "P004208", "病人", ""):
        expected = (aiokafka_murmur2(key.encode()) & 0x7FFFFFFF) % 8
        assert partition_for(key, 8) == expected
