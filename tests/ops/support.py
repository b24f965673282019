"""Shared helpers of the operations tests: where deploy/ and docs/ are, Markdown anchors, and the
promtool/prometheus rule.

A missing Prometheus binary skips a test on a developer's machine but fails it under CI
(`CI=true`), where `make test` installs Debian's `prometheus` package first.
"""

from __future__ import annotations

import re
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


DOCS = REPO / "docs"
#: docs/ files other engineers write; until they exist, links to them are not checked.
DOCS_BY_OTHERS = frozenset({"rules.md", "cli.md", "api.md", "audit.md", "time.md"})

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_HTML_ANCHOR = re.compile(r"""<a\s+(?:id|name)=["']([^"']+)["']""")
_INLINE_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lower case, punctuation removed, spaces to
    hyphens (letters of any script, digits, `_` and `-` kept)."""
    text = _INLINE_LINK.sub(r"\1", heading).replace("`", "")
    text = "".join(ch for ch in text.lower() if ch.isalnum() or ch in " _-")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a Markdown file offers: its headings (GitHub numbers repeats `-1`, `-2`) and
    explicit `<a id=...>` tags. Headings inside fenced code blocks do not count."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        found.update(_HTML_ANCHOR.findall(line))
        match = _HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found
