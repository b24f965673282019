"""The worker's output sinks as one set (`claimstream.stream.sinks`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

from claimstream.detection.sinks.base import Outputs
from claimstream.detection.sinks.memory import MemorySink
from claimstream.freezes.base import RegistryUnavailable
from claimstream.freezes.memory import MemoryRegistry
from claimstream.freezes.rebuild import Rebuild, rebuild
from claimstream.observability.metrics import Metrics
from claimstream.stream import retry
from claimstream.stream.retry import Outages
from claimstream.stream.sinks import RegistryEvents, SinkSet


class CountingSink(MemorySink):
    def __init__(self, fail: Exception | None = None) -> None:
        super().__init__()
        self.starts = 0
        self.stops = 0
        self.fail = fail

    async def start(self) -> None:
        self.starts += 1

    async def stop(self) -> None:
        self.stops += 1

    async def write(self, outputs: Outputs) -> None:
        if self.fail is not None:
            raise self.fail
        await super().write(outputs)


async def test_the_sinks_are_started_once_however_many_agents_ask() -> None:
    sink = CountingSink()
    sinks = SinkSet([sink])
    for _ in range(3):
        await sinks.ensure_started()
    assert sink.starts == 1
    await sinks.stop()
    assert sink.stops == 1


async def test_a_failing_write_gives_up_once_the_worker_is_stopping() -> None:
    sinks = SinkSet([CountingSink(fail=ConnectionError("registry gone"))])
    await sinks.stop()
    with pytest.raises(ConnectionError):
        await sinks.write(Outputs(dead_letters=[]))


class DownFor(CountingSink):
    """A sink whose first `failures` writes (or starts) fail as an unreachable Redis does."""

    def __init__(self, failures: int, *, at_start: bool = False) -> None:
        super().__init__()
        self.name = "registry"
        self.failures = failures
        self.at_start = at_start
        self.written = 0
        #: called at every attempt (to look at the gauges meanwhile)
        self.on_attempt: Callable[[], None] = lambda: None

    def _maybe_fail(self) -> None:
        self.on_attempt()
        if self.failures:
            self.failures -= 1
            raise RegistryUnavailable("Redis at 127.0.0.1:1: connection refused")

    async def start(self) -> None:
        await super().start()
        if self.at_start:
            self._maybe_fail()

    async def write(self, outputs: Outputs) -> None:
        if not self.at_start:
            self._maybe_fail()
        self.written += 1


def sink_up(metrics: Metrics, sink: str) -> float | None:
    return metrics.registry.get_sample_value("claimstream_sink_up", {"sink": sink})


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "FIRST_DELAY", 0.001)


async def test_sink_up_is_0_while_a_sink_fails_and_1_once_it_is_back(fast_retries: None) -> None:
    metrics = Metrics(CollectorRegistry(), process=False)
    sink = DownFor(failures=3)
    seen: list[float | None] = []
    sink.on_attempt = lambda: seen.append(sink_up(metrics, "registry"))
    sinks = SinkSet([sink], metrics)
    await sinks.write(Outputs())
    assert seen == [1, 0, 0, 0]  # up before the first attempt, down until one succeeded
    assert sink_up(metrics, "registry") == 1
    assert sink.written == 1


async def test_agents_writing_to_a_down_sink_log_one_outage_between_them(
    fast_retries: None, caplog: pytest.LogCaptureFixture
) -> None:
    sinks = SinkSet([DownFor(failures=9)])
    await asyncio.gather(*(s.write(Outputs()) for s in [*sinks.sinks] * 3))
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 2, lines
    assert "sink registry is failing" in lines[0] and "sink registry is back" in lines[1]


async def test_a_sink_unreachable_at_start_up_is_started_once_it_answers(
    fast_retries: None,
) -> None:
    sink = DownFor(failures=2, at_start=True)
    sinks = SinkSet([sink])
    await asyncio.gather(sinks.ensure_started(), sinks.ensure_started())
    assert sinks.started and sink.starts == 3  # two refused, one that worked, no double start


async def test_registry_events_count_rebuilds_and_keep_rebuilding_after_a_failure() -> None:
    metrics = Metrics(CollectorRegistry(), process=False)
    events = RegistryEvents(Outages(), metrics, "claimstream.commands.v1")
    events.rebuilding("lost")
    events.failed("lost", ConnectionError("broker gone"))
    rebuilding = metrics.registry.get_sample_value("claimstream_registry_rebuilding")
    assert rebuilding == 1
    events.rebuilt("lost", "repaired", await _a_rebuild())
    assert metrics.registry.get_sample_value("claimstream_registry_rebuilding") == 0
    count = metrics.registry.get_sample_value
    assert count("claimstream_registry_rebuilds_total", {"trigger": "lost", "outcome": "failed"})
    assert count("claimstream_registry_rebuilds_total", {"trigger": "lost", "outcome": "repaired"})


async def _a_rebuild() -> Rebuild:
    async def nothing() -> list[tuple[str, bytes | None]]:
        return []

    return await rebuild(MemoryRegistry(), nothing)
