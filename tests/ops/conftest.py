"""Shared helpers of the operations tests: where deploy/ is, and the promtool/prometheus rule.

A missing Prometheus binary skips a test on a developer's machine but fails it under CI
(`CI=true`), where `make test` installs Debian's `prometheus` package first.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
RULES_FILE = DEPLOY / "prometheus" / "rules" / "claimstream.rules.yml"
RULES_TESTS = DEPLOY / "prometheus" / "tests" / "claimstream.rules.test.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "claimstream.json"


def unavailable(why: str) -> NoReturn:
    """Skip: something the test needs is not installed; under CI that is a failure instead."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(why)
    pytest.skip(why)


def require_binary(name: str, package: str = "prometheus") -> str:
    """The path of `name`; skip without it, except under CI where it is a failure."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} not found (Debian package {package!r}; `make test` installs it)")
    return path


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)
