"""Helpers of the command-line tests: a closed address, event files, a `claimstream` process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson

from claimstream.devtools.simulate import Simulator
from claimstream.devtools.subproc import die_with_parent


def closed_port() -> str:
    """A loopback address nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def simulated(count: int, seed: int = 5) -> list[dict[str, Any]]:
    return list(Simulator(count, seed=seed).events())


def write_lines(path: Path, lines: list[bytes | dict[str, Any]]) -> Path:
    """One JSON line per dict (bytes are written as they are), newline-terminated."""
    raw = [line if isinstance(line, bytes) else orjson.dumps(line) for line in lines]
    path.write_bytes(b"".join(line + b"\n" for line in raw))
    return path


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a `claimstream` process: ours without CLAIMSTREAM_* (a developer's
    shell must not change what a test sees), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMSTREAM_")}
    return {**env, **extra}


def claimstream(*args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    """`python -m claimstream ARGS` as a process in its own session; the caller waits for it."""
    kwargs.setdefault("env", cli_env())
    return subprocess.Popen(
        [sys.executable, "-m", "claimstream", *args],
        start_new_session=True,  # `terminate_group` can stop it and whatever it started
        preexec_fn=die_with_parent,
        **kwargs,
    )
