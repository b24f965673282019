"""The metric-name extractor the live check relies on."""

from __future__ import annotations

import json

from tests.ops.promql import dashboard_expressions, metric_names, rule_expressions
from tests.ops.support import DASHBOARD, RULES_FILE, load_yaml


def test_names_from_expressions() -> None:
    assert metric_names(
        'histogram_quantile(0.99, sum by (le, rule) (rate(a_bucket{job="x",le=~"1|2"}[5m])))'
    ) == {"a_bucket"}
    assert metric_names('(time() - b_seconds) > 900 and on (job, instance) up{job="c"} == 1') == {
        "b_seconds",
        "up",
    }
    assert metric_names(
        "sum(rate(d_total[$__rate_interval])) / sum without (reason) (rate(e_total[1h] offset 5m))"
    ) == {"d_total", "e_total"}
    assert metric_names('absent(up{job="claimstream"})') == {"up"}
    assert metric_names("x_total > bool 3 * f_total or g:recorded:rate5m") == {
        "x_total",
        "f_total",
        "g:recorded:rate5m",
    }


def test_deploy_expressions_use_claimstream_metrics() -> None:
    rules = rule_expressions(load_yaml(RULES_FILE))
    panels = dashboard_expressions(json.loads(DASHBOARD.read_text(encoding="utf-8")))
    assert len(rules) >= 7 and len(panels) >= 15
    for where, expr in {**rules, **panels}.items():
        names = metric_names(expr)
        assert names, f"{where}: no metric found in {expr!r}"
        assert any(n.startswith("claimstream_") for n in names) or names <= {"up"}, where
