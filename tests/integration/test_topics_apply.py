"""`claimstream topics apply` against a real broker: creates, is idempotent, reports drift."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from claimstream.cli.main import main
from claimstream.devtools.localbroker import LocalBroker
from claimstream.kafka.admin import apply_topics
from claimstream.kafka.topology import Topology

pytestmark = pytest.mark.integration


def test_apply_creates_everything_then_reports_no_drift(
    bare_broker: LocalBroker, topology: Topology, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["topics", "apply", "--bootstrap", bare_broker.url]
    assert main([*args, "--check"]) == 1  # nothing there yet
    assert f"{len(topology.topics)} missing" in capsys.readouterr().out

    assert main(args) == 0
    first = capsys.readouterr().out
    assert f"{len(topology.topics)} created" in first

    assert main([*args, "--check"]) == 0
    second = capsys.readouterr().out
    assert f"{len(topology.topics)} ok" in second
    assert "drift" not in second


async def test_partition_count_created_by_hand_is_drift(
    bare_broker: LocalBroker, topology: Topology
) -> None:
    wrong = topology.topic("settlement.dispensing.v1")
    admin = AIOKafkaAdminClient(bootstrap_servers=bare_broker.bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(wrong.name, wrong.partitions + 1, 1)])
    finally:
        await admin.close()

    report = await apply_topics(bare_broker.bootstrap, topology)
    (status,) = [t for t in report.topics if t.name == wrong.name]
    assert status.status == "drift"
    assert status.actual_partitions == wrong.partitions + 1
    assert f"partitions {wrong.partitions + 1}, declared {wrong.partitions}" in status.problems
    others = [t for t in report.topics if t.name != wrong.name]
    assert {t.status for t in others} == {"created"}
    assert "drift" in report.format_table()


def test_check_exits_nonzero_on_drift(
    bare_broker: LocalBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["topics", "apply", "--bootstrap", bare_broker.bootstrap]
    assert main([*args, "--partitions", "2"]) == 0
    capsys.readouterr()
    assert main([*args, "--check"]) == 1  # the file says 8
    assert "partitions 2, declared 8" in capsys.readouterr().out


async def test_config_drift_is_reported(bare_broker: LocalBroker, topology: Topology) -> None:
    spec = topology.topic("claimstream-state-patient-changelog")
    admin = AIOKafkaAdminClient(bootstrap_servers=bare_broker.bootstrap)
    await admin.start()
    try:
        config = {"cleanup.policy": "delete"}
        await admin.create_topics([NewTopic(spec.name, spec.partitions, 1, topic_configs=config)])
    finally:
        await admin.close()
    report = await apply_topics(bare_broker.bootstrap, topology)
    (status,) = [t for t in report.topics if t.name == spec.name]
    assert status.status == "drift"
    assert "cleanup.policy=delete, declared compact" in status.problems
