"""The live-keys gauge reads a bounded sample of states and scales it up."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from claimstream.stream import gauges
from claimstream.stream.encoded import EncodedStates


class Recorded:
    rules = ("repeat_dispensing", "duplicate_exam")

    def __init__(self) -> None:
        self.keys: dict[str, int] = {}

    def set_state_keys(self, rule: str, count: int) -> None:
        self.keys[rule] = count


class Counting(EncodedStates):
    """States that count how many of them are read (each read decodes)."""

    reads = 0

    def get(self, key: Any, default: Any = None) -> Any:
        Counting.reads += 1
        return super().get(key, default)


def table(n: int, rules: dict[str, int]) -> Any:
    data = Counting()
    for i in range(n):
        data[f"P{i}"] = {"r": {f"{rule}@v1": {} for rule, every in rules.items() if i % every == 0}}
    return SimpleNamespace(data=data)


async def test_a_small_table_is_counted_exactly() -> None:
    metrics = Recorded()
    await gauges._live_keys([table(300, {"repeat_dispensing": 1, "duplicate_exam": 3})], metrics)  # type: ignore[arg-type]
    assert metrics.keys == {"repeat_dispensing": 300, "duplicate_exam": 100}


async def test_a_large_table_is_estimated_from_a_bounded_sample() -> None:
    metrics = Recorded()
    Counting.reads = 0
    n = 4 * gauges._STATE_SAMPLE
    await gauges._live_keys([table(n, {"repeat_dispensing": 1, "duplicate_exam": 3})], metrics)  # type: ignore[arg-type]
    assert Counting.reads <= gauges._STATE_SAMPLE
    assert metrics.keys["repeat_dispensing"] == n
    assert abs(metrics.keys["duplicate_exam"] - n / 3) <= n * 0.01


async def test_the_event_loop_turns_while_the_live_keys_are_sampled() -> None:
    Counting.reads = 0
    reads_seen: list[int] = []

    async def watch() -> None:  # what another task (a check) sees when the loop turns
        while True:
            reads_seen.append(Counting.reads)
            await asyncio.sleep(0)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(0)
    await gauges._live_keys([table(3 * gauges._STATE_STEP, {"duplicate_exam": 1})], Recorded())  # type: ignore[arg-type]
    watcher.cancel()
    assert any(0 < reads < 3 * gauges._STATE_STEP for reads in reads_seen)
