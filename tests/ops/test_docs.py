"""README and docs/ hang together: every relative link and anchor resolves, and the README's
table of contents names every document.

Links into the docs other engineers write (`DOCS_BY_OTHERS`) are checked once those files are in
the tree; until then they are the one kind of link allowed to dangle.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.ops.support import DOCS, DOCS_BY_OTHERS, REPO, anchors

README = REPO / "README.md"
#: the documents this branch writes, besides README.md
OWN_DOCS = (
    "architecture.md",
    "benchmarks.md",
    "local-broker.md",
    "operations.md",
    "replay.md",
    "sanctions.md",
    "topics.md",
)
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^\s*(```|~~~)")


def links(path: Path) -> list[str]:
    """Every Markdown link target of a file, outside fenced code blocks."""
    found: list[str] = []
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            found.extend(_LINK.findall(line))
    return found


@pytest.mark.parametrize("name", ["README.md", *(f"docs/{d}" for d in OWN_DOCS)])
def test_every_relative_link_and_anchor_resolves(name: str) -> None:
    source = REPO / name
    checked = 0
    for target in links(source):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked offline
        path_part, _, anchor = target.partition("#")
        path = (source.parent / path_part).resolve() if path_part else source
        if path.parent == DOCS and path.name in DOCS_BY_OTHERS and not path.exists():
            continue  # written on another branch; checked once it is here
        assert path.exists(), f"{name}: link to {target}: no such file"
        if anchor:
            assert path.suffix == ".md", f"{name}: anchor into a non-Markdown file: {target}"
            assert anchor in anchors(path), f"{name}: link to {target}: no such heading"
        checked += 1
    assert checked, f"{name} links to nothing"


def test_the_readme_lists_every_document() -> None:
    linked = {Path(t.partition("#")[0]).name for t in links(README) if t.startswith("docs/")}
    expected = set(OWN_DOCS) | DOCS_BY_OTHERS | {p.name for p in DOCS.glob("*.md")}
    assert expected - linked == set(), "README does not link these docs"


def test_the_readme_keeps_the_event_contract() -> None:
    """The contract is the README's to keep: producers read it first."""
    assert "event-contract-v1" in anchors(README)
    text = README.read_text(encoding="utf-8")
    for field in ("event_id", "occurred_at", "patient_id", "days_supply", "naive_timestamp"):
        assert f"`{field}`" in text, field
