"""`GET /health` and `GET /ready`: is the process up, and can the worker do its work.

* `/health` answers 200 `{"status": "ok"}` whenever the web server answers at all: for a
  liveness probe (restart the process when it stops answering).
* `/ready` runs every readiness check and answers 200 `{"status": "ready", "checks": {...}}`
  when all pass, else 503 with `Retry-After`, the names of the checks that failed and why: for
  a readiness probe (send traffic, count the worker as up). Nothing in either names an id.

The worker's checks (`worker_checks`), each bounded by `timeout` seconds:

* `assignment`: the consumer group gave this worker its partitions and no rebalance is under
  way;
* `recovery`: faust finished recovering the tables from their changelogs;
* `kafka`: the producer is started and the broker answers a metadata request;
* `redis`: the freeze registry answers a PING (only when it is Redis; the in-process registry
  has nothing to reach).

Both routes are open (no token), like `/metrics`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from claimstream.freezes.base import FreezeRegistry
from claimstream.freezes.redis import RedisRegistry
from claimstream.stream.http.routes import json_response

#: a readiness check: None when it passes, else why not (a short sentence, no ids)
Check = Callable[[], Awaitable[str | None]]
CHECK_TIMEOUT = 2.0
RETRY_AFTER = "5"


async def readiness(checks: Sequence[tuple[str, Check]]) -> tuple[int, dict[str, Any]]:
    """Run `checks` together; (200 or 503, the body of `/ready`)."""

    async def run(check: Check) -> str | None:
        try:
            return await check()
        except Exception as exc:  # noqa: BLE001  (a check that raises has failed: say how)
            return f"{type(exc).__name__}: {exc}".rstrip(": ")

    results = await asyncio.gather(*(run(check) for _, check in checks))
    answers = {name: why or "ok" for (name, _), why in zip(checks, results, strict=True)}
    failed = [name for (name, _), why in zip(checks, results, strict=True) if why]
    if not failed:
        return 200, {"status": "ready", "checks": answers}
    reasons = "; ".join(f"{name}: {answers[name]}" for name in failed)
    body = {"status": "not ready", "error": f"not ready: {reasons}", "failed": failed,
            "checks": answers}  # fmt: skip
    return 503, body


def health_routes(checks: Sequence[tuple[str, Check]]) -> list[web.RouteDef]:
    async def health(request: web.Request) -> web.Response:
        return json_response(200, {"status": "ok"})

    async def ready(request: web.Request) -> web.Response:
        status, body = await readiness(checks)
        headers = {"Retry-After": RETRY_AFTER} if status != 200 else None
        return json_response(status, body, headers)

    return [web.get("/health", health), web.get("/ready", ready)]


def worker_checks(
    app: Any, registry: FreezeRegistry, timeout: float = CHECK_TIMEOUT
) -> list[tuple[str, Check]]:
    """The readiness checks of a faust worker `app` writing freezes to `registry`."""

    async def assignment() -> str | None:
        if app.rebalancing:
            return "a rebalance is under way"
        try:
            assigned = app.consumer.assignment()
        except Exception:  # noqa: BLE001  (the consumer has not started)
            assigned = None
        return None if assigned else "no partitions are assigned to this worker yet"

    async def recovery() -> str | None:
        done = app.tables.recovery.completed.is_set() and not getattr(app, "in_recovery", False)
        return None if done else "table recovery has not finished"

    async def kafka() -> str | None:
        try:
            producer = app.producer._ensure_producer()
        except Exception:  # noqa: BLE001  (faust's NotReady)
            return "the producer has not started"
        async with asyncio.timeout(timeout):
            await producer.client.fetch_all_metadata()
        return None

    async def redis() -> str | None:
        if not isinstance(registry, RedisRegistry):
            return None  # in-process: nothing to reach
        try:
            client = registry.client
        except RuntimeError:
            return "not connected yet"
        async with asyncio.timeout(timeout):
            await client.ping()
        return None

    return [("assignment", assignment), ("recovery", recovery), ("kafka", kafka), ("redis", redis)]
