"""HTTP views on the worker's own web server (faust's aiohttp server, `web_port`).

* `GET /freezes/{kind}/{id}[?drug_code=D]`: is this patient / doctor / institution (for drug
  D) frozen right now? `{"frozen": bool, "freezes": [...]}`, the same answer Redis gives.
* `GET /freezes`: every freeze in force (up to `?limit=`, default 1000).
* `GET /status`: running totals (records, events, alerts, commands, dead letters, ...).
* `GET /metrics`: Prometheus exposition of the worker's `Metrics` registry.

The sanctions API (subjects, alerts, institutions, review, unfreeze) and `GET /openapi.json`,
the OpenAPI document of every route here and there, are in `claimstream.stream.http.api`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from faust.web import Request, Response, View

from claimstream.model.events import KEY_KINDS

if TYPE_CHECKING:
    import faust

    from claimstream.stream.app import Runtime

_PROMETHEUS_TYPE = "text/plain; version=0.0.4"


def install_views(app: faust.App, runtime: Runtime) -> None:
    class FreezeView(View):
        async def get(self, request: Request, kind: str, id: str) -> Response:
            if kind not in KEY_KINDS:
                return self.json(
                    {"error": f"kind must be one of {', '.join(KEY_KINDS)}"}, status=400
                )
            drug_code = request.query.get("drug_code") or None
            freezes = await runtime.registry.lookup(kind, id, drug_code, now=time.time())
            return self.json(
                {
                    "kind": kind,
                    "id": id,
                    "drug_code": drug_code,
                    "frozen": bool(freezes),
                    "freezes": [f.to_dict() for f in freezes],
                }
            )

    class FreezeListView(View):
        async def get(self, request: Request) -> Response:
            try:
                limit = int(request.query.get("limit", "1000"))
            except ValueError:
                return self.json({"error": "limit must be a whole number"}, status=400)
            freezes = await runtime.registry.active(time.time(), limit=limit)
            return self.json({"freezes": [f.to_dict() for f in freezes]})

    class StatusView(View):
        async def get(self, request: Request) -> Response:
            body: dict[str, Any] = runtime.counters.to_dict()
            body["config_version"] = runtime.engine.config.version  # the one in force
            body["registry"] = type(runtime.registry).__name__
            body["records_by_kind"] = {k: p.records for k, p in runtime.pipelines.items()}
            body["assigned"] = sorted(
                f"{tp.topic}:{tp.partition}"
                for tp in app.consumer.assignment()
                if tp.topic in runtime.input_topics
            )
            return self.json(body)

    class MetricsView(View):
        async def get(self, request: Request) -> Response:
            body, _ = runtime.metrics.exposition()
            return self.bytes(body, content_type=_PROMETHEUS_TYPE)

    app.page("/freezes/{kind}/{id}")(FreezeView)
    app.page("/freezes")(FreezeListView)
    app.page("/status")(StatusView)
    app.page("/metrics")(MetricsView)
