"""The heap is trimmed when the work stops, and at most every interval while it goes on."""

from __future__ import annotations

import platform
from types import SimpleNamespace
from typing import Any

import pytest

from claimstream.stream.upkeep import Trimmer, install_upkeep, malloc_trim


class Work:
    """The records handled so far, and a clock, both moved by the test."""

    def __init__(self) -> None:
        self.records = 0
        self.now = 0.0

    def trimmer(self, interval: float = 60.0) -> Trimmer:
        return Trimmer(lambda: self.records, interval, clock=lambda: self.now)

    def tick(self, records: int = 0) -> None:
        self.records += records
        self.now += 1.0


def test_an_idle_worker_is_not_trimmed() -> None:
    work = Work()
    trimmer = work.trimmer()
    for _ in range(100):
        work.tick()
        assert not trimmer.due()


async def test_the_heap_is_trimmed_once_when_the_work_stops() -> None:
    work = Work()
    trimmer = work.trimmer()
    work.tick(4000)
    assert not trimmer.due()  # still draining
    work.tick()
    assert trimmer.due()  # the drain ended
    await trimmer.trim(lambda: 1)
    work.tick()
    assert not trimmer.due()  # nothing was done since
    assert trimmer.trims == 1


async def test_a_worker_that_never_stops_is_trimmed_every_interval() -> None:
    work = Work()
    trimmer = work.trimmer(interval=10.0)
    due_at: list[float] = []
    for _ in range(30):
        work.tick(100)
        if trimmer.due():
            due_at.append(work.now)
            await trimmer.trim(lambda: 0)
    assert due_at == [10.0, 20.0, 30.0]


def test_an_interval_of_zero_installs_no_trimming() -> None:
    def no_timer(*_: Any) -> Any:
        raise AssertionError("a timer was installed")

    assert install_upkeep(SimpleNamespace(timer=no_timer), interval=0, handled=lambda: 0) is None


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_glibc_s_malloc_trim_is_found_and_runs() -> None:
    trim = malloc_trim()
    assert trim is not None
    assert trim() in (0, 1)
