"""The Redis freeze registry: what a settlement system asks before paying (key scheme in `base`).

A batch of commands is applied in one optimistic transaction: WATCH the batch's markers and
scope keys, read them (one MGET), decide every command in order with `base.decide` (the
commands ledger's rule, in Python, so the in-process registry, the ledger and Redis share one
rule), then MULTI: set the `cmd:{command_id}` markers and SET / DEL the scope keys with their
expiry; EXEC. If another writer touched a watched key in between, EXEC fails and the batch is
decided again on the new values, so two workers racing on one scope can neither shorten a
freeze nor apply a command twice. Three round trips per batch of commands.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any, cast

import orjson

from claimstream.freezes.base import (
    DEFAULT_PREFIX,
    MARKER_TTL_SECONDS,
    Applied,
    Delete,
    Freeze,
    FreezeRegistry,
    Store,
    Write,
    decide,
    freeze_key,
    is_active,
    marker_key,
)
from claimstream.freezes.connection import RedisOptions, close, connect
from claimstream.model.outputs import Command

#: how often a batch is decided again after a concurrent write before giving up
MAX_ATTEMPTS = 50


class RegistryConflict(RuntimeError):
    """Another writer kept changing the watched keys; the batch was not applied."""


class RedisRegistry(FreezeRegistry):
    """Freeze registry on a Redis server (`redis://host:port/db`, `rediss://user@host:port/db`
    with TLS and the password and TLS files of `options`: `claimstream.freezes.connection`)."""

    def __init__(
        self, url: str, prefix: str = DEFAULT_PREFIX, options: RedisOptions | None = None
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.options = options
        self._client: Any = None

    async def start(self) -> None:
        client = connect(self.url, self.options)
        try:
            await client.ping()
        except BaseException:  # a refused login or handshake leaves a socket open: close it
            await close(client)
            raise
        self._client = client

    async def close(self) -> None:
        if self._client is not None:
            await close(self._client)
            self._client = None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("RedisRegistry used before start()")
        return self._client

    async def apply(self, commands: Iterable[Command], now: float) -> list[Applied]:
        from redis.exceptions import WatchError

        batch = list(commands)
        if not batch:
            return []
        markers = [marker_key(self.prefix, c.command_id) for c in batch]
        keys = [freeze_key(self.prefix, c.scope.kind, c.scope.id, c.scope.drug_code) for c in batch]
        watched = sorted(set(markers) | set(keys))
        marker_ttl = MARKER_TTL_SECONDS * 1000
        for attempt in range(MAX_ATTEMPTS):
            async with self.client.pipeline(transaction=True) as pipe:
                try:
                    await pipe.watch(*watched)
                    current: dict[str, bytes | None] = dict(
                        zip(watched, await pipe.mget(watched), strict=True)
                    )
                    outcomes: list[Applied] = []
                    writes: list[tuple[str, Write]] = []
                    applied: list[str] = []
                    for command, marker, key in zip(batch, markers, keys, strict=True):
                        if current[marker] is not None:
                            outcomes.append("duplicate")
                            continue
                        current[marker] = b"1"
                        applied.append(marker)
                        outcome, write = decide(current[key], command, now)
                        outcomes.append(outcome)
                        if isinstance(write, Delete):
                            current[key] = None
                            writes.append((key, write))
                        elif isinstance(write, Store):
                            current[key] = write.value
                            writes.append((key, write))
                    pipe.multi()
                    for marker in applied:
                        pipe.set(marker, b"1", px=marker_ttl)
                    for key, write in writes:
                        _queue(pipe, key, write)
                    await pipe.execute()
                    return outcomes
                except WatchError:
                    await asyncio.sleep(min(0.001 * 2**attempt, 0.1))
        raise RegistryConflict(f"commands not applied: keys changed {MAX_ATTEMPTS} times")

    async def lookup(
        self, kind: str, id_: str, drug_code: str | None = None, *, now: float
    ) -> list[Freeze]:
        keys = self.keys_for(kind, id_, drug_code)
        values = await self.client.mget(keys)
        return _active(zip(keys, values, strict=True), now)

    async def _freeze_keys(self, limit: int | None = None) -> list[str]:
        keys: list[str] = []
        async for key in self.client.scan_iter(match=f"{self.prefix}:freeze:*", count=1000):
            keys.append(key.decode() if isinstance(key, bytes) else str(key))
            if limit is not None and len(keys) >= limit:
                break
        keys.sort()
        return keys

    async def active(self, now: float, limit: int = 1000) -> list[Freeze]:
        keys = await self._freeze_keys(limit)
        if not keys:
            return []
        values = await self.client.mget(keys)
        return _active(zip(keys, values, strict=True), now)

    async def stored(self) -> dict[str, bytes]:
        keys = await self._freeze_keys()
        stored: dict[str, bytes] = {}
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            values = await self.client.mget(chunk)
            stored.update((k, v) for k, v in zip(chunk, values, strict=True) if v is not None)
        return stored

    async def swap(
        self,
        seen: Mapping[str, bytes | None],
        writes: Mapping[str, Write],
        markers: Iterable[str],
        now: float,
    ) -> bool:
        from redis.exceptions import WatchError

        watched = sorted(set(seen) | set(writes))
        marker_ttl = MARKER_TTL_SECONDS * 1000
        async with self.client.pipeline(transaction=True) as pipe:
            try:
                if watched:
                    await pipe.watch(*watched)
                    for start in range(0, len(watched), 1000):
                        chunk = [k for k in watched[start : start + 1000] if k in seen]
                        if chunk and list(await pipe.mget(chunk)) != [seen[k] for k in chunk]:
                            await pipe.unwatch()
                            return False
                pipe.multi()
                for key, write in writes.items():
                    _queue(pipe, key, write)
                for command_id in markers:
                    pipe.set(marker_key(self.prefix, command_id), b"1", px=marker_ttl, nx=True)
                await pipe.execute()
                return True
            except WatchError:
                return False


def _queue(pipe: Any, key: str, write: Write) -> None:
    if isinstance(write, Delete):
        pipe.delete(key)
    elif isinstance(write, Store):
        if write.expires_ms is None:
            pipe.set(key, write.value)
        else:
            pipe.set(key, write.value, pxat=write.expires_ms)


def _active(pairs: Iterable[tuple[str, bytes | None]], now: float) -> list[Freeze]:
    found: list[Freeze] = []
    for key, value in pairs:
        if value is None:
            continue
        try:
            command = cast(dict[str, Any], orjson.loads(value))
        except orjson.JSONDecodeError:
            continue  # not a command (tampered with): `freezes rebuild` reports and replaces it
        if not isinstance(command, dict):
            continue
        if is_active(command, now):
            found.append(Freeze(key, command))
    return found


def registry_from_url(
    url: str | None, prefix: str = DEFAULT_PREFIX, options: RedisOptions | None = None
) -> FreezeRegistry:
    """Redis when a URL is given (reached with `options`), else the in-process registry."""
    if url:
        return RedisRegistry(url, prefix, options)
    from claimstream.freezes.memory import MemoryRegistry

    return MemoryRegistry(prefix)
