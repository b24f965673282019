"""The hash input: RFC 8785 (JCS) for audit.v2 records, checked against the RFC's published
vectors; orjson's sorted keys for legacy audit.v1 records."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from claimstream.audit.canonical import digest, hashed_bytes, jcs, legacy_canonical
from tests.audit.support import legacy_trail, trail

VECTORS = Path(__file__).parent / "jcs"
NAMES = sorted(p.stem for p in (VECTORS / "input").glob("*.json"))

# RFC 8785 Appendix B: IEEE 754 double (hex, big-endian) -> its JSON number
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def test_the_published_vectors_are_all_there() -> None:
    assert NAMES == ["arrays", "french", "structures", "unicode", "values", "weird"]


@pytest.mark.parametrize("name", NAMES)
def test_each_published_vector_encodes_to_its_expected_bytes(name: str) -> None:
    value = json.loads((VECTORS / "input" / f"{name}.json").read_bytes())
    assert jcs(value) == (VECTORS / "output" / f"{name}.json").read_bytes()


@pytest.mark.parametrize(("ieee", "expected"), APPENDIX_B)
def test_each_number_of_appendix_b_is_written_as_the_rfc_says(ieee: str, expected: str) -> None:
    (number,) = struct.unpack(">d", bytes.fromhex(ieee))
    assert jcs(number) == expected.encode()


@pytest.mark.parametrize("ieee", ["7fffffffffffffff", "7ff0000000000000"])
def test_nan_and_infinity_are_refused(ieee: str) -> None:
    (number,) = struct.unpack(">d", bytes.fromhex(ieee))
    with pytest.raises(ValueError):
        jcs(number)


def test_the_hash_of_a_current_record_is_over_its_jcs_encoding() -> None:
    (record, *_) = trail()
    content = {k: v for k, v in record.items() if k not in ("hash", "mac")}
    assert hashed_bytes(record) == jcs(content)
    assert b'"total_quantity":8}' in hashed_bytes(record)  # 8.0 written as ECMAScript does


def test_a_legacy_record_is_hashed_over_orjson_sorted_keys() -> None:
    (record, *_) = legacy_trail()
    content = {k: v for k, v in record.items() if k != "hash"}
    assert hashed_bytes(record) == legacy_canonical(content)
    assert digest(record) == record["hash"]
    assert legacy_canonical(content) != jcs(content)  # why v1 and v2 cannot share a hash
