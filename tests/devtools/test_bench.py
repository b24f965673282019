"""`make bench`'s pure parts (`claimstream.devtools.bench`): its options, which checks are sent,
and the shape of the report it prints. The figures themselves come from a command (`make
bench`), not a test: nothing here is timed."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from claimstream.devtools import bench
from claimstream.devtools.bench import (
    CLEAN_DOCTOR,
    CLEAN_INSTITUTION,
    FULL,
    QUICK,
    Drain,
    Shares,
    check_bodies,
    check_report,
    latency_lines,
    parse_args,
    scaling_lines,
)


def stream(count: int) -> list[tuple[str, bytes, bytes, str]]:
    return [
        ("settlement.dispensing.v1", b"P1", orjson.dumps({"event_id": f"e{i}"}), f"e{i}")
        for i in range(count)
    ]


def test_checks_are_the_streams_events_at_the_check_rate_under_another_id() -> None:
    bodies = check_bodies(stream(100), rate=100.0, check_rate=10.0)  # one second of each
    assert [orjson.loads(b)["event_id"] for b in bodies] == [
        f"e{i}-check" for i in range(0, 100, 10)
    ]


def test_a_run_without_answers_says_what_came_back_instead() -> None:
    report = check_report([], Counter({"WorkerUnavailable": 3}), 200.0, 2000.0)
    assert report == "check     no check was answered (WorkerUnavailable 3)"


def test_the_report_gives_p50_and_p99_in_milliseconds() -> None:
    latencies = [0.001 * n for n in range(1, 101)]
    report = check_report(latencies, Counter({"pass": 100}), 200.0, 0)
    assert "on an idle worker (100 answered)  p50 51.0 ms, p99 100.0 ms" in report


def billed(body: bytes) -> tuple[str, str | None]:
    event = orjson.loads(body)
    return event["institution_id"], event.get("doctor_id")


SIMULATED = [
    (
        "settlement.consultations.v1",
        b"P1",
        orjson.dumps({"event_id": f"e{i}", "institution_id": "H003", "doctor_id": "D003-02"}),
        f"e{i}",
    )
    for i in range(10)
]


def test_checks_bill_an_institution_and_a_doctor_no_simulated_event_names() -> None:
    bodies = check_bodies(SIMULATED, rate=10.0, check_rate=10.0)
    assert {billed(b) for b in bodies} == {(CLEAN_INSTITUTION, CLEAN_DOCTOR)}


def test_a_check_of_an_event_without_a_doctor_names_none() -> None:
    without = [
        ("settlement.stays.v1", b"P1", orjson.dumps({"event_id": "e", "institution_id": "H1"}), "e")
    ]
    assert billed(check_bodies(without, rate=1.0, check_rate=1.0)[0]) == (CLEAN_INSTITUTION, None)


def test_checks_of_the_reject_path_keep_the_simulations_billing() -> None:
    bodies = check_bodies(SIMULATED, rate=10.0, check_rate=10.0, clean=False)
    assert {billed(b) for b in bodies} == {("H003", "D003-02")}


def test_the_verdict_counts_come_next_to_the_latency() -> None:
    report = check_report([0.01], Counter({"pass": 1}), 200.0, 2000.0)
    assert report.splitlines()[1].endswith("no event names; verdicts: pass 1")


def test_by_default_the_latency_is_measured_at_2000_and_5000_events_per_second() -> None:
    assert parse_args([]).rate == [2000.0, 5000.0]


def test_offered_loads_given_replace_the_default_ones() -> None:
    assert parse_args(["--rate", "3000"]).rate == [3000.0]


def test_quick_takes_every_sections_small_size() -> None:
    args = parse_args(["--quick"])
    assert {name: getattr(args, name) for name in QUICK} == QUICK


def test_without_quick_every_section_takes_its_full_size() -> None:
    args = parse_args([])
    assert {name: getattr(args, name) for name in FULL} == FULL


def test_a_size_given_wins_over_quick() -> None:
    assert parse_args(["--quick", "--worker-events", "5000"]).worker_events == 5000


def test_the_latency_lines_give_every_alerts_p50_and_p99_then_per_key_kind() -> None:
    measured = [("patient", 0.001 * n) for n in range(1, 101)] + [("doctor", 2.0)]
    lines = latency_lines(5000.0, measured)
    assert lines[0].startswith("latency   event -> alert at 5,000 events/s offered (101 alerts)")
    assert "p50 51 ms, p99 100 ms" in lines[1] and lines[1].strip().startswith("patient")
    assert lines[2].strip().startswith("doctor-keyed rules") and len(lines) == 3


def test_a_load_without_alerts_says_so() -> None:
    assert latency_lines(2000.0, []) == [
        "latency   event -> alert at 2,000 events/s offered: no alert arrived"
    ]


def test_the_scaling_lines_give_two_workers_against_one_as_ratios() -> None:
    one = Drain(1, 1000, 5000.0, 600, 6000.0, (1000,), 0.5, 900)
    two = Drain(2, 1000, 7500.0, 600, 9600.0, (480, 520), 0.5, 950)
    lines = scaling_lines(one, two)
    assert [line[:10] for line in lines] == ["scale     ", "          "] * 2 + ["          "]
    assert "input records 480 + 520" in lines[2]
    assert "counted over the last 950 input records" in lines[3]
    assert lines[4].strip().startswith("2 / 1 workers: input 1.50 x, all work 1.60 x")


def test_a_drain_counted_over_too_few_records_says_so() -> None:
    few = Drain(1, 1000, 5000.0, 600, 6000.0, (1000,), 0.5, 100)
    assert scaling_lines(few, few)[1].endswith("(too few to count: raise --scale-events)")


def test_shares_that_overlap_are_not_the_workers_shares(monkeypatch: pytest.MonkeyPatch) -> None:
    assigned = {1: {"assigned": ["t:0", "t:1"]}, 2: {"assigned": ["t:1"]}}
    monkeypatch.setattr(bench, "status", assigned.get)
    shares = Shares([1, 2], {"t:0", "t:1"}, steady=0.0)
    assert not any(shares() for _ in range(3))


def test_disjoint_shares_covering_the_partitions_are_taken_once_seen_twice(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assigned = {1: {"assigned": ["t:0"]}, 2: {"assigned": ["t:1"]}}
    monkeypatch.setattr(bench, "status", assigned.get)
    shares = Shares([1, 2], {"t:0", "t:1"}, steady=0.0)
    assert [shares(), shares()] == [False, True]


def test_the_core_only_report_prints_the_core_lines_then_the_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bench, "tune_collector", lambda: None)  # leave this process's gc be
    assert bench.main(["--core-only", "--core-events", "300"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["core", "core", "settings"]
    assert "events/s" in lines[0] and "% below the built-ins" in lines[1]
    assert "load average" in lines[2]
