"""Shared helpers of the operations tests: where deploy/ is, and the promtool/prometheus rule.

A missing Prometheus binary skips a test on a developer's machine but fails it under CI
(`CI=true`), where `make test` installs Debian's `prometheus` package first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.support import services

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
RULES_FILE = DEPLOY / "prometheus" / "rules" / "claimstream.rules.yml"
RULES_TESTS = DEPLOY / "prometheus" / "tests" / "claimstream.rules.test.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "claimstream.json"


def require_binary(name: str, package: str = "prometheus") -> str:
    """The path of a Prometheus tool; skip without it, except under CI (a failure there)."""
    return services.require_binary(name, package)


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)
