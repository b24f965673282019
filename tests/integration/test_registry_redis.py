"""The Redis freeze registry against a real redis-server: same semantics as the in-process one."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from claimstream.freezes.redis import RedisRegistry
from claimstream.model.outputs import Command
from tests.freezes.test_memory import (
    NOW,
    _base,
    check_against_ledger,
    command,
    contract_command,
    iso,
    named_sequences,
    random_sequences,
)

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


async def test_late_unfreeze_leaves_a_later_freeze(registry: RedisRegistry) -> None:
    freeze = command("f1", until=2_000_000_000)  # effective NOW - 60
    late = Command(
        "u-late", "UNFREEZE", freeze.scope, iso(NOW - 3600), None, "expiry", "escalation", ()
    )
    await registry.apply([freeze], NOW)
    assert await registry.apply([late], NOW) == ["superseded"]
    assert [f.command["command_id"] for f in await registry.active(NOW)] == ["f1"]


# -- the contract shared with the in-process registry: Redis holds what the ledger holds -------


@pytest.mark.parametrize("name", list(named_sequences()))
async def test_redis_registry_equals_the_ledger(registry: RedisRegistry, name: str) -> None:
    await check_against_ledger(registry, named_sequences()[name])


async def test_redis_registry_equals_the_ledger_on_random_sequences(redis_url: str) -> None:
    for steps in random_sequences(150):
        reg = RedisRegistry(redis_url, prefix=f"t{next(_prefixes)}")
        await reg.start()
        try:
            await check_against_ledger(reg, steps)
        finally:
            await reg.close()


async def test_a_suspension_key_has_no_expiry(registry: RedisRegistry, redis_url: str) -> None:
    await registry.apply([contract_command("s", "SUSPEND", -1)], NOW)
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert await client.pttl(f"{registry.prefix}:freeze:institution:H1") == -1
    finally:
        await client.aclose()


async def test_two_writers_racing_on_one_scope_agree_with_the_ledger(redis_url: str) -> None:
    """Concurrent batches on one scope (two workers): WATCH/MULTI retries, nothing is lost."""
    prefix = f"t{next(_prefixes)}"
    writers = [RedisRegistry(redis_url, prefix=prefix) for _ in range(2)]
    for w in writers:
        await w.start()
    try:
        freezes = [
            contract_command(f"r{i}", "FREEZE", -1, 0.5 + (i * 7 % 40) / 20) for i in range(40)
        ]
        await asyncio.gather(*(writers[i % 2].apply([c], _base) for i, c in enumerate(freezes)))
        held = [f.command["command_id"] for f in await writers[0].active(_base)]
        assert held == ["cmd-r17"]  # the longest (17 * 7 % 40 = 39), whatever order they landed in
    finally:
        for w in writers:
            await w.close()
