"""`WatchedFile`: a configuration file read again whenever it changes, without a restart.

The API's token file and the action keyring are rotated by editing (or atomically replacing)
their file; each use asks `current()`, which costs one `stat` and re-reads the file only when
its inode, size, modification or change time moved. A file that no longer parses (or is gone)
is not half-used: `current()` raises `ConfigError` until it is fixed (the caller refuses what
needs it, failing closed), and the change is logged once, at ERROR, naming the file and the
line, never the content. At start-up the file must parse: the constructor raises.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Generic, TypeVar

from claimstream.model.config import ConfigError

T = TypeVar("T")
log = logging.getLogger(__name__)

Stamp = tuple[int, int, int, int]


class WatchedFile(Generic[T]):
    """`parse(bytes, where)` of the file at `path`, re-read when it changes."""

    def __init__(self, path: str, parse: Callable[[bytes, str], T], where: str) -> None:
        self.path = path
        self.parse = parse
        self.where = f"{where} ({path})"
        self._stamp: Stamp | None = None
        self._value: T | None = None
        self._error: ConfigError | None = None
        self.current()
        if self._error is not None:
            raise self._error

    def _stat(self) -> Stamp | None:
        try:
            s = os.stat(self.path)
        except OSError:
            return None
        return (s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns)

    def current(self) -> T:
        """What the file says now; `ConfigError` while it cannot be used."""
        stamp = self._stat()
        if stamp is None or stamp != self._stamp:
            self._reload(stamp)
        if self._error is not None:
            raise self._error
        assert self._value is not None
        return self._value

    def _reload(self, stamp: Stamp | None) -> None:
        first = self._stamp is None and self._value is None and self._error is None
        try:
            with open(self.path, "rb") as file:
                data = file.read()
            value = self.parse(data, self.where)
        except OSError as exc:
            error = ConfigError(f"{self.where}: cannot read it: {exc.strerror or exc}")
            self._fail(stamp, error, first)
            return
        except ConfigError as exc:
            self._fail(stamp, exc, first)
            return
        self._stamp, self._value, self._error = stamp, value, None
        if not first:
            log.warning("%s changed: reloaded", self.where)

    def _fail(self, stamp: Stamp | None, error: ConfigError, first: bool) -> None:
        if not first and (stamp != self._stamp or self._error is None):
            log.error("%s; what needs it is refused until it is fixed", error)
        self._stamp, self._error = stamp, error
