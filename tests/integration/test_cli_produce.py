"""`claimstream produce` against Tansu: every record on its family's topic, keyed by its
patient, on the partition Java's murmur2 partitioner gives that key; and a record another
producer keyed wrongly still reaches its patient's state in a worker (re-keyed by it)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from claimstream.cli.main import main
from claimstream.devtools.localbroker import LocalBroker
from claimstream.kafka.reader import TopicReader, TopicRecord
from claimstream.kafka.topology import Topology
from tests.cli.support import simulated, write_lines
from tests.integration.stream_support import (
    WorkerProcess,
    produce,
    read_topic,
    start_broker,
    wait_outputs,
)
from tests.kafka.test_actions import java_partition

pytestmark = pytest.mark.integration
FAMILY_TOPIC = {
    "dispense": "settlement.dispensing.v1",
    "consultation": "settlement.consultations.v1",
    "admission": "settlement.stays.v1",
    "discharge": "settlement.stays.v1",
    "claim": "settlement.claims.v1",
}


def read_all(bootstrap: str, topic: str) -> list[TopicRecord]:
    async def read() -> list[TopicRecord]:
        async with TopicReader(bootstrap, topic) as reader:
            return await reader.read_new()

    return asyncio.run(read())


@pytest.fixture(scope="module")
def produced(
    local_broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[list[dict[str, Any]], dict[str, list[TopicRecord]], int, str]]:
    events = simulated(1500, seed=23)
    lines: list[bytes | dict[str, Any]] = [*events[:700], b"{not json", *events[700:]]
    path = write_lines(tmp_path_factory.mktemp("produce") / "events.jsonl", lines)
    code = main(["produce", str(path), "--bootstrap", local_broker.url])
    topics = {name: read_all(local_broker.bootstrap, name) for name in set(FAMILY_TOPIC.values())}
    yield events, topics, code, local_broker.bootstrap


def test_every_valid_line_is_published_once_and_the_invalid_one_is_not(
    produced: tuple[list[dict[str, Any]], dict[str, list[TopicRecord]], int, str],
) -> None:
    events, topics, code, _ = produced
    assert code == 1  # one refused line
    published = sorted(
        orjson.loads(r.value or b"")["event_id"] for rs in topics.values() for r in rs
    )
    assert published == sorted(e["event_id"] for e in events)


def test_every_record_is_on_its_familys_topic_keyed_by_its_patient(
    produced: tuple[list[dict[str, Any]], dict[str, list[TopicRecord]], int, str],
) -> None:
    _, topics, _, _ = produced
    for topic, records in topics.items():
        for record in records:
            event = orjson.loads(record.value or b"")
            assert FAMILY_TOPIC[event["event_type"]] == topic
            assert record.key == event["patient_id"].encode()


def test_every_record_is_on_the_partition_javas_partitioner_gives_its_key(
    produced: tuple[list[dict[str, Any]], dict[str, list[TopicRecord]], int, str],
    topology: Topology,
) -> None:
    _, topics, _, _ = produced
    misplaced = [
        r.where()
        for topic, records in topics.items()
        for r in records
        if r.partition != java_partition(r.key or b"", topology.topic(topic).partitions)
    ]
    assert misplaced == []
    assert len({r.partition for r in topics["settlement.claims.v1"]}) > 1


def test_the_summary_counts_records_per_topic(
    local_broker: LocalBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = simulated(40, seed=3)
    path = write_lines(tmp_path / "events.jsonl", events)
    assert main(["produce", str(path), "--bootstrap", local_broker.url, "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["published"] == 40 and report["refused"] == 0
    counts = {t: v["records"] for t, v in report["topics"].items()}
    expected: dict[str, int] = {}
    for e in events:
        expected[FAMILY_TOPIC[e["event_type"]]] = expected.get(FAMILY_TOPIC[e["event_type"]], 0) + 1
    assert counts == expected


def test_a_missing_topic_is_a_usage_error(
    bare_broker: LocalBroker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines(tmp_path / "events.jsonl", simulated(3))
    assert main(["produce", str(path), "--bootstrap", bare_broker.url]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert "settlement" not in " ".join(read_topics_list(bare_broker))  # none auto-created


def read_topics_list(broker: LocalBroker) -> list[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    async def names() -> list[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            return list(await admin.list_topics())
        finally:
            await admin.close()

    return asyncio.run(names())


def stay_event(event_id: str, kind: str, at: datetime, stay: str) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "event_type": kind,
        "occurred_at": at.isoformat(),
        "patient_id": "P-REKEY-1",
        "institution_id": "H7",
        "admission_id": stay,
        "diagnosis_code": "J18.9",
    }


def test_a_wrongly_keyed_record_from_another_producer_reaches_its_patients_state(
    tmp_path: Path,
) -> None:
    broker = start_broker()
    worker = WorkerProcess(broker.url, log_path=tmp_path / "worker.log")
    try:
        worker.start()
        discharged = datetime.now(UTC) - timedelta(days=2)
        ours = write_lines(
            tmp_path / "ours.jsonl",
            [
                stay_event("E-ADM-1", "admission", discharged - timedelta(days=3), "S1"),
                stay_event("E-DIS-1", "discharge", discharged, "S1"),
            ],
        )
        assert main(["produce", str(ours), "--bootstrap", broker.url]) == 0
        # someone else's producer keys the readmission by the institution, not the patient
        readmission = stay_event("E-ADM-2", "admission", discharged + timedelta(hours=10), "S2")
        produce(broker.bootstrap, [("settlement.stays.v1", b"H7", orjson.dumps(readmission))])

        def readmitted(alerts: list[Any]) -> bool:
            return any(
                v["rule"] == "readmission_24h" and v["subject"]["id"] == "P-REKEY-1"
                for _, v in alerts
            )

        alerts = wait_outputs(broker.bootstrap, "claimstream.alerts.v1", readmitted, timeout=120)
        found = [v for _, v in alerts if v["rule"] == "readmission_24h"]
        log = (tmp_path / "worker.log").read_text(errors="replace")
        assert found, f"no readmission alert; worker log tail:\n{log[-3000:]}"
        assert set(found[0]["event_ids"]) >= {"E-DIS-1", "E-ADM-2"}
        rekeyed = read_topic(broker.bootstrap, "claimstream.repartition.patient")
        assert (b"P-REKEY-1", readmission) in rekeyed  # it went the re-keying way
    finally:
        worker.stop()
        broker.stop()
