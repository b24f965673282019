"""The in-process freeze registry: Redis semantics in a dict, for the demo and unit tests.

Same key scheme, same idempotency and precedence rules as `RedisRegistry` (both apply
`base.decide`, the commands ledger's rule), with expiry checked against the `now` the caller
passes, so tests drive time explicitly. It also plays the guard's part (`look`, `mark`,
`lock`, `unlock`, see `freezes.guard`) and can `restart` like a Redis server, keeping or
losing what it held, so the guard's tests need no server.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from claimstream.freezes.base import (
    DEFAULT_PREFIX,
    MARKER_TTL_SECONDS,
    Applied,
    Delete,
    Freeze,
    FreezeRegistry,
    Look,
    Store,
    Write,
    decide,
    freeze_key,
    is_active,
)
from claimstream.model.outputs import Command

_RUNS = itertools.count(1)


class MemoryRegistry(FreezeRegistry):
    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix
        #: key -> (value, expires at in epoch seconds or None)
        self.data: dict[str, tuple[bytes, float | None]] = {}
        self.markers: dict[str, float] = {}
        #: the "server process" (Redis's run_id), the sentinel's run_id, the rebuild lock
        self.run_id = f"memory-{next(_RUNS)}"
        self.sentinel: str | None = None
        self.lock_holder: str | None = None

    def restart(self, *, keep: bool) -> None:
        """What a Redis restart does: a new `run_id`; everything lost unless `keep`."""
        self.run_id = f"memory-{next(_RUNS)}"
        self.lock_holder = None
        if not keep:
            self.data.clear()
            self.markers.clear()
            self.sentinel = None

    async def look(self) -> Look:
        marked = self.sentinel is not None
        return Look(run_id=self.run_id, marked=marked, marked_on=self.sentinel)

    async def mark(self, run_id: str | None, at: float, token: str) -> bool:
        if self.lock_holder != token:
            return False
        self.sentinel = run_id or ""
        return True

    async def lock(self, token: str, ttl: float) -> bool:
        if self.lock_holder is not None:
            return False
        self.lock_holder = token
        return True

    async def unlock(self, token: str) -> None:
        if self.lock_holder == token:
            self.lock_holder = None

    def _get(self, key: str, now: float) -> bytes | None:
        item = self.data.get(key)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= now:
            del self.data[key]
            return None
        return value

    async def apply(self, commands: Iterable[Command], now: float) -> list[Applied]:
        return [self.apply_one(command, now) for command in commands]

    def apply_one(self, command: Command, now: float) -> Applied:
        marker = command.command_id
        seen = self.markers.get(marker)
        if seen is not None and seen > now:
            return "duplicate"
        self.markers[marker] = now + MARKER_TTL_SECONDS
        scope = command.scope
        key = freeze_key(self.prefix, scope.kind, scope.id, scope.drug_code)
        outcome, write = decide(self._get(key, now), command, now)
        self._write(key, write)
        return outcome

    async def stored(self) -> dict[str, bytes]:
        now = time.time()
        return {k: v for k in sorted(self.data) if (v := self._get(k, now)) is not None}

    async def swap(
        self,
        seen: Mapping[str, bytes | None],
        writes: Mapping[str, Write],
        markers: Iterable[str],
        now: float,
    ) -> bool:
        if any(self._get(key, now) != value for key, value in seen.items()):
            return False
        for key, write in writes.items():
            self._write(key, write)
        for command_id in markers:
            self.markers.setdefault(command_id, now + MARKER_TTL_SECONDS)
        return True

    def _write(self, key: str, write: Write) -> None:
        if isinstance(write, Delete):
            self.data.pop(key, None)
        elif isinstance(write, Store):
            expires = None if write.expires_ms is None else write.expires_ms / 1000
            self.data[key] = (write.value, expires)

    async def lookup(
        self, kind: str, id_: str, drug_code: str | None = None, *, now: float
    ) -> list[Freeze]:
        found: list[Freeze] = []
        for key in self.keys_for(kind, id_, drug_code):
            value = self._get(key, now)
            if value is not None:
                command: dict[str, Any] = orjson.loads(value)
                if is_active(command, now):
                    found.append(Freeze(key, command))
        return found

    async def active(self, now: float, limit: int = 1000) -> list[Freeze]:
        found: list[Freeze] = []
        for key in sorted(self.data):
            value = self._get(key, now)
            if value is None:
                continue
            command: dict[str, Any] = orjson.loads(value)
            if is_active(command, now):
                found.append(Freeze(key, command))
            if len(found) >= limit:
                break
        return found
