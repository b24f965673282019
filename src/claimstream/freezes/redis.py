"""The Redis freeze registry: what a settlement system asks before paying (key scheme in `base`).

A batch of commands is applied in one optimistic transaction: WATCH the batch's markers and
scope keys, read them (one MGET), decide every command in order with `base.decide` (the
commands ledger's rule, in Python, so the in-process registry, the ledger and Redis share one
rule), then MULTI: set the `cmd:{command_id}` markers and SET / DEL the scope keys with their
expiry; EXEC. If another writer touched a watched key in between, EXEC fails and the batch is
decided again on the new values, so two workers racing on one scope can neither shorten a
freeze nor apply a command twice. Three round trips per batch of commands.

A Redis that cannot be reached (refused, timed out after `SOCKET_TIMEOUT`, still loading its
data after a restart) raises `RegistryUnavailable` from every call, never redis-py's own
errors: the worker retries its writes and answers look-ups with 503 until Redis is back.
`look`, `mark`, `lock` and `unlock` serve the guard that notices a Redis which lost the
registry (`freezes.guard`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, cast
from urllib.parse import urlsplit

import orjson

from claimstream.freezes.base import (
    DEFAULT_PREFIX,
    MARKER_TTL_SECONDS,
    Applied,
    Delete,
    Freeze,
    FreezeRegistry,
    Look,
    RegistryUnavailable,
    Store,
    Write,
    decide,
    freeze_key,
    is_active,
    marker_key,
    rebuild_lock_key,
    sentinel_key,
)
from claimstream.freezes.connection import RedisOptions, close, connect, refusal
from claimstream.model.outputs import Command

#: how often a batch is decided again after a concurrent write before giving up
MAX_ATTEMPTS = 50
#: seconds a connection attempt or a command may take before Redis counts as unreachable
SOCKET_TIMEOUT = 5.0


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
        parts = urlsplit(url)
        #: host:port only: the URL may carry a password
        self.where = f"Redis at {parts.hostname or 'localhost'}:{parts.port or 6379}"

    async def start(self) -> None:
        """Connect and PING. Redis not answering: `RegistryUnavailable` (call again); Redis
        answering and refusing us (the login, the ACL, the TLS handshake): redis-py's error as
        it is, for `connection.refusal` to explain."""
        client = connect(
            self.url,
            self.options,
            socket_timeout=SOCKET_TIMEOUT,
            socket_connect_timeout=SOCKET_TIMEOUT,
        )
        try:
            async with self._translated():
                await client.ping()
        except BaseException:  # a refused login or handshake leaves a socket open: close it
            await close(client)
            raise
        self._client = client

    @contextlib.asynccontextmanager
    async def reachable(self) -> AsyncIterator[None]:
        """Around every call to a started registry: see `_translated`."""
        if self._client is None:
            raise RegistryUnavailable(f"{self.where}: not connected yet")
        async with self._translated():
            yield

    @contextlib.asynccontextmanager
    async def _translated(self) -> AsyncIterator[None]:
        """Turn redis-py's "cannot reach / timed out / still loading" errors into
        `RegistryUnavailable`; a refusal (`connection.refusal`) is left as it is."""
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        try:
            yield
        except (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError) as exc:
            if isinstance(exc, RegistryUnavailable) or refusal(exc, self.url) is not None:
                raise
            raise RegistryUnavailable(f"{self.where}: {exc}") from exc

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
        async with self.reachable():
            return await self._apply(list(commands), now)

    async def _apply(self, batch: list[Command], now: float) -> list[Applied]:
        from redis.exceptions import WatchError

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
        async with self.reachable():
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
        async with self.reachable():
            keys = await self._freeze_keys(limit)
            if not keys:
                return []
            values = await self.client.mget(keys)
        return _active(zip(keys, values, strict=True), now)

    async def stored(self) -> dict[str, bytes]:
        stored: dict[str, bytes] = {}
        async with self.reachable():
            keys = await self._freeze_keys()
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
        async with self.reachable():
            return await self._swap(seen, writes, markers, now)

    async def _swap(
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

    # -- the guard's part (`freezes.guard`) -------------------------------------------------

    async def look(self) -> Look:
        """The server's `run_id` (None when INFO is refused, as the deploy's ACL user does) and
        the sentinel, in one round trip."""
        from redis.exceptions import ResponseError

        async with self.reachable(), self.client.pipeline(transaction=False) as pipe:
            pipe.info("server")
            pipe.mget([sentinel_key(self.prefix)])
            info, marks = await pipe.execute(raise_on_error=False)
        if isinstance(marks, Exception):
            raise marks
        run_id = None if isinstance(info, ResponseError) else info.get("run_id")
        return _look(run_id, marks[0])

    async def mark(self, run_id: str | None, at: float, token: str) -> bool:
        """Write the sentinel if `token` still holds the rebuild lock (WATCH, read, MULTI:
        the registry's own commands, no script)."""
        value = orjson.dumps({"run_id": run_id, "at": at})
        async with self.reachable():
            return await self._while_locked(
                token, lambda pipe: pipe.set(sentinel_key(self.prefix), value)
            )

    async def lock(self, token: str, ttl: float) -> bool:
        """Take the rebuild lock for `ttl` seconds unless another worker holds it."""
        async with self.reachable():
            taken = await self.client.set(
                rebuild_lock_key(self.prefix), token, nx=True, px=int(ttl * 1000)
            )
        return bool(taken)

    async def unlock(self, token: str) -> None:
        async with self.reachable():
            await self._while_locked(token, lambda pipe: pipe.delete(rebuild_lock_key(self.prefix)))

    async def _while_locked(self, token: str, queue: Any) -> bool:
        """Run `queue(pipe)` in one MULTI/EXEC if the lock holds `token` until EXEC; False,
        doing nothing, if it does not (or another client changed the lock meanwhile)."""
        from redis.exceptions import WatchError

        lock = rebuild_lock_key(self.prefix)
        async with self.client.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(lock)
                (held,) = await pipe.mget([lock])
                if held != token.encode():
                    await pipe.unwatch()
                    return False
                pipe.multi()
                queue(pipe)
                await pipe.execute()
                return True
            except WatchError:
                return False


def _look(run_id: Any, mark: bytes | None) -> Look:
    if run_id is not None and not isinstance(run_id, str):
        run_id = str(run_id)
    if mark is None:
        return Look(run_id=run_id, marked=False, marked_on=None)
    try:
        data = orjson.loads(mark)
        on = data.get("run_id") if isinstance(data, dict) else None
    except orjson.JSONDecodeError:
        on = None
    return Look(run_id=run_id, marked=True, marked_on=on if isinstance(on, str) else None)


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
