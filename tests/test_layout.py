"""The package's shape is its architecture: nothing but the entry points at the root."""

from __future__ import annotations

from pathlib import Path

import claimstream

PACKAGE = Path(claimstream.__file__).parent


def test_the_package_root_holds_only_init_and_main() -> None:
    modules = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert modules == ["__init__.py", "__main__.py"]


def test_every_subpackage_says_what_it_holds() -> None:
    undocumented = [
        init.parent.name
        for init in PACKAGE.rglob("__init__.py")
        if not init.read_text(encoding="utf-8").lstrip().startswith('"""')
    ]
    assert undocumented == []
