"""The shared retry of output writes: on until written, given up only by a stopping worker."""

from __future__ import annotations

import asyncio
import logging

import pytest

from claimstream.stream import retry
from claimstream.stream.retry import Outages, write_until_done


class Flaky:
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("down")


async def test_a_failing_write_is_retried_until_it_succeeds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(retry, "FIRST_DELAY", 0.001)
    attempt = Flaky(failures=3)
    await write_until_done("sink test", attempt, lambda: False)
    assert attempt.calls == 4


async def test_a_stopping_worker_gives_up_with_the_error() -> None:
    attempt = Flaky(failures=1)
    with pytest.raises(ConnectionError):
        await write_until_done("sink test", attempt, lambda: True)
    assert attempt.calls == 1


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(retry, "FIRST_DELAY", 0.001)
    caplog.set_level(logging.DEBUG, logger=retry.__name__)
    await write_until_done("sink registry", Flaky(failures=6), lambda: False)
    logged = warnings(caplog)
    messages = [r.getMessage() for r in logged]
    assert len(messages) == 2, messages
    assert messages[0].startswith("sink registry is failing (ConnectionError: down)")
    assert messages[1].startswith("sink registry is back after ")
    assert all(r.exc_info is None for r in logged)  # a refused connection: no traceback


async def test_an_unexpected_error_brings_its_traceback_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(retry, "FIRST_DELAY", 0.001)
    calls = 0

    async def buggy() -> None:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise KeyError("a bug in the sink")

    await write_until_done("sink registry", buggy, lambda: False)
    with_traceback = [r for r in warnings(caplog) if r.exc_info is not None]
    assert len(with_traceback) == 1


async def test_writers_sharing_outages_log_one_outage_between_them(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(retry, "FIRST_DELAY", 0.001)
    changes: list[tuple[str, bool]] = []
    outages = Outages(lambda what, up: changes.append((what, up)))
    await asyncio.gather(
        *(
            write_until_done("sink registry", Flaky(failures=3), lambda: False, outages)
            for _ in range(3)
        )
    )
    assert len(warnings(caplog)) == 2
    assert changes == [("sink registry", False), ("sink registry", True)]
