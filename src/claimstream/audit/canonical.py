"""The bytes a record's hash (and MAC) are taken over.

Records of schema `audit.v2` (what the chain writes now) are hashed over their RFC 8785 (JCS)
encoding: sorted keys (by UTF-16 code units), no whitespace, numbers as ECMAScript prints them
(`8.0` is `8`), strings with the minimal escapes. An auditor in another language can rebuild
the same bytes with any JCS implementation (there are ones for Go, Java, JavaScript, .NET, Rust)
from the record as read back, whatever order a producer or a JSON round trip put the fields in.
The encoder is `rfc8785` (Trail of Bits, pure Python, checked here against the RFC's published
vectors in `tests/audit/test_canonical.py`); it costs ~35-50 µs for a typical record against
~1 µs for orjson, which the audit's few records a second can afford.

Records of schema `audit.v1` (trails written before JCS) were hashed over orjson's sorted-keys
encoding, which is not JCS (`8.0` stays `8.0`, keys sort by code point); `legacy_canonical`
keeps reading them.

What a record's hash covers: every field but `hash` and `mac` (`HASHED_OUT`). The MAC covers
the same bytes, so a record's `key_id` (inside them) cannot be swapped either.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson
import rfc8785

GENESIS = "0" * 64
#: the record fields the hash and the MAC do not cover: themselves
HASHED_OUT = frozenset(("hash", "mac"))
LEGACY_SCHEMA = "audit.v1"
SCHEMA = "audit.v2"
SCHEMAS = (LEGACY_SCHEMA, SCHEMA)


def jcs(obj: Any) -> bytes:
    """The RFC 8785 canonical encoding of `obj` (raises `ValueError` for NaN, infinities and
    integers beyond ±2^53, which JSON numbers cannot carry exactly)."""
    return rfc8785.dumps(obj)


def legacy_canonical(obj: Any) -> bytes:
    """orjson with sorted keys: what `audit.v1` records were hashed over."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def hashed_bytes(record: Mapping[str, Any]) -> bytes:
    """The bytes `hash` and `mac` are computed over, by the record's `schema`."""
    if record.get("schema") == LEGACY_SCHEMA:
        return legacy_canonical({k: v for k, v in record.items() if k != "hash"})
    return jcs({k: v for k, v in record.items() if k not in HASHED_OUT})


def digest(record: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the record's hashed bytes: what its `hash` field must be."""
    return hashlib.sha256(hashed_bytes(record)).hexdigest()
