"""Metric names used by PromQL expressions, without a PromQL parser.

Good enough for the expressions in deploy/: strings, label matchers `{...}`, range and subquery
selectors `[...]`, and the label lists of `by`/`without`/`on`/`ignoring`/`group_left`/
`group_right` are removed; what remains that looks like an identifier, is not a keyword and is
not called like a function is a metric name. Grafana's `$__rate_interval`-style variables only
occur inside `[...]`, which is removed first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_IDENT = re.compile(r"(?<![\w.$:])([A-Za-z_:][\w:]*)(\s*\()?")
_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        "atan2",
        "inf",
        "nan",
        "start",
        "end",
    }
)
#: Series Prometheus makes itself for every target; not expected on a /metrics page.
SYNTHETIC = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
        "ALERTS",
        "ALERTS_FOR_STATE",
    }
)


def metric_names(expr: str) -> set[str]:
    text = _STRING.sub(" ", expr)
    text = _MATCHERS.sub(" ", text)
    while _RANGE.search(text):
        text = _RANGE.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    names: set[str] = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def rule_expressions(rules_doc: dict[str, Any]) -> dict[str, str]:
    """`{alert or record name: expr}` of a Prometheus rules file."""
    out: dict[str, str] = {}
    for group in rules_doc["groups"]:
        for rule in group["rules"]:
            out[rule.get("alert") or rule["record"]] = rule["expr"]
    return out


def dashboard_expressions(dashboard: dict[str, Any]) -> dict[str, str]:
    """`{"panel title / refId": expr}` for every target of every panel (rows included)."""
    out: dict[str, str] = {}

    def walk(panels: Iterable[dict[str, Any]]) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    out[f"{panel['title']} / {target['refId']}"] = target["expr"]
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    return out


def grafana_to_promql(expr: str) -> str:
    """Replace Grafana's built-in interval variables so Prometheus can evaluate the query."""
    return (
        expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$__range", "1h")
    )
