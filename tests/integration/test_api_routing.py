"""Key routing of the API's reads between two live workers on the real broker.

A subject's sanctions state lives on the worker owning its partition, an alert's index entry
on the owner of its alert partition; asking either worker gives the same answer, from the owner
(the other forwards the GET once), as `X-Claimstream-Worker` and faust's own `/router/` table
show.
"""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from claimstream.cli.main import main
from claimstream.devtools.localbroker import LocalBroker
from claimstream.kafka.actions import partition_of
from claimstream.kafka.topology import Topology
from tests.integration.stream_support import WorkerProcess, person_key, wait_for

pytestmark = pytest.mark.integration

SUBJECT_CHANGELOG = "claimstream-state-subject-changelog"
ALERT_CHANGELOG = "claimstream-alert-index-changelog"
TOKEN = "routing-token"


def get(
    worker: WorkerProcess, path: str, post: dict[str, Any] | None = None
) -> tuple[int, Any, dict[str, str]]:
    request = urllib.request.Request(f"http://127.0.0.1:{worker.port}{path}", headers=worker.auth())
    if post is not None:
        request.data = orjson.dumps(post)
        request.method = "POST"
        request.add_header("Authorization", f"Bearer {TOKEN}")
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, orjson.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read()), dict(exc.headers)


@pytest.fixture(scope="module")
def workers(
    local_broker: LocalBroker, topology: Topology, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[WorkerProcess, WorkerProcess]]:
    logs = tmp_path_factory.mktemp("api-routing")
    started: list[WorkerProcess] = []
    try:
        for name in ("a", "b"):
            started.append(
                WorkerProcess(
                    local_broker.url,
                    env={
                        "CLAIMSTREAM_PARTITIONS": str(topology.default_partitions),
                        "CLAIMSTREAM_APP_ID": "claimstream-api-routing",
                        "CLAIMSTREAM_DATA_DIR": str(logs / f"data-{name}"),
                        "CLAIMSTREAM_AUDIT_ENABLED": "false",
                        "CLAIMSTREAM_API_TOKEN": TOKEN,
                    },
                    log_path=logs / f"worker-{name}.log",
                ).start()
            )
        a, b = started
        wait_for(lambda: _split(a, b, logs, topology), 120, "both workers to share partitions")
        yield a, b
    finally:
        for worker in started:
            worker.stop()


def _split(a: WorkerProcess, b: WorkerProcess, logs: Path, topology: Topology) -> bool:
    """Both workers up, each holding some of the subject table's partitions, together all."""
    held: list[set[int]] = []
    for worker, name in ((a, "a"), (b, "b")):
        assert worker.proc is not None
        if worker.proc.poll() is not None:
            log = (logs / f"worker-{name}.log").read_text()[-4000:]
            raise AssertionError(f"worker {name} exited:\n{log}")
        try:
            status, tables, _ = get(worker, "/router/")
        except OSError:
            return False
        if status != 200:
            return False
        mine = tables.get(f"http://127.0.0.1:{worker.port}", {})
        held.append(set(mine.get(SUBJECT_CHANGELOG, [])))
    everything = set(range(topology.default_partitions))
    return all(held) and held[0] | held[1] == everything and not held[0] & held[1]


def owner_of(worker: WorkerProcess, partition: int, changelog: str = SUBJECT_CHANGELOG) -> str:
    _, tables, _ = get(worker, "/router/")
    [url] = [url for url, t in tables.items() if partition in t.get(changelog, [])]
    return str(url)


def alert(institution: str, alert_id: str) -> dict[str, Any]:
    now = datetime.now(ZoneInfo("Asia/Shanghai")).isoformat(timespec="seconds")
    return {
        "schema": "alert.v1",
        "alert_id": alert_id,
        "rule": "readmission_24h",
        "rule_version": 1,
        "severity": "high",
        "subject": {"kind": "patient", "id": f"P-{alert_id}"},
        "patient_id": f"P-{alert_id}",
        "institution_id": institution,
        "doctor_id": f"D-{institution}",
        "department_id": "K1",
        "event_ids": [f"e-{alert_id}"],
        "occurred_at": now,
        "detected_at": now,
        "message": "readmitted within 24 hours",
        "details": {"amount": 300.0},
    }


def produce_alerts(bootstrap: str, alerts: list[dict[str, Any]]) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
        await producer.start()
        try:
            for a in alerts:
                key = a["subject"]["id"].encode()
                await producer.send_and_wait("claimstream.alerts.v1", orjson.dumps(a), key=key)
        finally:
            await producer.stop()

    asyncio.run(run())


