"""The worker's own routes: freeze look-ups, running totals and metrics.

* `GET /freezes/{kind}/{id}[?drug_code=D]`: is this patient / doctor / institution (for drug
  D) frozen right now? `{"frozen": bool, "freezes": [...]}`, the same answer Redis gives.
* `GET /freezes`: every freeze in force (up to `?limit=`, default 1000).

Both answer 503 with `Retry-After` and a JSON error while the registry cannot answer for sure:
its Redis is unreachable (or still loading), or it lost its data and the worker's guard has
not rebuilt it yet (`registry_state()` says why; "not frozen" would then be a guess).
* `GET /status`: running totals (records, events, alerts, commands, dead letters, ...).
* `GET /metrics`: Prometheus exposition of the worker's `Metrics` registry.

The sanctions API (subjects, alerts, institutions, review, unfreeze) and `GET /openapi.json`
are in `routes.py`, `/health` and `/ready` in `health.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from claimstream.freezes.base import FreezeRegistry, RegistryUnavailable
from claimstream.model.events import KEY_KINDS
from claimstream.stream.http.routes import json_response

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: seconds a client is asked to wait before asking again while the registry cannot answer
RETRY_AFTER = "5"


def unavailable(why: str) -> web.Response:
    return json_response(503, {"error": why}, {"Retry-After": RETRY_AFTER})


def worker_routes(
    *,
    registry: FreezeRegistry,
    status: Callable[[], dict[str, Any]],
    exposition: Callable[[], bytes],
    registry_state: Callable[[], str | None] = lambda: None,
) -> list[web.RouteDef]:
    """Freezes from `registry` (503 while `registry_state()` gives a reason not to trust it),
    `/status` from `status()`, `/metrics` from `exposition()` (the Prometheus text format)."""

    async def freeze(request: web.Request) -> web.Response:
        kind, id_ = request.match_info["kind"], request.match_info["id"]
        if kind not in KEY_KINDS:
            return json_response(400, {"error": f"kind must be one of {', '.join(KEY_KINDS)}"})
        drug_code = request.query.get("drug_code") or None
        if (why := registry_state()) is not None:
            return unavailable(why)
        try:
            freezes = await registry.lookup(kind, id_, drug_code, now=time.time())
        except RegistryUnavailable as exc:
            return unavailable(f"the freeze registry cannot be reached: {exc}")
        return json_response(
            200,
            {
                "kind": kind,
                "id": id_,
                "drug_code": drug_code,
                "frozen": bool(freezes),
                "freezes": [f.to_dict() for f in freezes],
            },
        )

    async def freeze_list(request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", "1000"))
        except ValueError:
            return json_response(400, {"error": "limit must be a whole number"})
        if (why := registry_state()) is not None:
            return unavailable(why)
        try:
            freezes = await registry.active(time.time(), limit=limit)
        except RegistryUnavailable as exc:
            return unavailable(f"the freeze registry cannot be reached: {exc}")
        return json_response(200, {"freezes": [f.to_dict() for f in freezes]})

    async def status_view(request: web.Request) -> web.Response:
        return json_response(200, status())

    async def metrics(request: web.Request) -> web.Response:
        response = web.Response(body=exposition())
        response.headers["Content-Type"] = PROMETHEUS_TYPE
        return response

    return [
        web.get("/freezes/{kind}/{id}", freeze),
        web.get("/freezes", freeze_list),
        web.get("/status", status_view),
        web.get("/metrics", metrics),
    ]
