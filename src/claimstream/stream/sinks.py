"""The worker's output sinks as one thing the agents share: opened once, written until done,
closed at shutdown; and the guard that repairs the freeze registry when Redis lost it.

faust has no async app initialisation, so the first agent that runs opens the sinks
(`ensure_started`, from the agent's own loop; a sink that cannot be reached yet, Redis down at
start-up, is retried like a write); `stop` (at shutdown) closes them and makes every write that
is still being retried give up, so the batch stays unacked and is processed again after the
restart.

Every sink of the set is wrapped so that its writes are retried until done and its outages are
shared by every agent writing to it (`retry.Outages`): a sink that is down is logged once when
it starts failing and once when it is back, whichever agents were waiting on it, and
`claimstream_sink_up{sink}` follows it. The registry guard (`watch_registry`) reports into the
same outage, so Redis going down shows even while no command is being written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from functools import partial
from typing import Any

from claimstream.detection.sinks.base import Outputs, Sink
from claimstream.freezes.base import FreezeRegistry
from claimstream.freezes.guard import (
    INTERVAL,
    GuardEvents,
    Outcome,
    Read,
    RegistryGuard,
    Trigger,
    describe,
)
from claimstream.freezes.rebuild import Rebuild
from claimstream.observability.metrics import Metrics
from claimstream.stream.retry import Outages, write_until_done

log = logging.getLogger(__name__)


def outage_name(sink_name: str) -> str:
    """How the log names a sink's outage ("sink registry is failing ...")."""
    return f"sink {sink_name}"


class RetryingSink(Sink):
    """A sink whose `start` and `write` are retried until done (or the set is stopping),
    its outages shared through `outages`."""

    def __init__(self, sink: Sink, sinks: SinkSet) -> None:
        self.inner = sink
        self.name = sink.name
        self._set = sinks

    async def start(self) -> None:
        await write_until_done(
            outage_name(self.name), self.inner.start, self._set.is_stopping, self._set.outages
        )

    async def stop(self) -> None:
        await self.inner.stop()

    async def write(self, outputs: Outputs) -> None:
        await write_until_done(
            outage_name(self.name),
            partial(self.inner.write, outputs),
            self._set.is_stopping,
            self._set.outages,
        )


class SinkSet:
    def __init__(self, sinks: Sequence[Sink], metrics: Metrics | None = None) -> None:
        self.metrics = metrics
        names = {outage_name(sink.name): sink.name for sink in sinks}

        def changed(what: str, up: bool) -> None:
            if metrics is not None and what in names:
                metrics.set_sink_up(names[what], up)

        self.outages = Outages(changed)
        self.sinks: tuple[Sink, ...] = tuple(RetryingSink(sink, self) for sink in sinks)
        self.started = False
        self.stopping = False
        self._starting: asyncio.Lock | None = None
        if metrics is not None:
            for sink in sinks:
                metrics.set_sink_up(sink.name, True)

    def __iter__(self) -> Iterator[Sink]:
        return iter(self.sinks)

    async def ensure_started(self) -> None:
        """Open every sink's connection once (later calls return at once; calls made while
        one is under way wait for it)."""
        if self.started:
            return
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self.started:
                return
            for sink in self.sinks:
                await sink.start()
            self.started = True

    async def write(self, outputs: Outputs) -> None:
        """Hand `outputs` to every sink, each retried until it succeeds (or the worker stops)."""
        for sink in self.sinks:
            await sink.write(outputs)

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


class RegistryEvents(GuardEvents):
    """The guard's events as metrics, the sink's outage and one log line each."""

    def __init__(self, outages: Outages, metrics: Metrics | None, topic: str) -> None:
        self.outages = outages
        self.metrics = metrics
        self.topic = topic
        self.failures = 0

    def reachable(self, error: Exception | None) -> None:
        what = outage_name("registry")
        if error is None:
            self.outages.recovered(what)
        else:
            self.outages.failed(what, error)

    def rebuilding(self, trigger: Trigger) -> None:
        if self.metrics is not None:
            self.metrics.registry_rebuilding(trigger)
        if not self.failures:  # a new Redis at start-up is routine: INFO
            log.log(
                logging.INFO if trigger == "start" else logging.WARNING,
                "the freeze registry %s: rebuilding it from %s",
                describe(trigger),
                self.topic,
            )

    def rebuilt(self, trigger: Trigger, outcome: Outcome, result: Rebuild) -> None:
        if self.metrics is not None:
            self.metrics.registry_rebuilt(trigger, outcome)
        self.failures = 0
        report = result.to_dict()
        routine = trigger == "start" and outcome == "clean"  # a new Redis, nothing missing
        log.log(
            logging.INFO if routine else logging.WARNING,
            "the freeze registry is rebuilt from %s (%s, %s): %d command(s) read, %d freeze(s) "
            "in force, %d key(s) missing, %d unexpected, %d set by another command; "
            "%d set and %d deleted in one step",
            self.topic,
            trigger,
            "nothing differed" if outcome == "clean" else "repaired",
            report["commands"],
            report["in_force"],
            len(report["missing"]),
            len(report["unexpected"]),
            len(report["different"]),
            len(report["set"]),
            len(report["deleted"]),
        )

    def failed(self, trigger: Trigger, error: Exception) -> None:
        if self.metrics is not None:
            self.metrics.registry_rebuilt(trigger, "failed")
        self.failures += 1
        if self.failures == 1:  # once per streak; the gauge stays at 1 until it succeeds
            log.warning(
                "rebuilding the freeze registry failed (%s: %s); trying again every %.0f s",
                type(error).__name__,
                error,
                INTERVAL,
            )


def topic_commands(bootstrap: str, topic: str, security: Any = None) -> Any:
    """Opens `topic` for one rebuild: a `Commands` for the guard, on `kafka.reader` (with the
    worker's `KafkaSecurity`; None: the `CLAIMSTREAM_KAFKA_*` variables)."""

    @contextlib.asynccontextmanager
    async def commands() -> AsyncIterator[Read]:
        from claimstream.kafka.reader import TopicReader

        async with TopicReader(bootstrap, topic, security=security) as reader:

            async def read() -> Iterable[tuple[str, bytes | None]]:
                return [(r.where(), r.value) for r in await reader.read_new()]

            yield read

    return commands


def watch_registry(
    app: Any,
    registry: FreezeRegistry,
    sinks: SinkSet,
    *,
    bootstrap: str,
    topic: str,
    security: Any = None,
    interval: float = INTERVAL,
) -> RegistryGuard:
    """Run a `RegistryGuard` on `registry` as a task of faust `app`, once the sinks (and so
    the registry) are open; its events go to the sinks' outages and metrics."""
    guard = RegistryGuard(
        registry,
        topic_commands(bootstrap, topic, security),
        RegistryEvents(sinks.outages, sinks.metrics, topic),
    )

    async def watch() -> None:
        await sinks.ensure_started()
        await guard.run(interval)

    app.task(watch)
    return guard
