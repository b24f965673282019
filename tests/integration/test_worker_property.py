"""docs/time.md §8 through a real worker: one extra event, whatever its time and wherever it is
inserted, changes no other key's alerts.

A table of hand-picked insertions rather than hypothesis (each example is a broker and a worker
run): an event dated in 2099 (the worker refuses it: `future_timestamp`), one in 1900 (refused
before the rules: `implausible_timestamp`) and one three weeks ahead of the stream (accepted: it
reaches every rule of its keys), each inserted at the start, in the middle and at the end of a
month produced at once to 8 partitions and drained with the default 1 h lateness. The three
copies take the subjects of three events of the stream (so they land on busy keys) and ids of
their own. Every alert not about one of their keys must be one `replay` gives for the month
without them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from claimstream.devtools.localbroker import LocalBroker
from claimstream.kafka.admin import apply_topics_sync
from claimstream.kafka.topology import load_topology
from claimstream.rules import RULES
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

pytestmark = pytest.mark.integration

EVENTS = 12_000
END = datetime.fromisoformat("2026-03-01T14:00:00+08:00")


@pytest.fixture
def broker(bare_broker: LocalBroker) -> LocalBroker:
    """A broker of its own per example, its topics at 8 partitions."""
    report = apply_topics_sync(bare_broker.bootstrap, load_topology(partitions=PARTITIONS))
    assert report.in_sync, report.format_table()
    return bare_broker


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


@pytest.mark.parametrize("when", list(TIMES))
def test_an_extra_event_at_any_time_changes_no_other_keys_alerts_through_the_worker(
    broker: LocalBroker, base: tuple[list[bytes], Expected], tmp_path: Path, when: str
) -> None:
    lines, expected = base
    stream = [orjson.loads(line) for line in lines]
    occurred = TIMES[when](stream)
    # a consultation has a doctor: its copy reaches patient, doctor and institution rules
    visits = [i for i, e in enumerate(stream) if e["event_type"] == "consultation"]
    positions = [0, len(lines) // 2, len(lines)]
    extras = []
    for n in range(len(positions)):
        donor = stream[visits[min(len(visits) - 1, n * len(visits) // 3)]]
        extras.append({**donor, "event_id": f"extra-{n}", "occurred_at": occurred})
    inserted = list(lines)
    for at, extra in reversed(list(zip(positions, extras, strict=True))):
        inserted.insert(at, orjson.dumps(extra))
    produce(broker.bootstrap, messages(inserted))
    worker = WorkerProcess(broker.url, env=worker_env(), log_path=tmp_path / "worker.log")
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
