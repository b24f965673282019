"""Giving a drain's memory back to the system: glibc's `malloc_trim` once the work stops.

A worker draining a backlog holds, for a moment, far more than the state it keeps: a batch's
decoded records and states, the fetch buffers, the producer's batches. Once freed, that memory
stays in glibc's heap (free chunks between live ones are never returned by `free` itself), so
the worker's RSS keeps every drain's peak: 10.3-10.9 KB a patient where ~2.3 KB is live
(docs/benchmarks.md, "State memory"). `malloc_trim(0)` returns the free pages of every arena
to the system (`madvise`), whatever lies around them.

`Trimmer` watches the records the detection agents handled, once a second (`TICK`): it trims
when they stopped moving after some work (a drain ended, or a burst), and at most every
`interval` seconds while the work goes on (an endless stream). The trim runs in a thread, so
the event loop, and a check waiting for it, is not held while glibc walks its heap; a thread
that allocates meanwhile may wait for its arena's lock for that long.

On a system without glibc (musl, macOS) there is no `malloc_trim`, and nothing is done.
pymalloc's arenas (Python's small objects) are not glibc's: an arena that keeps one live object
stays, trim or not.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: seconds between two looks at the records handled
TICK = 1.0


def malloc_trim() -> Callable[[], int] | None:
    """glibc's `malloc_trim(0)` (returns 1 when memory was given back), or None without glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: int(trim(0))


class Trimmer:
    """Decides, one `tick` a second, whether to trim now (see the module doc)."""

    def __init__(
        self,
        handled: Callable[[], int],
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.handled = handled
        self.interval = interval
        self.clock = clock
        self._seen = handled()
        self._worked = False
        self._last = clock()
        #: trims done, and the seconds the last one took
        self.trims = 0
        self.last_seconds = 0.0

    def due(self) -> bool:
        """Whether to trim now: work was done since the last trim, and it has stopped (this
        tick saw no new record) or `interval` seconds have passed since the last trim."""
        seen = self.handled()
        busy = seen != self._seen
        self._seen = seen
        self._worked = self._worked or busy
        if not self._worked:
            return False
        return not busy or self.clock() - self._last >= self.interval

    async def trim(self, trim: Callable[[], int]) -> None:
        began = time.perf_counter()
        gave = await asyncio.to_thread(trim)
        self.last_seconds = time.perf_counter() - began
        self.trims += 1
        self._worked = False
        self._last = self.clock()
        log.debug("malloc_trim took %.1f ms (gave back: %s)", self.last_seconds * 1000, gave)


def install_upkeep(app: Any, *, interval: float, handled: Callable[[], int]) -> Trimmer | None:
    """Trim glibc's heap after work (`Trimmer`), on `app`'s timer; `handled`: the records the
    detection agents have handled so far. None (nothing installed) when `interval` is 0 or the
    C library has no `malloc_trim`."""
    trim = malloc_trim() if interval > 0 else None
    if trim is None:
        return None
    trimmer = Trimmer(handled, interval)

    async def tick() -> None:
        try:
            if trimmer.due():
                await trimmer.trim(trim)
        except Exception:  # upkeep must never take the worker down
            log.exception("trimming the heap failed")

    app.timer(TICK)(tick)
    return trimmer
