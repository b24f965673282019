"""The check-latency figure's pure parts (`claimstream.devtools.bench`): which checks are sent,
and how the figure is reported. The figure itself is a command (`make bench`), not a test."""

from __future__ import annotations

from collections import Counter

import orjson

from claimstream.devtools.bench import check_bodies, check_report


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
