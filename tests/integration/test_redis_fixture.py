"""The redis_url fixture gives a private redis-server that answers."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis

pytestmark = pytest.mark.integration


async def test_redis_answers_ping(redis_url: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert await client.ping()
        await client.set("claimstream:test", "1")
        assert await client.get("claimstream:test") == b"1"
    finally:
        await client.aclose()
