"""`partition_of`: the partition Kafka's Java client gives a key, which is where the worker
expects a patient's events (`claimstream produce` publishes there)."""

from __future__ import annotations

import random
from datetime import timedelta, timezone

import pytest
from aiokafka.partitioner import DefaultPartitioner, murmur2

from claimstream.kafka.actions import partition_of

M32 = 0xFFFFFFFF

#: Kafka's own vectors: clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java,
#: testMurmur2 (signed Java ints)
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def java_murmur2(data: bytes) -> int:
    """Kafka's `Utils.murmur2`, line by line with Java's 32-bit arithmetic: an oracle that
    shares no code with aiokafka's."""
    length = len(data)
    m, r = 0x5BD1E995, 24
    h = (0x9747B28C ^ length) & M32
    for i in range(0, length - length % 4, 4):
        k = data[i] | data[i + 1] << 8 | data[i + 2] << 16 | data[i + 3] << 24
        k = (k * m) & M32
        k ^= k >> r
        k = (k * m) & M32
        h = (h * m) & M32
        h ^= k
    tail = length & ~3
    rest = length % 4
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & M32
    h ^= h >> 13
    h = (h * m) & M32
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def java_partition(key: bytes, partitions: int) -> int:
    """`BuiltInPartitioner.partitionForKey`: `toPositive(murmur2(key)) % numPartitions`."""
    return (java_murmur2(key) & 0x7FFFFFFF) % partitions


@pytest.mark.parametrize(("key", "expected"), JAVA_MURMUR2.items())
def test_the_oracle_reproduces_kafkas_vectors(key: bytes, expected: int) -> None:
    assert java_murmur2(key) == expected


@pytest.mark.parametrize(("key", "expected"), JAVA_MURMUR2.items())
def test_aiokafkas_murmur2_is_kafkas(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected & M32  # aiokafka returns the same bits, unsigned


@pytest.mark.parametrize("partitions", [1, 2, 3, 4, 8, 12, 50, 100])
@pytest.mark.parametrize("key", JAVA_MURMUR2)
def test_the_partition_of_kafkas_vectors(key: bytes, partitions: int) -> None:
    assert partition_of(key, partitions) == (JAVA_MURMUR2[key] & 0x7FFFFFFF) % partitions


def test_a_known_partition() -> None:
    # toPositive(-790332482) = 1357151166; 1357151166 % 10 = 6, % 50 = 16
    assert (partition_of(b"foobar", 10), partition_of(b"foobar", 50)) == (6, 16)


def random_keys(count: int, seed: int = 11) -> list[bytes]:
    rng = random.Random(seed)
    keys = [b"", "患者-0001".encode()]
    for _ in range(count):
        if rng.random() < 0.5:  # patient-id-like text, UTF-8, any length 0..4 mod 4
            text = "P" + "".join(
                rng.choice("0123456789ABCDEF-病人") for _ in range(rng.randrange(40))
            )
            keys.append(text.encode())
        else:
            keys.append(rng.randbytes(rng.randrange(64)))
    return keys


@pytest.mark.parametrize("partitions", [1, 3, 8, 12, 100])
def test_random_keys_land_where_javas_partitioner_puts_them(partitions: int) -> None:
    wrong = [
        k for k in random_keys(3000) if partition_of(k, partitions) != java_partition(k, partitions)
    ]
    assert wrong == []


@pytest.mark.parametrize("partitions", [1, 3, 8, 12, 100])
def test_random_keys_land_where_aiokafkas_default_partitioner_puts_them(partitions: int) -> None:
    every = list(range(partitions))
    keys = random_keys(3000, seed=12)
    assert [partition_of(k, partitions) for k in keys] == [
        DefaultPartitioner()(k, every, every) for k in keys
    ]


# --- a check's feedback (`feedback_from_input`) ----------------------------------------------

FEEDBACK_RULES = ("repeat_dispensing", "excess_quantity")
UTC8 = timezone(timedelta(hours=8))


def test_feedback_from_input_builds_one_handling_per_violation() -> None:
    from claimstream.kafka.actions import feedback_from_input

    action = feedback_from_input(
        "HIS-1",
        [
            {"rule": "repeat_dispensing", "alert_id": "alr-1", "handling": "continued",
             "reason": " supply lost "},
            {"rule": "excess_quantity", "handling": "cancelled"},
        ],
        "dr.zhang",
        at="2026-12-04T10:00:00+08:00",
        tz=UTC8,
        rules=FEEDBACK_RULES,
    )  # fmt: skip
    assert action.check_id == "HIS-1" and action.by == "dr.zhang"
    assert [(h.rule, h.alert_id, h.handling, h.reason) for h in action.handlings] == [
        ("repeat_dispensing", "alr-1", "continued", "supply lost"),
        ("excess_quantity", None, "cancelled", ""),
    ]


@pytest.mark.parametrize(
    ("check_id", "violations", "words"),
    [
        ("a b", [{"rule": "excess_quantity", "handling": "modified"}], "check_id contains"),
        ("HIS-1", [], "non-empty list"),
        ("HIS-1", [{"rule": "excess_quantity", "handling": "modified"}] * 101, "at most 100"),
        ("HIS-1", ["excess_quantity"], "must be an object"),
        ("HIS-1", [{"rule": "other", "handling": "modified"}], "must be a rule name"),
        ("HIS-1", [{"rule": "excess_quantity", "handling": "overridden"}], "handling must be"),
        ("HIS-1", [{"rule": "excess_quantity", "handling": "continued"}], "reason is required"),
        ("HIS-1", [{"rule": "excess_quantity", "handling": "modified", "alert_id": "a:b"}],
         "alert_id"),
    ],
)  # fmt: skip
def test_feedback_that_cannot_be_used_is_refused_before_publishing(
    check_id: str, violations: object, words: str
) -> None:
    from claimstream.kafka.actions import feedback_from_input

    with pytest.raises(ValueError, match=words):
        feedback_from_input(check_id, violations, "dr.zhang", tz=UTC8, rules=FEEDBACK_RULES)


def test_a_feedback_record_is_keyed_by_its_check_and_matches_the_action_schema() -> None:
    import json
    from pathlib import Path

    import jsonschema
    import orjson

    from claimstream.kafka.actions import encode_action, feedback_from_input
    from claimstream.sanctions.codec import action_from_dict
    from claimstream.sanctions.signatures import ActionSigner

    action = feedback_from_input(
        "HIS-1",
        [{"rule": "excess_quantity", "alert_id": "alr-9", "handling": "modified"}],
        "dr.zhang",
        tz=UTC8,
        rules=FEEDBACK_RULES,
    )
    key, value = encode_action(action, ActionSigner.generate())
    record = orjson.loads(value)
    schema = json.loads((Path(__file__).parents[2] / "topics/schemas/action.v1.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(record)
    assert key == b"HIS-1"
    assert action_from_dict(record) == action
    assert not jsonschema.Draft202012Validator(schema).is_valid({**record, "violations": []})
