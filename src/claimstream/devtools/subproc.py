"""Helpers for the servers claimstream starts for development and tests (Tansu, redis-server).

They exist so that no helper process outlives its owner: each child gets its own process group
and, on Linux, a parent-death signal; stopping is terminate-then-kill with a timeout.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys

__all__ = ["die_with_parent", "free_port", "port_in_use", "terminate_group"]

_PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (it may be taken again before we bind: callers retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


def die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """preexec_fn: ask Linux to SIGKILL the child when the thread that spawned it dies.

    This covers what no `finally` can: `kill -9` of the test runner or the CLI. The kernel
    tracks the parent *thread*, so spawn from a long-lived thread (the main thread or the
    event-loop thread), not from a short-lived worker thread. Only prctl and getppid run here,
    which are safe between fork and exec.
    """
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent already died between fork and prctl
        os._exit(1)


def terminate_group(proc: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the child's process group, SIGKILL it if still there after `timeout` s, reap it.

    The child must have been started with `start_new_session=True` (its pid is its group id).
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
            break
        except subprocess.TimeoutExpired:
            continue
    if proc.poll() is None:  # SIGKILL cannot be ignored; this only reaps it
        proc.wait()
