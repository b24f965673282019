"""Writing an output until it is written: a sink or topic that is down stalls consumption.

Every agent hands its outputs (alerts, commands, dead letters, audit records) to destinations
that can fail for a while (Redis restarting, a broker leader moving). Dropping an output would
break at-least-once, and acking the batch without it would lose it for good, so the write is
retried with a capped exponential backoff until it succeeds; only a worker that is stopping
gives up (raising, so the batch stays unacked and is processed again after the restart).

An outage is logged once, not once per retry: one WARNING when a destination starts failing
(with the error; the traceback too, once, when the error is not a connection or timeout
error, since that may be a bug) and one when it is back, saying for how long it was down.
`Outages` keeps that state; several writers sharing one (the agents writing to one sink, the
registry guard looking at Redis) log one outage between them, and its `on_change` hook drives
the `claimstream_sink_up` gauge.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)
FIRST_DELAY = 0.1
MAX_DELAY = 5.0

#: errors that say a destination is unreachable (a log line says so; no traceback)
UNREACHABLE: tuple[type[BaseException], ...] = (OSError, TimeoutError, KafkaError)


class Outages:
    """Which destinations are failing right now, each said once when it starts failing and
    once when it is back.

    `on_change(what, up)` is called at both moments (e.g. to set a gauge).
    """

    def __init__(
        self,
        on_change: Callable[[str, bool], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.on_change = on_change
        self.clock = clock
        #: what -> when it started failing (clock seconds)
        self.down: dict[str, float] = {}

    def failed(self, what: str, error: BaseException) -> bool:
        """`what` failed with `error`; True when that starts an outage (and was logged)."""
        if what in self.down:
            log.debug("%s still failing: %s", what, _reason(error))
            return False
        self.down[what] = self.clock()
        expected = isinstance(error, UNREACHABLE)
        log.warning(
            "%s is failing (%s); retrying until it is back, consumption waits meanwhile",
            what,
            _reason(error),
            exc_info=None if expected else error,
        )
        if self.on_change is not None:
            self.on_change(what, False)
        return True

    def recovered(self, what: str) -> None:
        """`what` succeeded; logs the end of its outage, if there was one."""
        since = self.down.pop(what, None)
        if since is None:
            return
        log.warning("%s is back after %.1f s", what, self.clock() - since)
        if self.on_change is not None:
            self.on_change(what, True)

    def is_down(self, what: str) -> bool:
        return what in self.down


def _reason(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


async def write_until_done(
    what: str,
    attempt: Callable[[], Awaitable[None]],
    stopping: Callable[[], bool],
    outages: Outages | None = None,
) -> None:
    """Await `attempt()` until it returns; on failure wait and retry (re-raise if stopping).

    The outage is logged through `outages` (a private one when None: then this call logs its
    own outage, once).
    """
    outages = outages if outages is not None else Outages()
    delay = FIRST_DELAY
    while True:
        try:
            await attempt()
        except Exception as exc:  # retried: an output must not be dropped
            outages.failed(what, exc)
            if stopping():
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_DELAY)
        else:
            outages.recovered(what)
            return