def test_either_worker_answers_from_the_owner(
    workers: tuple[WorkerProcess, WorkerProcess], local_broker: LocalBroker, topology: Topology
) -> None:
    a, b = workers
    # institutions on both workers' partitions, so each worker forwards at least once
    partitions = topology.default_partitions
    ids = [f"H-route-{i}" for i in range(12)]
    produce_alerts(local_broker.bootstrap, [alert(h, f"alt-{h}") for h in ids])
    for h in ids:
        wait_for(
            lambda h=h: get(a, f"/subjects/institution/{h}")[0] == 200,  # type: ignore[misc]
            60,
            f"institution {h}'s standing",
        )
    forwarded = {f"http://127.0.0.1:{a.port}": 0, f"http://127.0.0.1:{b.port}": 0}
    for h in ids:
        owner = owner_of(a, partition_of(f"institution:{h}".encode(), partitions))
        assert owner_of(b, partition_of(f"institution:{h}".encode(), partitions)) == owner
        for path in (
            f"/subjects/institution/{h}",
            f"/subjects/institution/{h}/alerts",
            f"/institutions/{h}",
        ):
            answers = [get(worker, path) for worker in (a, b)]
            for status, _, headers in answers:
                assert status == 200, (path, answers)
                assert headers["X-Claimstream-Worker"] == owner
            assert answers[0][1] == answers[1][1]
            for (_, _, headers), worker in zip(answers, (a, b), strict=True):
                asked = f"http://127.0.0.1:{worker.port}"
                if asked != owner:
                    assert headers["X-Claimstream-Forwarded"] == asked
                    forwarded[asked] += 1
        _, body, _ = get(a, f"/subjects/institution/{h}/alerts")
        assert [x["alert_id"] for x in body["alerts"]] == [f"alt-{h}"]
    assert all(forwarded.values()), forwarded


def test_either_worker_answers_an_alert_from_its_owner(
    workers: tuple[WorkerProcess, WorkerProcess], local_broker: LocalBroker, topology: Topology
) -> None:
    a, b = workers
    partitions = topology.topic("claimstream.repartition.alert").partitions
    ids = [f"alt-get-{i}" for i in range(12)]  # on both workers' partitions
    produce_alerts(local_broker.bootstrap, [alert("H-get", i) for i in ids])
    for alert_id in ids:
        wait_for(
            lambda i=alert_id: get(a, f"/alerts/{i}")[0] == 200,  # type: ignore[misc]
            60,
            f"alert {alert_id} in the index",
        )
    forwarded = 0
    for alert_id in ids:
        owner = owner_of(a, partition_of(alert_id.encode(), partitions), ALERT_CHANGELOG)
        answers = [get(worker, f"/alerts/{alert_id}") for worker in (a, b)]
        for status, body, headers in answers:
            assert status == 200, answers
            assert headers["X-Claimstream-Worker"] == owner
            assert body["alert_id"] == alert_id and body["status"] == "open"
            forwarded += "X-Claimstream-Forwarded" in headers
        assert answers[0][1] == answers[1][1]
    assert forwarded == len(ids)  # exactly one of the two workers forwarded each read


def test_an_unknown_alert_is_a_json_404_from_either_worker(
    workers: tuple[WorkerProcess, WorkerProcess],
) -> None:
    for worker in workers:
        status, body, _ = get(worker, "/alerts/alt-never-seen")
        assert status == 404
        assert body["key"] == "alt-never-seen"
        assert "no alert alt-never-seen is held" in body["error"]


def test_a_review_posted_to_any_worker_shows_on_the_owner(
    workers: tuple[WorkerProcess, WorkerProcess], local_broker: LocalBroker
) -> None:
    a, b = workers
    produce_alerts(local_broker.bootstrap, [alert("H-review", "alt-review")])
    path = "/subjects/institution/H-review/alerts"
    wait_for(lambda: get(a, path)[0] == 200, 60, "the alert on its institution")
    body = {"verdict": "confirmed", "by": "li.na", "note": "checked the records"}
    for worker in (a, b):  # the same verdict through both workers: one action, applied once
        status, answer, _ = get(
            worker, "/alerts/alt-review/review", post=body | {"at": "2026-03-01T10:00:00+08:00"}
        )
        assert status == 202, answer

    def confirmed() -> bool:
        status, found, _ = get(b, f"{path}?status=confirmed")
        return status == 200 and [x["alert_id"] for x in found["alerts"]] == ["alt-review"]

    wait_for(confirmed, 60, "the verdict in the institution's alerts")
    status, found, _ = get(a, f"{path}?status=open")
    assert status == 200 and found["alerts"] == []


def test_cli_unfreeze_lifts_the_freeze_the_api_shows(
    workers: tuple[WorkerProcess, WorkerProcess],
    local_broker: LocalBroker,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """A rule that freezes at once (readmission_24h) leaves the institution frozen; a manual
    unfreeze from the command line ends it, as both workers then answer."""
    a, b = workers
    produce_alerts(local_broker.bootstrap, [alert("H-unfreeze", "alt-unfreeze")])
    path = "/subjects/institution/H-unfreeze"

    def level(worker: WorkerProcess) -> str | None:
        status, body, _ = get(worker, path)
        return body["level"] if status == 200 else None

    wait_for(lambda: level(a) == "frozen", 60, "the institution frozen")
    code = main(
        ["unfreeze", "institution:H-unfreeze", "--ground", "appeal", "--by", "wang.fang",
         "--reason", "appeal upheld", "--bootstrap", local_broker.bootstrap,
         "--signing-key", str(person_key(tmp_path))]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    wait_for(lambda: level(b) not in (None, "frozen"), 60, "the freeze lifted")
    status, body, _ = get(a, path)
    assert status == 200 and body["freezes"] == [] and body["frozen_until"] is None
