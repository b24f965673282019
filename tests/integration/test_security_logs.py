"""No patient, doctor or institution id in a worker's log at any level, nor in `/status` or
`/metrics` (issue #12), on the real broker.

A worker runs at `CLAIMSTREAM_LOG_LEVEL=DEBUG` over `claimstream simulate` events (alerts,
sanctions, commands), an unsigned unfreeze of a simulated patient put straight on the actions
topic (refused), and API calls naming simulated ids (refused without a token, answered with
one); then its whole log is searched for every id the events carry.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import pytest

from claimstream.devtools.simulate import Simulator
from claimstream.kafka.actions import ACTIONS_TOPIC
from claimstream.model.outputs import Scope
from claimstream.sanctions.actions import ManualUnfreeze
from claimstream.sanctions.codec import action_key, action_to_dict
from tests.integration.stream_support import (
    WorkerProcess,
    event_messages,
    produce,
    read_topic,
    recent_start,
    start_broker,
    wait_for,
)

pytestmark = pytest.mark.integration

EVENTS = 600


@dataclass
class Run:
    ids: set[str]
    log: str
    status: str
    metrics: str


def fetch(worker: WorkerProcess, path: str, token: bool) -> tuple[int, bytes]:
    headers = worker.auth() if token else {}
    request = urllib.request.Request(f"http://127.0.0.1:{worker.port}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    log_path = tmp_path_factory.mktemp("security-logs") / "worker.log"
    events = list(Simulator(EVENTS, seed=5, start=recent_start(), inject_every=150).events())
    ids = {e[k] for e in events for k in ("patient_id", "doctor_id", "institution_id") if e.get(k)}
    patient = events[0]["patient_id"]
    broker = start_broker()
    worker = WorkerProcess(broker.url, env={"CLAIMSTREAM_LOG_LEVEL": "DEBUG"}, log_path=log_path)
    try:
        worker.start()
        wait_for(lambda: worker.status() is not None, 120, "the worker's web server")
        produce(broker.bootstrap, event_messages(events))
        unfreeze = ManualUnfreeze(
            Scope("patient", patient), "appeal", "x", datetime.now(UTC).isoformat()
        )
        record = orjson.dumps(action_to_dict(unfreeze))
        produce(broker.bootstrap, [(ACTIONS_TOPIC, action_key(unfreeze).encode(), record)])
        worker.wait_records(EVENTS, timeout=120)
        wait_for(
            lambda: [
                v
                for _, v in read_topic(broker.bootstrap, "claimstream.dead-letter.v1")
                if v["reason"] == "unsigned_action"
            ],
            60,
            "the unsigned unfreeze refused",
        )
        assert read_topic(broker.bootstrap, "claimstream.alerts.v1"), "no alert: nothing tested"
        paths = ("/subjects/patient/{}", "/freezes/patient/{}", "/subjects/patient/{}/alerts",
                 "/subjects/nosuchkind/{}")  # fmt: skip
        for path in (p.format(patient) for p in paths):
            assert fetch(worker, path, token=False)[0] == 401
            assert fetch(worker, path, token=True)[0] in (200, 400, 404)
        status = fetch(worker, "/status", token=False)[1].decode()
        metrics = fetch(worker, "/metrics", token=False)[1].decode()
        assert worker.stop() == 0
        yield Run(ids, log_path.read_text(errors="replace"), status, metrics)
    finally:
        worker.stop()
        broker.stop()


def found(ids: set[str], text: str) -> list[str]:
    return sorted(i for i in ids if i in text)


def test_a_worker_at_debug_writes_no_id_of_the_events_it_handled(run: Run) -> None:
    assert "[DEBUG]" in run.log  # it did log at DEBUG
    assert "API call refused (401)" in run.log  # and the refusals were logged
    assert found(run.ids, run.log) == []


def test_status_holds_no_id(run: Run) -> None:
    assert '"records"' in run.status
    assert found(run.ids, run.status) == []


def test_metrics_hold_no_id(run: Run) -> None:
    assert "claimstream_refused_actions_total" in run.metrics
    assert found(run.ids, run.metrics) == []
