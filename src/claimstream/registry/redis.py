"""The Redis freeze registry: what a settlement system asks before paying (key scheme in `base`).

Each command is applied by one Lua script, atomically: set the `cmd:{command_id}` marker with
NX (a redelivered command stops there), then SET / DEL the scope's key and its expiry. A batch
of commands goes in one pipeline, one round trip. The script, not the client, compares the
expiry with what is already held, so two workers racing on one scope cannot shorten a freeze.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import orjson

from claimstream.core.outputs import Command
from claimstream.registry.base import (
    DEFAULT_PREFIX,
    MARKER_TTL_SECONDS,
    Applied,
    Freeze,
    FreezeRegistry,
    command_value,
    epoch_ms,
    freeze_key,
    is_active,
    marker_key,
)

# KEYS: marker, scope key. ARGV: action, value, expires-at ms (0: none), marker ttl ms, now ms.
# Returns 1 applied, 0 duplicate, 2 already expired, 3 superseded by a longer hold.
_APPLY = """
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[4]) then return 0 end
local action = ARGV[1]
if action == 'UNFREEZE' then redis.call('DEL', KEYS[2]) return 1 end
if action == 'SUSPEND' then redis.call('SET', KEYS[2], ARGV[2]) return 1 end
local exp = tonumber(ARGV[3])
local now = tonumber(ARGV[5])
if exp > 0 and exp <= now then return 2 end
local ttl = redis.call('PTTL', KEYS[2])
if ttl == -1 then return 3 end
if ttl > 0 and exp > 0 and now + ttl >= exp then return 3 end
redis.call('SET', KEYS[2], ARGV[2])
if exp > 0 then redis.call('PEXPIREAT', KEYS[2], exp) end
return 1
"""
_OUTCOMES: dict[int, Applied] = {0: "duplicate", 1: "applied", 2: "expired", 3: "superseded"}


class RedisRegistry(FreezeRegistry):
    """Freeze registry on a Redis server (`redis://host:port/db`)."""

    def __init__(self, url: str, prefix: str = DEFAULT_PREFIX) -> None:
        self.url = url
        self.prefix = prefix
        self._client: Any = None
        self._script: Any = None

    async def start(self) -> None:
        import redis.asyncio as aioredis

        self._client = aioredis.Redis.from_url(self.url)
        self._script = self._client.register_script(_APPLY)
        await self._client.ping()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("RedisRegistry used before start()")
        return self._client

    async def apply(self, commands: Iterable[Command], now: float) -> list[Applied]:
        batch = list(commands)
        if not batch:
            return []
        now_ms = int(now * 1000)
        marker_ttl = MARKER_TTL_SECONDS * 1000
        async with self.client.pipeline(transaction=False) as pipe:
            for command in batch:
                scope = command.scope
                keys = [
                    marker_key(self.prefix, command.command_id),
                    freeze_key(self.prefix, scope.kind, scope.id, scope.drug_code),
                ]
                args = [
                    command.action,
                    command_value(command),
                    epoch_ms(command.expires_at) if command.action == "FREEZE" else 0,
                    marker_ttl,
                    now_ms,
                ]
                await self._script(keys=keys, args=args, client=pipe)
            results = await pipe.execute()
        return [_OUTCOMES.get(int(r), "applied") for r in results]

    async def lookup(
        self, kind: str, id_: str, drug_code: str | None = None, *, now: float
    ) -> list[Freeze]:
        keys = self.keys_for(kind, id_, drug_code)
        values = await self.client.mget(keys)
        return _active(zip(keys, values, strict=True), now)

    async def active(self, now: float, limit: int = 1000) -> list[Freeze]:
        keys: list[str] = []
        async for key in self.client.scan_iter(match=f"{self.prefix}:freeze:*", count=1000):
            keys.append(key.decode() if isinstance(key, bytes) else str(key))
            if len(keys) >= limit:
                break
        if not keys:
            return []
        keys.sort()
        values = await self.client.mget(keys)
        return _active(zip(keys, values, strict=True), now)


def _active(pairs: Iterable[tuple[str, bytes | None]], now: float) -> list[Freeze]:
    found: list[Freeze] = []
    for key, value in pairs:
        if value is None:
            continue
        command = cast(dict[str, Any], orjson.loads(value))
        if is_active(command, now):
            found.append(Freeze(key, command))
    return found


def registry_from_url(url: str | None, prefix: str = DEFAULT_PREFIX) -> FreezeRegistry:
    """Redis when a URL is given, else the in-process registry."""
    if url:
        return RedisRegistry(url, prefix)
    from claimstream.registry.memory import MemoryRegistry

    return MemoryRegistry(prefix)
