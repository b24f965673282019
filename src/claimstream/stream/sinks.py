"""The worker's output sinks as one thing the agents share: opened once, written until done,
closed at shutdown.

faust has no async app initialisation, so the first agent that runs opens the sinks
(`ensure_started`, from the agent's own loop); `stop` (at shutdown) closes them and makes every
write that is still being retried give up, so the batch stays unacked and is processed again
after the restart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from functools import partial

from claimstream.detection.sinks.base import Outputs, Sink
from claimstream.stream.retry import write_until_done

log = logging.getLogger(__name__)


class SinkSet:
    def __init__(self, sinks: Sequence[Sink]) -> None:
        self.sinks = tuple(sinks)
        self.started = False
        self.stopping = False

    def __iter__(self) -> Iterator[Sink]:
        return iter(self.sinks)

    async def ensure_started(self) -> None:
        """Open every sink's connection once (later calls return at once)."""
        if self.started:
            return
        for sink in self.sinks:
            await sink.start()
        self.started = True

    async def write(self, outputs: Outputs) -> None:
        """Hand `outputs` to every sink, each retried until it succeeds (or the worker stops)."""
        for sink in self.sinks:
            await write_until_done(
                f"sink {sink.name}", partial(sink.write, outputs), self.is_stopping
            )

    def is_stopping(self) -> bool:
        return self.stopping

    async def stop(self) -> None:
        self.stopping = True
        if not self.started:
            return
        for sink in self.sinks:
            try:
                await sink.stop()
            except Exception:  # shutting down: log and go on
                log.exception("stopping sink %s", sink.name)
        self.started = False
