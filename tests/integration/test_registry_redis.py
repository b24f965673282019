"""The Redis freeze registry against a real redis-server: same semantics as the in-process one."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from claimstream.registry.redis import RedisRegistry
from tests.stream.test_registry_memory import NOW, command

pytestmark = pytest.mark.integration
_prefixes = itertools.count()


@pytest.fixture
async def registry(redis_url: str) -> AsyncIterator[RedisRegistry]:
    reg = RedisRegistry(redis_url, prefix=f"t{next(_prefixes)}")
    await reg.start()
    try:
        yield reg
    finally:
        await reg.close()


async def test_one_get_answers_for_the_exact_scope(registry: RedisRegistry, redis_url: str) -> None:
    await registry.apply([command("c1", until=2_000_000_000)], NOW)
    client = aioredis.Redis.from_url(redis_url)
    try:
        key = f"{registry.prefix}:freeze:patient:P1:INS"
        value = await client.get(key)
        assert value is not None and b'"command_id":"c1"' in value
        expire_at = await client.pexpiretime(key)
        assert expire_at == 2_000_000_000_000
    finally:
        await client.aclose()


async def test_redelivery_after_unfreeze_changes_nothing(registry: RedisRegistry) -> None:
    now = NOW
    # expires in the far future so Redis (real wall clock) keeps the key
    freeze = command("c1", until=2_000_000_000)
    assert await registry.apply([freeze], now) == ["applied"]
    assert await registry.apply([command("u1", "UNFREEZE", until=None)], now) == ["applied"]
    assert await registry.apply([freeze], now) == ["duplicate"]
    assert await registry.lookup("patient", "P1", "INS", now=now) == []


async def test_suspend_outranks_and_longer_freeze_is_kept(registry: RedisRegistry) -> None:
    await registry.apply([command("c1", until=2_000_000_000)], NOW)
    assert await registry.apply([command("c2", until=1_900_000_000)], NOW) == ["superseded"]
    await registry.apply([command("s1", "SUSPEND", until=None)], NOW)
    found = await registry.lookup("patient", "P1", "INS", now=NOW)
    assert [f.action for f in found] == ["SUSPEND"]
    assert await registry.apply([command("c3", until=2_100_000_000)], NOW) == ["superseded"]


async def test_lookup_with_drug_sees_whole_subject_freeze(registry: RedisRegistry) -> None:
    await registry.apply(
        [command("c1", kind="institution", id_="H9", drug=None, until=2_000_000_000)], NOW
    )
    found = await registry.lookup("institution", "H9", "X1", now=NOW)
    assert [f.key for f in found] == [f"{registry.prefix}:freeze:institution:H9"]
    assert [f.key for f in await registry.active(NOW)] == [f.key for f in found]


async def test_already_expired_freeze_is_not_written(registry: RedisRegistry) -> None:
    assert await registry.apply([command("c1", until=NOW - 1)], NOW) == ["expired"]
    assert await registry.active(NOW) == []
