"""The shared retry of output writes: on until written, given up only by a stopping worker."""

from __future__ import annotations

import pytest

from claimstream.stream import retry
from claimstream.stream.retry import write_until_done


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
