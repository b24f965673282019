"""Which table store (`CLAIMSTREAM_STORE`) the workers the integration tests start use.

Every worker a test starts through `tests.integration.stream_support.WorkerProcess` gets the
current store and a data directory of its own (a RocksDB database is locked to one process),
unless the test sets `CLAIMSTREAM_STORE` / `CLAIMSTREAM_DATA_DIR` itself. The current store is
`CLAIMSTREAM_TEST_STORE` (`memory://` when unset), so the whole suite runs on RocksDB with

    CLAIMSTREAM_TEST_STORE=rocksdb:// .venv/bin/pytest tests/integration

and a test marked `both_stores` runs once on each store whatever the variable says
(tests/conftest.py parametrizes its `table_store` fixture, which sets the current store for the
test's duration; workers a module-scoped fixture starts keep the variable's store).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.services import unavailable

#: the variable naming the store of the suite's workers
VARIABLE = "CLAIMSTREAM_TEST_STORE"
MEMORY = "memory://"
ROCKSDB = "rocksdb://"
STORES = (MEMORY, ROCKSDB)
#: test ids of the `both_stores` variants
IDS = {MEMORY: "memory", ROCKSDB: "rocksdb"}

_current: list[str] = []


def from_environment() -> str:
    """The store `CLAIMSTREAM_TEST_STORE` names (`memory` and `memory://` alike); ValueError on
    another value."""
    value = os.environ.get(VARIABLE, "").strip() or MEMORY
    store = value if "://" in value else f"{value}://"
    if store not in STORES:
        raise ValueError(f"{VARIABLE}={value!r}: expected one of {', '.join(STORES)}")
    return store


def current() -> str:
    """The store of the workers started now: the `both_stores` variant's, else the variable's."""
    return _current[-1] if _current else from_environment()


@contextmanager
def using(store: str) -> Iterator[str]:
    """Workers started inside the block use `store`."""
    _current.append(store)
    try:
        yield store
    finally:
        _current.pop()


def require(store: str) -> None:
    """Skip (fail under CI) when `store` needs what is not installed: the `rocksdb` extra."""
    if store.startswith("rocksdb:") and importlib.util.find_spec("rocksdict") is None:
        unavailable("rocksdb:// needs the rocksdb extra (rocksdict; the dev extra installs it)")
