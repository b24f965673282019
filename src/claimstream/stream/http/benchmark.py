"""`GET /v1/institutions/{id}/benchmark[?month=YYYY-MM]`: the benchmark an institution is shown.

Its closed month's indicators beside its peer group's count, mean, median and 80th percentile,
its rank and percentile rank, the trend of the last 12 months and its departments' figures
(`claimstream.detection.benchmark`, the JSON of `Benchmark.to_dict`). Without `month`: its
latest month held. Role `supervisor`, or the institution's own token (`institution:ID`, for its
own id only: `claimstream.stream.http.access.INSTITUTION_SCOPED`).

The records come from a `MonthsSource` (the peer-group agent's table of each group's months),
asked through `source()` on every call: None while the worker has none (not wired, or not
ready) is a 503 with `Retry-After`. A worker holds only the groups of its partitions, so when
the institution's group is known from the reference data (`group_of`) and another worker owns
it (`owner_of`, space `PEERS`), the GET is forwarded there by the API's own routing
(`claimstream.stream.http.routes.routed_read`); an institution the reference data does not
place, or a group whose owner is not known yet, is looked for here. Answers: 200; 400 a month
that is not YYYY-MM; 404 an institution or a month not held; 502 the owner did not answer.
Nothing here logs an id: the path holds one.
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
from claimstream.stream.http.routes import Forward, OwnerOf, json_response, routed_read

#: the key space the benchmark is routed by: a peer group, placed by the `peer-groups` table
PEERS = "peers"

PATH = "/v1/institutions/{id}/benchmark"
#: seconds a client is asked to wait while the worker has no benchmark data
RETRY_AFTER = "30"


def benchmark_routes(
    source: Callable[[], MonthsSource | None],
    *,
    group_of: Callable[[str], str | None] | None = None,
    owner_of: OwnerOf | None = None,
    forward: Forward | None = None,
) -> list[web.RouteDef]:
    """The benchmark route over `source()` (None: no data on this worker yet, 503); with
    `group_of`, `owner_of` and `forward`, a group another worker owns is asked there."""

    async def institution_benchmark(request: web.Request) -> web.StreamResponse:
        institution_id = request.match_info["id"]
        group = None if group_of is None else group_of(institution_id)
        return await routed_read(
            request,
            PEERS,
            group,
            lambda: local(institution_id, request.query.get("month") or None),
            owner_of=owner_of,
            forward=forward,
            failed=owner_failed,
        )

    def owner_failed(owner: str, why: str) -> web.Response:
        return json_response(
            502, {"error": f"the peer group is on worker {owner}, which did not answer"}
        )

    def local(institution_id: str, month: str | None) -> web.Response:
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
