"""People's actions on the real broker: `claimstream alerts review`, `claimstream unfreeze`, and
the worker's POST API, each read back from `claimstream.actions.v1` and decoded with
`action_from_dict` into exactly the action that was sent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from claimstream.cli.main import main
from claimstream.devtools.localbroker import LocalBroker
from claimstream.kafka.actions import ACTIONS_TOPIC, partition_of
from claimstream.kafka.topology import Topology
from claimstream.model.outputs import Scope
from claimstream.sanctions.actions import ManualUnfreeze, Verdict
from claimstream.sanctions.codec import action_from_dict
from tests.integration.stream_support import WorkerProcess, read_topic, wait_for
from tests.support.casework import api_call

pytestmark = pytest.mark.integration

TOKEN = "it-token"


def actions_on_topic(broker: LocalBroker) -> list[tuple[bytes, Any]]:
    """Every record of the actions topic, (key, decoded value)."""
    return read_topic(broker.bootstrap, ACTIONS_TOPIC)


def test_alerts_review_publishes_the_verdict(
    local_broker: LocalBroker, topology: Topology, capsys: pytest.CaptureFixture[str]
) -> None:
    at = "2026-03-01T10:00:00+08:00"
    code = main(
        ["alerts", "review", "alt-cli-1", "--verdict", "false_positive", "--by", "li.na",
         "--note", "coded correctly after all", "--at", at, "--bootstrap", local_broker.bootstrap,
         "--no-check"]  # no such alert on the topic: the check is tests/integration/test_cli_alerts
    )  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    expected = Verdict("alt-cli-1", "false_positive", "li.na", at, "coded correctly after all")
    assert f"published {expected.action_id}" in out.out
    partitions = topology.topic(ACTIONS_TOPIC).partitions
    assert f"on {ACTIONS_TOPIC} partition {partition_of(b'alt-cli-1', partitions)}" in out.out
    found = [v for k, v in actions_on_topic(local_broker) if k == b"alt-cli-1"]
    assert [action_from_dict(v) for v in found] == [expected]


def test_unfreeze_publishes_a_manual_unfreeze(
    local_broker: LocalBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    at = "2026-03-02T08:00:00+08:00"
    code = main(
        ["unfreeze", "doctor:D-cli-7:X01", "--reason", "appeal 2026-041 upheld", "--by",
         "wang.fang", "--ground", "appeal", "--at", at, "--bootstrap", local_broker.bootstrap,
         "--json"]
    )  # fmt: skip
    out = capsys.readouterr()
    assert code == 0, out.err
    shown = orjson.loads(out.out)
    expected = ManualUnfreeze(
        Scope("doctor", "D-cli-7", "X01"), "appeal 2026-041 upheld", "wang.fang", at, "appeal"
    )
    assert shown["record"]["action_id"] == expected.action_id
    assert shown["key"] == "doctor:D-cli-7:X01"
    found = [v for k, v in actions_on_topic(local_broker) if k == b"doctor:D-cli-7:X01"]
    assert [action_from_dict(v) for v in found] == [expected]


def test_a_missing_topic_is_reported_not_created(
    local_broker: LocalBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["unfreeze", "institution:H1", "--reason", "r", "--by", "x", "--topic", "no.such.topic",
         "--timeout", "5", "--bootstrap", local_broker.bootstrap]
    )  # fmt: skip
    assert code == 2  # a missing topic is a usage error (docs/cli.md)
    err = capsys.readouterr().err
    assert "nothing published" in err and "no.such.topic" in err


# --- the worker's API ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def worker(
    local_broker: LocalBroker, topology: Topology, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WorkerProcess]:
    log = tmp_path_factory.mktemp("api-worker") / "worker.log"
    process = WorkerProcess(
        local_broker.url,
        env={
            "CLAIMSTREAM_PARTITIONS": str(topology.default_partitions),
            "CLAIMSTREAM_API_TOKEN": TOKEN,
            "CLAIMSTREAM_APP_ID": "claimstream-api-it",
            "CLAIMSTREAM_DATA_DIR": str(log.parent / "data"),
        },
        log_path=log,
    ).start()
    try:
        wait_for(lambda: _running(process, log), 90, "the worker's web server")
        yield process
    finally:
        process.stop()


def _running(process: WorkerProcess, log: Path) -> bool:
    assert process.proc is not None
    if process.proc.poll() is not None:
        raise AssertionError(f"worker exited:\n{log.read_text()[-4000:]}")
    return process.status() is not None


def call(
    worker: WorkerProcess, method: str, path: str, body: Any = None, token: str = TOKEN
) -> tuple[int, Any]:
    return api_call(worker.port, token, method, path, body)


def test_post_review_lands_on_the_actions_topic(
    worker: WorkerProcess, local_broker: LocalBroker
) -> None:
    body = {
        "verdict": "confirmed",
        "by": "li.na",
        "note": "site visit",
        "at": "2026-03-01T10:00:00+08:00",
    }
    status, answer = call(worker, "POST", "/alerts/alt-api-1/review", body, token="wrong")
    assert status == 401
    status, answer = call(worker, "POST", "/alerts/alt-api-1/review", body)
    assert status == 202, answer
    expected = Verdict("alt-api-1", "confirmed", "li.na", "2026-03-01T10:00:00+08:00", "site visit")
    assert answer["action_id"] == expected.action_id
    found = [v for k, v in actions_on_topic(local_broker) if k == b"alt-api-1"]
    assert [action_from_dict(v) for v in found] == [expected]
    assert found[0] == answer["record"]


def test_post_unfreeze_lands_on_the_actions_topic(
    worker: WorkerProcess, local_broker: LocalBroker
) -> None:
    body = {"scope": {"kind": "institution", "id": "H-api-2"}, "reason": "reviewer decision",
            "by": "zhao.lei", "at": "2026-03-03T09:00:00+08:00"}  # fmt: skip
    status, answer = call(worker, "POST", "/unfreeze", body)
    assert status == 202, answer
    expected = ManualUnfreeze(
        Scope("institution", "H-api-2"), "reviewer decision", "zhao.lei",
        "2026-03-03T09:00:00+08:00", "reviewer",
    )  # fmt: skip
    assert answer["action_id"] == expected.action_id
    found = [v for k, v in actions_on_topic(local_broker) if k == b"institution:H-api-2"]
    assert [action_from_dict(v) for v in found] == [expected]


def test_reads_on_a_live_worker(worker: WorkerProcess) -> None:
    """The routes answer on the worker's real web server: a subject nobody ever saw is a 404
    from the owner (this single worker owns every partition once assigned), never a 5xx
    except while the sanctions state is not wired or ready (503)."""
    status, document = call(worker, "GET", "/openapi.json")
    assert status == 200 and "/subjects/{kind}/{id}" in document["paths"]

    def answered() -> tuple[int, Any] | None:
        status, body = call(worker, "GET", "/subjects/institution/H-never-seen")
        return (status, body) if status in (404, 503) else None

    status, body = wait_for(answered, 30, "an answer about an unknown subject")
    if status == 404:
        assert body["key"] == "institution:H-never-seen"
    else:
        assert "sanctions" in body["error"]
    status, body = call(worker, "GET", "/subjects/hospital/H1")
    assert status == 400
