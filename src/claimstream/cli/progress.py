"""Progress of a long command on stderr: a bar redrawn in place on a terminal, otherwise (a log
file, CI, a pipe) one plain line every `every` seconds, so a redirected run still says it lives.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class Progress:
    def __init__(
        self,
        total_bytes: int | None,
        stream: TextIO | None = None,
        *,
        every: float = 10.0,
        unit: str = "events",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total_bytes
        self.stream = stream or sys.stderr  # looked up now: tests and callers may swap it
        self.tty = self.stream.isatty()
        #: always on: a bar on a terminal, a line every `every` seconds elsewhere
        self.enabled = True
        self.every = every
        self.unit = unit
        self.clock = clock
        self.started = self._last = clock()
        self._drawn = False

    def update(self, done_bytes: int, items: int) -> None:
        now = self.clock()
        if not self.tty and now - self._last < self.every:
            return
        self._last = now
        elapsed = max(now - self.started, 1e-9)
        rate = f"{items / elapsed:,.0f}/s"
        share = min(done_bytes / self.total, 1.0) if self.total else None
        if self.tty:
            if share is not None:
                bar = "#" * int(share * 30)
                text = f"\r[{bar:<30}] {share:6.1%}  {items:,} {self.unit}  {rate}"
            else:
                text = f"\r{items:,} {self.unit}  {rate}"
            self._drawn = True
        else:
            of = f", {share:.1%} of the input" if share is not None else ""
            text = f"{items:,} {self.unit} so far ({rate}{of})\n"
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\r" + " " * 72 + "\r")
            self.stream.flush()
