"""Kafka's default partitioner, in pure Python: which partition a record key lands on.

Producers key settlement events by `patient_id` and Kafka's Java client (and aiokafka) put a
keyed record on partition `(murmur2(key) & 0x7fffffff) % partitions`. `replay` computes the
same partitions from the same keys so that it judges event time per input partition exactly
as the worker does (see docs/time.md). Written here rather than imported from aiokafka because
the pure core imports no Kafka library; a test checks it against aiokafka's implementation.
"""

from __future__ import annotations

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 as Kafka's `Utils.murmur2` computes it, as an unsigned 32-bit number."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length - whole
    if rest >= 3:
        h ^= data[whole + 2] << 16
    if rest >= 2:
        h ^= data[whole + 1] << 8
    if rest >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_for(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner gives the UTF-8 `key` among `partitions`."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions
