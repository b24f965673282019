"""End to end: a real Prometheus server scrapes a live claimstream `/metrics` on loopback.

Checks, through Prometheus's HTTP API: the scrape works (`up` is 1, claimstream series carry
the values the worker recorded); every metric name that an alerting rule or a dashboard panel
uses is on the live `/metrics` (names parsed from the expressions, not a hand-written list);
every dashboard query and every rule evaluates without error against real data.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from claimstream.devtools.localbroker import BrokerStartError
from tests.ops.live_target import LiveTarget, metrics_endpoint, worker_endpoint
from tests.ops.prometheus_server import PrometheusServer, http_get, wait_for
from tests.ops.promql import (
    SYNTHETIC,
    dashboard_expressions,
    grafana_to_promql,
    metric_names,
    rule_expressions,
)
from tests.ops.support import DASHBOARD, RULES_FILE, load_yaml, require_binary
from tests.support.services import unavailable

pytestmark = pytest.mark.integration

#: Gauges set by `Metrics.sample_consumer`, which the worker has to call from a periodic task.
SAMPLED_PERIODICALLY = frozenset({"claimstream_consumer_lag", "claimstream_assigned_partitions"})


@pytest.fixture(scope="module", params=["worker", "registry"])
def live_target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveTarget]:
    """A real worker on the local broker; and a bare `Metrics` registry over HTTP."""
    if request.param == "registry":
        with metrics_endpoint() as target:
            yield target
        return
    if importlib.util.find_spec("claimstream.stream") is None:
        pytest.skip("the stream worker (claimstream.stream) is not in this tree yet")
    try:
        endpoint = worker_endpoint(tmp_path_factory.mktemp("worker"))
        target = endpoint.__enter__()
    except BrokerStartError as exc:
        unavailable(f"local broker unavailable: {exc}")
    try:
        yield target
    finally:
        endpoint.__exit__(None, None, None)


@pytest.fixture(scope="module")
def prometheus(
    live_target: LiveTarget, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    binary = require_binary("prometheus")
    server = PrometheusServer(binary, tmp_path_factory.mktemp("prometheus"), [live_target.address])
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _expressions() -> dict[str, str]:
    dashboard = json.loads(Path(DASHBOARD).read_text(encoding="utf-8"))
    return {
        **{f"rule {k}": v for k, v in rule_expressions(load_yaml(RULES_FILE)).items()},
        **{f"panel {k}": grafana_to_promql(v) for k, v in dashboard_expressions(dashboard).items()},
    }


def _scraped_names(live_target: LiveTarget) -> set[str]:
    body = http_get(f"http://{live_target.address}/metrics").decode()
    return {s.name for fam in text_string_to_metric_families(body) for s in fam.samples}


def test_prometheus_scrapes_the_worker(
    prometheus: PrometheusServer, live_target: LiveTarget
) -> None:
    up = wait_for(
        lambda: [r for r in prometheus.query('up{job="claimstream"}') if r["value"][1] == "1"],
        60,
        "up == 1 for the claimstream job",
    )
    assert up[0]["metric"]["instance"] == live_target.address

    for expr, expected in live_target.expected_values.items():
        got = wait_for(lambda expr=expr: prometheus.query(expr), 60, f"series {expr} in Prometheus")
        assert got[0]["metric"]["job"] == "claimstream"
        assert got[0]["metric"]["instance"] == live_target.address
        assert float(got[0]["value"][1]) >= expected, (expr, got)

    names = set(prometheus.api("label/__name__/values"))
    assert {n for n in names if n.startswith("claimstream_")} >= {
        "claimstream_events_consumed_total",
        "claimstream_alerts_total",
        "claimstream_processing_latency_seconds_bucket",
    }


def test_every_metric_used_by_rules_and_panels_is_on_the_live_endpoint(
    prometheus: PrometheusServer, live_target: LiveTarget
) -> None:
    used: dict[str, set[str]] = {}
    for where, expr in _expressions().items():
        for name in metric_names(expr) - SYNTHETIC:
            used.setdefault(name, set()).add(where)
    assert len(used) >= 10, used
    # periodic gauges (lag, partitions) appear after the worker's first sampling: poll a while
    exposed: set[str] = set()
    with contextlib.suppress(TimeoutError):
        wait_for(
            lambda: set(used) <= exposed.union(_scraped_names(live_target)) or None,
            30,
            "every used metric on /metrics",
            interval=1.0,
        )
    exposed = _scraped_names(live_target)
    missing = {name: sorted(where) for name, where in used.items() if name not in exposed}
    assert not missing, f"used by rules/panels but not on {live_target.address}/metrics: {missing}"
    # and Prometheus has stored every one of them
    stored = wait_for(
        lambda: (s := set(prometheus.api("label/__name__/values"))) >= set(used) and s,
        30,
        "every used metric stored by Prometheus",
    )
    assert set(used) <= stored


def test_every_rule_and_panel_query_evaluates(prometheus: PrometheusServer) -> None:
    wait_for(lambda: prometheus.query('up{job="claimstream"}'), 60, "a first scrape")
    for where, expr in _expressions().items():
        status, body = prometheus.query_status(expr)
        assert status == 200 and body.get("status") == "success", (where, expr, body)

    def all_rules_evaluated() -> list[dict[str, object]] | None:
        groups = prometheus.api("rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        if not rules or any(r.get("lastEvaluation", "").startswith("0001") for r in rules):
            return None
        return rules

    rules = wait_for(all_rules_evaluated, 60, "every rule evaluated once")
    assert len(rules) == len(rule_expressions(load_yaml(RULES_FILE)))
    for rule in rules:
        assert rule["health"] == "ok", rule
