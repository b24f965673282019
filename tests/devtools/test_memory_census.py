"""The memory census's pure parts (`claimstream.devtools.memory_census`): who holds what and
where an allocation is charged. The census of a worker is a command, not a test."""

from __future__ import annotations

import gc
from pathlib import Path

import orjson

from claimstream.devtools.memory_census import (
    big_containers,
    census,
    compare_lines,
    owner_of,
    peak_census,
)


class Processor:
    def __init__(self) -> None:
        self.homes = {f"P{i}": i % 8 for i in range(50)}  # strings and ints: not tracked


def test_a_large_untracked_map_is_named_by_the_attribute_holding_it() -> None:
    holder = Processor()
    assert not gc.is_tracked(holder.homes)
    (found,) = [c for c in big_containers(gc.get_objects(), big=50) if "Processor" in c.owner]
    assert found.owner.endswith("test_memory_census.Processor.homes")
    assert found.entries == 50


def test_an_allocation_is_charged_to_its_innermost_frame_in_a_named_package() -> None:
    frames = [
        ("/v/lib/python3.11/site-packages/faust/agents/agent.py", 10),
        ("/w/src/claimstream/stream/tables.py", 191),
        ("/v/lib/python3.11/json/encoder.py", 5),
    ]
    assert owner_of(frames) == "claimstream/stream/tables.py:191"


def test_an_allocation_outside_every_named_package_is_charged_to_its_line() -> None:
    assert owner_of([("/usr/lib/python3.11/json/encoder.py", 5)]) == "encoder.py:5"


def test_a_census_reports_the_allocators_beside_the_rss() -> None:
    body = census(objects_too=False)
    assert body["rss"] > 0
    assert body["pymalloc"]["allocated"] <= body["pymalloc"]["arenas"]


def write(out: Path, number: int, **body: object) -> None:
    (out / f"census-{number}.json").write_bytes(orjson.dumps(body))


def test_the_peak_is_the_census_with_the_most_traced_memory(tmp_path: Path) -> None:
    for number, traced in ((1, 10), (2, 300), (3, 200)):
        write(tmp_path, number, rss=1, traced=traced)
    assert peak_census(tmp_path) == 2


def test_the_comparison_gives_the_rss_growth_per_patient(tmp_path: Path) -> None:
    write(tmp_path, 1, rss=1_000_000)
    write(tmp_path, 2, rss=1_400_000)
    lines = compare_lines(tmp_path, 1, 2, per=100)
    assert "(4,000 B per patient)" in lines[0]
