"""A one-line progress bar on stderr, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, total_bytes: int | None, stream: TextIO | None = None) -> None:
        self.total = total_bytes
        self.stream = stream or sys.stderr  # looked up now: tests and callers may swap it
        self.enabled = self.stream.isatty()
        self.started = time.monotonic()

    def update(self, done_bytes: int, items: int) -> None:
        if not self.enabled:
            return
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = f"{items / elapsed:,.0f}/s"
        if self.total:
            share = min(done_bytes / self.total, 1.0)
            bar = "#" * int(share * 30)
            text = f"\r[{bar:<30}] {share:6.1%}  {items:,} events  {rate}"
        else:
            text = f"\r{items:,} events  {rate}"
        self.stream.write(text)
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 72 + "\r")
            self.stream.flush()
