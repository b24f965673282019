"""Writing an output until it is written: a sink or topic that is down stalls consumption.

Every agent hands its outputs (alerts, commands, dead letters, audit records) to destinations
that can fail for a while (Redis restarting, a broker leader moving). Dropping an output would
break at-least-once, and acking the batch without it would lose it for good, so the write is
retried with a capped exponential backoff until it succeeds; only a worker that is stopping
gives up (raising, so the batch stays unacked and is processed again after the restart).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)
FIRST_DELAY = 0.1
MAX_DELAY = 5.0


async def write_until_done(
    what: str, attempt: Callable[[], Awaitable[None]], stopping: Callable[[], bool]
) -> None:
    """Await `attempt()` until it returns; on failure log, wait, retry (re-raise if stopping)."""
    delay = FIRST_DELAY
    while True:
        try:
            await attempt()
            return
        except Exception:  # retried: an output must not be dropped
            log.exception("writing to %s failed; retrying in %.1f s", what, delay)
            if stopping():
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
