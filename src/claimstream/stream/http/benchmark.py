"""`GET /v1/institutions/{id}/benchmark[?month=YYYY-MM]`: the benchmark an institution is shown.

Its closed month's indicators beside its peer group's count, mean, median and 80th percentile,
its rank and percentile rank, the trend of the last 12 months and its departments' figures
(`claimstream.detection.benchmark`, the JSON of `Benchmark.to_dict`). Without `month`: its
latest month held. Role `supervisor`, or the institution's own token (`institution:ID`, for its
own id only: `claimstream.stream.http.access.INSTITUTION_SCOPED`).

The records come from a `MonthsSource` (the peer-group agent's table of each group's months),
asked through `source()` on every call: None while the worker has none (not wired, or not
ready) is a 503 with `Retry-After`. The source must answer for any institution on any worker:
it is asked here, not routed to a key's owner. Answers: 200; 400 a month that is not YYYY-MM;
404 an institution or a month not held. Nothing here logs: the path holds an id.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from claimstream.detection.benchmark import (
    BadMonth,
    BenchmarkError,
    MonthsSource,
    from_source,
)
from claimstream.stream.http.routes import json_response

PATH = "/v1/institutions/{id}/benchmark"
#: seconds a client is asked to wait while the worker has no benchmark data
RETRY_AFTER = "30"


def benchmark_routes(source: Callable[[], MonthsSource | None]) -> list[web.RouteDef]:
    """The benchmark route over `source()` (None: no data on this worker yet, 503)."""

    async def institution_benchmark(request: web.Request) -> web.Response:
        institution_id = request.match_info["id"]
        month = request.query.get("month") or None
        months = source()
        if months is None:
            return json_response(
                503,
                {
                    "error": "this worker holds no institution months yet (the peer-group "
                    "indicators are not running here, or not recovered)"
                },
                {"Retry-After": RETRY_AFTER},
            )
        try:
            found = from_source(months, institution_id, month)
        except BadMonth as exc:
            return json_response(400, {"error": str(exc)})
        except BenchmarkError as exc:
            return json_response(404, {"error": str(exc)})
        return json_response(200, found.to_dict())

    return [web.get(PATH, institution_benchmark)]
