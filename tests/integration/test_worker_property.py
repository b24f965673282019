"""docs/time.md §8 through a real worker: one extra event, whatever its time and wherever it is
inserted, changes no other key's alerts.

Each example is a broker and a worker run, so the examples are few: a table of hand-picked
insertions, and two hypothesis draws (derandomized: the same on every run). The table: an event
dated in 2099 (the worker refuses it: `future_timestamp`), one in 1900 (refused before the
rules: `implausible_timestamp`) and one three weeks ahead of the stream (accepted: it reaches
every rule of its keys), each inserted at the start, in the middle and at the end of a month
produced at once to 8 partitions and drained with the default 1 h lateness. The copies take the
subjects of events of the stream (so they land on busy keys) and ids of their own. Every alert
not about one of their keys must be one `replay` gives for the month without them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claimstream.devtools.localbroker import LocalBroker
from claimstream.rules import RULES
from tests.detection.test_replay_property import any_time
from tests.integration.stream_support import WorkerProcess, produce, read_topic
from tests.integration.test_backlog import (
    ALERTS,
    PARTITIONS,
    Expected,
    describe,
    messages,
    month,
    outputs_settle,
    replayed,
    without,
    worker_env,
)
from tests.support.brokers import start_broker_with_topics

pytestmark = pytest.mark.integration

EVENTS = 12_000
END = datetime.fromisoformat("2026-03-01T14:00:00+08:00")


@pytest.fixture
def broker(broker_at: Callable[[int], LocalBroker]) -> LocalBroker:
    """A broker of its own per example, its topics at 8 partitions."""
    return broker_at(PARTITIONS)


@pytest.fixture(scope="module")
def base() -> tuple[list[bytes], Expected]:
    lines = month(END, count=EVENTS, seed=5)
    expected = replayed(lines)
    assert {"doctor_consultation_rate", "institution_cost_jump"} <= expected.rules
    return lines, expected


def ahead(stream: list[dict[str, Any]]) -> str:
    latest = max(datetime.fromisoformat(e["occurred_at"]) for e in stream)
    return (latest + timedelta(weeks=3)).isoformat()


TIMES = {
    "2099": lambda stream: "2099-06-01T12:00:00+08:00",
    "1900": lambda stream: "1900-06-01T12:00:00+08:00",
    "three weeks ahead": ahead,
}


def about(alert: dict[str, Any], extras: list[dict[str, Any]]) -> bool:
    """Whether `alert` is about one of the extra events' keys (as in the replay property)."""
    for extra in extras:
        ids = {
            "patient": extra["patient_id"],
            "doctor": extra.get("doctor_id"),
            "institution": extra["institution_id"],
        }
        subject = alert["subject"]
        kind = RULES[alert["rule"]].key_kind
        if subject["id"] == ids[subject["kind"]] or alert.get(f"{kind}_id") == ids[kind]:
            return True
    return False


def extras_of(stream: list[dict[str, Any]], occurred: str, count: int) -> list[dict[str, Any]]:
    """`count` copies of consultations spread over the stream (a consultation has a doctor: its
    copy reaches patient, doctor and institution rules), dated `occurred`, with ids of their own."""
    visits = [i for i, e in enumerate(stream) if e["event_type"] == "consultation"]
    return [
        {
            **stream[visits[min(len(visits) - 1, n * len(visits) // count)]],
            "event_id": f"extra-{n}",
            "occurred_at": occurred,
        }
        for n in range(count)
    ]


def check_other_keys(
    broker: LocalBroker,
    lines: list[bytes],
    expected: Expected,
    inserts: list[tuple[int, dict[str, Any]]],
    log: Path,
) -> None:
    """Produce `lines` with each (position, extra) of `inserts` inserted, drain them with one
    worker, and compare the alerts about other keys with `expected` (replay without extras)."""
    extras = [extra for _, extra in inserts]
    inserted = list(lines)
    for at, extra in sorted(inserts, key=lambda pair: pair[0], reverse=True):
        inserted.insert(at, orjson.dumps(extra))
    produce(broker.bootstrap, messages(inserted))
    worker = WorkerProcess(broker.url, env=worker_env(), log_path=log)
    others = {raw for raw in expected.alerts if not about(orjson.loads(raw), extras)}
    assert others, "some alerts are about other keys"
    try:
        worker.start()
        outputs_settle(broker.bootstrap, Expected(others, set(), set()), timeout=300)
        streamed = [v for _, v in read_topic(broker.bootstrap, ALERTS)]
    finally:
        worker.stop()
    got = {without(a, "detected_at") for a in streamed if not about(a, extras)}
    assert got == others, describe(got, others)


@pytest.mark.parametrize("when", list(TIMES))
def test_an_extra_event_at_any_time_changes_no_other_keys_alerts_through_the_worker(
    broker: LocalBroker, base: tuple[list[bytes], Expected], tmp_path: Path, when: str
) -> None:
    lines, expected = base
    stream = [orjson.loads(line) for line in lines]
    extras = extras_of(stream, TIMES[when](stream), 3)
    positions = [0, len(lines) // 2, len(lines)]
    check_other_keys(
        broker, lines, expected, list(zip(positions, extras, strict=True)), tmp_path / "w.log"
    )


#: a time the decoder accepts: anywhere in its plausible range, or near the stream's end
drawn_times = any_time() | st.integers(-30 * 24, 30 * 24).map(
    lambda hours: (END + timedelta(hours=hours)).isoformat()
)


@settings(
    max_examples=2,
    deadline=None,
    derandomize=True,  # the same examples on every run: each one is a broker and a worker
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(occurred=drawn_times, where=st.floats(0.0, 1.0))
def test_a_drawn_extra_event_changes_no_other_keys_alerts_through_the_worker(
    base: tuple[list[bytes], Expected], tmp_path: Path, occurred: str, where: float
) -> None:
    """The property of the replay test (hypothesis), through a worker, for a month of 12 000
    events: one extra event at a drawn time, inserted at a drawn position."""
    lines, expected = base
    stream = [orjson.loads(line) for line in lines]
    [extra] = extras_of(stream, occurred, 1)
    broker = start_broker_with_topics(PARTITIONS)
    try:
        log = tmp_path / f"w-{abs(hash((occurred, where)))}.log"
        check_other_keys(broker, lines, expected, [(int(where * len(lines)), extra)], log)
    finally:
        broker.stop()
