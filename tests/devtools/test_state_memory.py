"""The state-memory figure's pure parts (`claimstream.devtools.state_memory`): what is counted
and how it is reported. The figure itself is a command (`make bench`), not a test."""

from __future__ import annotations

import sys

from claimstream.devtools.state_memory import (
    Footprint,
    StoreRun,
    _derivable,
    deep_size,
    footprint_lines,
    store_lines,
)


def test_an_object_shared_by_two_states_is_counted_once() -> None:
    shared = "XA10AE04" * 10
    seen: set[int] = set()
    first = deep_size([[shared]], seen)
    second = deep_size([[shared]], seen)
    assert first - second == sys.getsizeof(shared)


def test_iso_times_and_event_ids_repeated_from_seen_are_derivable() -> None:
    state = {
        "seen": {"ev-1": 1.0},
        "r": {"rule@1": {"rows": [(1.0, "ev-1", "2026-03-06T21:56:29+08:00", "H012")]}},
    }
    assert _derivable(state) == (len("ev-1") + 3) + (len("2026-03-06T21:56:29+08:00") + 3)


def test_rss_per_patient_is_the_rss_growth_over_the_patients_fed() -> None:
    run = StoreRun("memory://", 1024, 8192, 100.0, 104.0, 5000.0, None)
    assert run.kb_per_patient == 4.0


def test_the_report_sets_rocksdb_beside_the_memory_store_with_ratios() -> None:
    runs = [
        StoreRun("memory://", 1024, 8192, 100.0, 108.0, 4000.0, None),
        StoreRun("rocksdb://", 1024, 8192, 100.0, 102.0, 3000.0, 1.024),
    ]
    lines = store_lines(runs)
    assert "8.0 KB per patient" in lines[0]
    assert "2.0 KB per patient" in lines[1] and "1,000 B on disk" in lines[1]
    assert lines[2].strip() == "rocksdb / memory: throughput 0.75 x, RSS per patient 0.25 x"


def test_a_footprint_is_reported_against_its_json() -> None:
    lines = footprint_lines(Footprint(10, 80, 1000.0, 4096.0, 5120.0, {"seen": 100.0}, 250.0))
    assert "Python objects 4.0 KB as the engine holds them (4.1 x the JSON)" in lines[0]
    assert "seen 100" in lines[1] and "250 B (25 %)" in lines[1]
