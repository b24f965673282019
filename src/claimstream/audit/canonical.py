"""The one encoding hashes are taken over: orjson with sorted keys, no whitespace.

Sorted keys make the bytes independent of the order a producer or a JSON round trip put the
fields in, and orjson writes each float in its shortest round-tripping form, so a record read
back from the topic or a file hashes to the same digest as when it was written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

GENESIS = "0" * 64
#: the record fields the hash covers: all of them but the hash itself
HASHED_OUT = "hash"


def canonical(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def digest(record: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the record's canonical encoding without its `hash` field."""
    content = {k: v for k, v in record.items() if k != HASHED_OUT}
    return hashlib.sha256(canonical(content)).hexdigest()
