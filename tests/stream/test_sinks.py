"""The worker's output sinks as one set (`claimstream.stream.sinks`)."""

from __future__ import annotations

import pytest

from claimstream.detection.sinks.base import Outputs
from claimstream.detection.sinks.memory import MemorySink
from claimstream.stream.sinks import SinkSet


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
