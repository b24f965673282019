"""The pre-settlement check against two live workers, the local broker and a real Redis.

Both workers share the consumer group, so each owns some of the patients' partitions; every
check is posted to both, and the one that does not own the patient forwards it. For every
patient-keyed rule a check of the event completing a case reports the rule's violation, and
publishing the event afterwards yields the same alert; checks change nothing the stream later
alerts (it alerts exactly what `replay` does on the same events). A frozen institution's claim
and a patient's frozen drug are rejected (the freezes in Redis, one written by the stream
itself). Feedback lands on the actions topic, in the audit trail and in the metric, counted
once. Refusals: 400 (the dead-letter reason), 401, 403; 503 is what a worker answers until it
can (the fixture checks every answer before that).
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from claimstream.detection.detector import Detector
from claimstream.devtools.localbroker import LocalBroker
from claimstream.freezes.guard import INTERVAL as GUARD_INTERVAL
from claimstream.freezes.redis import RedisRegistry
from claimstream.kafka.topology import Topology
from claimstream.model.events import Event
from claimstream.model.outputs import Command, Scope
from claimstream.stream.http.access import token_line
from claimstream.testing import T0
from tests.detection.check_scenarios import PATIENT_RULES, PRICELESS, Scenario, benign, scenarios
from tests.integration.stream_support import (
    TEST_TOKEN,
    WorkerProcess,
    detection_config,
    event_messages,
    produce,
    read_topic,
    wait_for,
)
from tests.support.redis_server import RedisServer, RedisServerError
from tests.support.services import unavailable

pytestmark = pytest.mark.integration

SETTLEMENT = "cs_his-settlement-token"
TOKENS = ";".join(
    (token_line("tests", "admin", TEST_TOKEN), token_line("his", "settlement", SETTLEMENT))
)
PREFIX = "check-api"
PATIENT_CHANGELOG = "claimstream-state-patient-changelog"
ALERTS, ACTIONS, AUDIT = "claimstream.alerts.v1", "claimstream.actions.v1", "claimstream.audit.v1"
#: the fields of a violation that must equal those of the alert the stream publishes
SAME = ("rule", "alert_id", "severity", "message", "event_ids", "amount", "legal_basis",
        "behaviour", "lines")  # fmt: skip


def call(
    worker: WorkerProcess,
    path: str,
    body: Any = None,
    *,
    token: str | None = SETTLEMENT,
    method: str | None = None,
) -> tuple[int, Any, dict[str, str]]:
    request = urllib.request.Request(f"http://127.0.0.1:{worker.port}{path}", method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.data = body if isinstance(body, bytes) else orjson.dumps(body)
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, orjson.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read()), dict(exc.headers)


def raw(ev: Event) -> dict[str, Any]:
    return dict(ev.raw)


def url(worker: WorkerProcess) -> str:
    return f"http://127.0.0.1:{worker.port}"


@pytest.fixture(scope="module")
def workers(
    local_broker: LocalBroker,
    topology: Topology,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[WorkerProcess, WorkerProcess]]:
    logs = tmp_path_factory.mktemp("check-api")
    started: list[WorkerProcess] = []
    try:
        for name in ("a", "b"):
            started.append(
                WorkerProcess(
                    local_broker.url,
                    env={
                        "CLAIMSTREAM_PARTITIONS": str(topology.default_partitions),
                        "CLAIMSTREAM_APP_ID": "claimstream-check-api",
                        "CLAIMSTREAM_DATA_DIR": str(logs / f"data-{name}"),
                        "CLAIMSTREAM_REDIS_URL": redis_url,
                        "CLAIMSTREAM_REDIS_PREFIX": PREFIX,
                        "CLAIMSTREAM_API_TOKENS": TOKENS,
                    },
                    log_path=logs / f"worker-{name}.log",
                ).start()
            )
        a, b = started
        early: list[tuple[int, Any, dict[str, str]]] = []

        def checks_answered() -> bool:
            if not _split(a, b, logs, topology):
                return False
            answers = []
            for worker in (a, b):
                try:
                    answers.append(call(worker, "/v1/check", raw(benign("P-probe"))))
                except OSError:
                    return False  # the web server is not up yet
            early.extend(answers)
            return all(status == 200 for status, _, _ in answers)

        # answering since longer than the freeze registry guard's look interval: each guard
        # has looked at the registry since the first rebuild marked it whole (a guard that has
        # not looked yet trusts the registry; one whose first look found it being rebuilt by
        # the other worker refuses until its next look)
        answering_since: list[float] = []

        def checks_answered_steadily() -> bool:
            if not checks_answered():
                answering_since.clear()
                return False
            answering_since[:1] = answering_since[:1] or [time.monotonic()]
            return time.monotonic() - answering_since[0] > GUARD_INTERVAL + 1

        wait_for(checks_answered_steadily, 180, "both workers to answer checks", interval=0.5)
        for status, body, headers in early:  # until then: 503, come back later
            assert status in (200, 503), (status, body)
            if status == 503:
                assert "Retry-After" in headers and body["error"]
        yield a, b
    finally:
        for worker in started:
            worker.stop()


def _split(a: WorkerProcess, b: WorkerProcess, logs: Path, topology: Topology) -> bool:
    """Both workers up, each holding some of the patient table's partitions, together all."""
    held: list[set[int]] = []
    for worker, name in ((a, "a"), (b, "b")):
        assert worker.proc is not None
        if worker.proc.poll() is not None:
            log = (logs / f"worker-{name}.log").read_text()[-4000:]
            raise AssertionError(f"worker {name} exited:\n{log}")
        try:
            status, tables, _ = call(worker, "/router/", token=TEST_TOKEN)
        except OSError:
            return False
        if status != 200:
            return False
        held.append(set(tables.get(url(worker), {}).get(PATIENT_CHANGELOG, [])))
    everything = set(range(topology.default_partitions))
    return all(held) and held[0] | held[1] == everything and not held[0] & held[1]


def patient_records(*workers: WorkerProcess) -> int:
    total = 0
    for worker in workers:
        status = worker.status() or {}
        total += int(status.get("records_by_kind", {}).get("patient", 0))
    return total


def check_on_both(
    a: WorkerProcess, b: WorkerProcess, body: Any
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """The answer to `body` from either worker (asserted the same), and both answers' headers."""
    answers = [call(worker, "/v1/check", body) for worker in (a, b)]
    assert [status for status, _, _ in answers] == [200, 200], answers
    first, second = (answer for _, answer, _ in answers)
    assert {**first, "evaluated_at": None} == {**second, "evaluated_at": None}
    owners = {headers["X-Claimstream-Worker"] for _, _, headers in answers}
    assert len(owners) == 1, owners  # one owner answered both
    return first, [headers for _, _, headers in answers]


def metric(workers: tuple[WorkerProcess, ...], name: str, **labels: str) -> float:
    """`name{labels}` summed over the workers' /metrics."""
    total = 0.0
    for worker in workers:
        with urllib.request.urlopen(f"{url(worker)}/metrics", timeout=5) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    total += sample.value
    return total


#: an institution no scenario bills at: the scenarios' institution (H1) collects every rule's
#: alerts, and the sanctions ladder may suspend it (its third freeze) at a moment that depends
#: on the doctor and institution agents' pace, so a check expecting "pass" is not made there
CLEAN_INSTITUTION = "H-check-clean"


def clean(event: Event) -> dict[str, Any]:
    """`event` as JSON, billed at `CLEAN_INSTITUTION`."""
    return {**raw(event), "institution_id": CLEAN_INSTITUTION}


def test_for_every_patient_rule_the_stream_alerts_what_the_check_reported(
    workers: tuple[WorkerProcess, WorkerProcess], local_broker: LocalBroker
) -> None:
    a, b = workers
    cases: dict[str, Scenario] = scenarios("K")
    histories = [raw(ev) for sc in cases.values() for ev in sc.history]
    before = patient_records(a, b)
    produce(local_broker.bootstrap, event_messages(histories))
    wait_for(
        lambda: patient_records(a, b) >= before + len(histories), 90, "the histories processed"
    )
    reported: dict[str, dict[str, Any]] = {}
    forwarded = 0
    for rule, sc in cases.items():
        answer, headers = check_on_both(a, b, raw(sc.completing))
        forwarded += sum(1 for h in headers if "X-Claimstream-Forwarded" in h)
        assert rule in [v["rule"] for v in answer["violations"]], (rule, answer)
        (mine,) = [v for v in answer["violations"] if v["rule"] == rule]
        assert mine["legal_basis"] and mine["behaviour"], mine
        assert (mine["amount"] is None) == (rule in PRICELESS), mine
        again, _ = check_on_both(a, b, raw(sc.completing))  # a check changed nothing
        assert again["violations"] == answer["violations"]
        assert answer["events"] == [{"event_id": sc.completing.event_id, "outcome": "checked"}]
        reported[rule] = answer
    assert forwarded == len(cases)  # each check reached its owner once through the other

    completing = {sc.completing.event_id: rule for rule, sc in cases.items()}
    produce(local_broker.bootstrap, event_messages([raw(sc.completing) for sc in cases.values()]))

    def triggered(records: list[Any]) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for _, alert in records:
            rule = completing.get(alert["event_ids"][-1])
            if rule is not None and alert["rule"] in PATIENT_RULES:
                found.setdefault(rule, []).append(alert)
        return found

    def all_there(records: list[Any]) -> bool:
        found = triggered(records)
        return all(len(found.get(r, [])) >= len(reported[r]["violations"]) for r in cases)

    deadline = time.monotonic() + 90
    records: list[Any] = []
    while time.monotonic() < deadline and not all_there(records):
        records = read_topic(local_broker.bootstrap, ALERTS)
    streamed = triggered(records)
    for rule in cases:
        published = sorted(
            ({k: alert[k] for k in SAME}
             for alert in {a["alert_id"]: a for a in streamed.get(rule, [])}.values()),
            key=lambda v: v["alert_id"],
        )  # fmt: skip
        checked = sorted(
            ({k: v[k] for k in SAME} for v in reported[rule]["violations"]),
            key=lambda v: v["alert_id"],
        )
        assert published == checked, rule

    # the stream alerted exactly what replay alerts on the same events: checks changed nothing
    replay = Detector(detection_config(), clock=time.time)
    expected = {
        alert.alert_id
        for sc in cases.values()
        for ev in sc.events
        for alert in replay.process(ev).alerts
        if alert.rule in PATIENT_RULES
    }
    patients = {sc.patient for sc in cases.values()}
    got = {
        alert["alert_id"]
        for _, alert in records
        if alert["patient_id"] in patients and alert["rule"] in PATIENT_RULES
    }
    assert got == expected


def test_a_benign_event_passes(workers: tuple[WorkerProcess, WorkerProcess]) -> None:
    answer, _ = check_on_both(*workers, {"check_id": "HIS-benign", "events": clean(benign("P-ok"))})
    assert (answer["check_id"], answer["decision"]) == ("HIS-benign", "pass")
    assert (answer["violations"], answer["freezes"]) == ([], [])


def test_a_checks_violation_amount_is_counted_with_source_check(
    workers: tuple[WorkerProcess, WorkerProcess],
) -> None:
    a, _ = workers
    sc = scenarios("M")["excess_quantity"]  # a violation from the event alone, with a price
    name, labels = "claimstream_violation_amount_yuan_total", {"rule": "excess_quantity"}
    before = metric(workers, name, **labels, source="check")
    streamed = metric(workers, name, **labels, source="stream")
    status, answer, _ = call(a, "/v1/check", raw(sc.completing))
    assert status == 200, answer
    (violation,) = answer["violations"]
    assert violation["amount"] > 0
    assert metric(workers, name, **labels, source="check") == pytest.approx(
        before + violation["amount"]
    )
    assert metric(workers, name, **labels, source="stream") == streamed


def test_a_frozen_institutions_claim_is_rejected(
    workers: tuple[WorkerProcess, WorkerProcess], redis_url: str
) -> None:
    a, b = workers
    now = datetime.now(UTC)
    freeze = Command(
        command_id="cmd-check-api-frozen",
        action="FREEZE",
        scope=Scope("institution", "H-frozen"),
        effective_from=(now - timedelta(hours=1)).isoformat(timespec="seconds"),
        expires_at=(now + timedelta(days=1)).isoformat(timespec="seconds"),
        reason="grade D: settlement suspended for a day",
        rule="sanctions",
        alert_ids=("alr-x",),
    )

    async def apply() -> None:
        registry = RedisRegistry(redis_url, PREFIX)
        await registry.start()
        try:
            assert await registry.apply([freeze], time.time()) == ["applied"]
        finally:
            await registry.close()

    asyncio.run(apply())
    claim = {**raw(benign("P-frozen-inst")), "institution_id": "H-frozen"}
    answer, _ = check_on_both(a, b, claim)
    assert answer["decision"] == "reject"
    assert answer["violations"] == []
    assert [f["key"] for f in answer["freezes"]] == [f"{PREFIX}:freeze:institution:H-frozen"]
    elsewhere, _ = check_on_both(a, b, clean(benign("P-frozen-inst")))
    assert elsewhere["decision"] == "pass"


def test_a_drug_the_stream_froze_for_the_patient_is_rejected(
    workers: tuple[WorkerProcess, WorkerProcess], local_broker: LocalBroker
) -> None:
    a, b = workers
    three_days_ago = (datetime.now(UTC) - timedelta(days=3) - T0).total_seconds() / 3600
    sc = scenarios("R", hours=three_days_ago)["repeat_dispensing"]
    produce(local_broker.bootstrap, event_messages([raw(ev) for ev in sc.events]))
    path = f"/freezes/patient/{sc.patient}?drug_code=INS"
    wait_for(lambda: call(a, path)[1].get("frozen"), 90, "the stream's FREEZE of the drug")
    again = {**raw(sc.completing), "event_id": f"{sc.patient}-again"}
    answer, _ = check_on_both(a, b, again)
    assert answer["decision"] == "reject"
    assert [f["scope"] for f in answer["freezes"]] == [
        {"kind": "patient", "id": sc.patient, "drug_code": "INS"}
    ]
    other = {**again, "event_id": f"{sc.patient}-met", "drug_code": "MET", "days_supply": 30}
    answer, _ = check_on_both(a, b, other)
    assert (answer["decision"], answer["freezes"]) == ("pass", [])
    assert metric(workers, "claimstream_checks_total", decision="reject") >= 1


def test_feedback_lands_on_the_actions_topic_in_the_audit_trail_and_in_the_metric(
    workers: tuple[WorkerProcess, WorkerProcess], local_broker: LocalBroker
) -> None:
    a, b = workers
    body = {
        "violations": [
            {"rule": "repeat_dispensing", "handling": "continued", "reason": "supply lost"},
            {"rule": "excess_quantity", "handling": "modified", "reason": "30 days now"},
        ],
        "at": "2026-12-01T10:00:00+08:00",
    }
    status, accepted, _ = call(b, "/v1/check/HIS-K-1/feedback", body)
    assert status == 202, accepted
    action_id = accepted["action_id"]
    status, repeated, _ = call(a, "/v1/check/HIS-K-1/feedback", body)  # the same answer again
    assert (status, repeated["action_id"]) == (202, action_id)
    later = {**body, "at": "2026-12-01T11:00:00+08:00"}  # another answer, after it on the topic
    status, _, _ = call(a, "/v1/check/HIS-K-1/feedback", later)
    assert status == 202

    def on(topic: str, field: str) -> list[dict[str, Any]]:
        return [
            v for _, v in read_topic(local_broker.bootstrap, topic) if v.get(field) == action_id
        ]

    wait_for(lambda: len(on(ACTIONS, "action_id")) == 2, 30, "the feedback on the actions topic")
    (record, _) = on(ACTIONS, "action_id")
    assert (record["type"], record["check_id"], record["by"]) == (
        "check_feedback",
        "HIS-K-1",
        "his",
    )
    assert record["signature"]
    wait_for(lambda: on(AUDIT, "record_id"), 60, "the feedback in the audit trail")
    chained = on(AUDIT, "record_id")[0]
    assert chained["body"]["action"] == "check_feedback"
    assert chained["body"]["check_id"] == "HIS-K-1"

    def counts() -> tuple[float, float]:
        return (
            metric(workers, "claimstream_check_overrides_total", rule="repeat_dispensing",
                   handling="continued"),
            metric(workers, "claimstream_check_overrides_total", rule="excess_quantity",
                   handling="modified"),
        )  # fmt: skip

    # the later answer is counted after the repeated one (one key, one partition, in order):
    # once it is, the repeated record has been seen and was not counted again
    wait_for(lambda: counts() == (2, 2), 60, "both answers counted")


def test_refusals(workers: tuple[WorkerProcess, WorkerProcess]) -> None:
    a, _ = workers
    naive = {**raw(benign("P-refused")), "occurred_at": "2026-12-01T08:00:00"}
    status, body, _ = call(a, "/v1/check", naive)
    assert (status, body["reason"], body["index"]) == (400, "naive_timestamp", 0)
    status, body, headers = call(a, "/v1/check", raw(benign("P-refused")), token=None)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    feedback = {"violations": [{"rule": "excess_quantity", "handling": "cancelled"}], "by": "x"}
    status, body, _ = call(a, "/v1/check/HIS-K-2/feedback", feedback)
    assert status == 403
    assert "caller's own name" in body["error"]


def test_the_command_line_checks_each_line_of_a_file(
    workers: tuple[WorkerProcess, WorkerProcess],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from claimstream.cli.main import main
    from tests.cli.support import write_lines

    a, _ = workers
    excess = scenarios("CLI")["excess_quantity"].completing
    path = write_lines(tmp_path / "claims.jsonl", [clean(benign("P-cli")), clean(excess)])
    monkeypatch.setenv("CLAIMSTREAM_CLIENT_TOKEN", SETTLEMENT)
    assert main(["check", str(path), "--worker", url(a)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{path}:1 P-cli-ok pass"
    assert out[1].startswith(f"{path}:2 {excess.event_id} hold  excess_quantity 超量开药")


def test_a_settlement_token_reading_what_supervisors_read_is_403(
    workers: tuple[WorkerProcess, WorkerProcess],
) -> None:
    status, body, headers = call(workers[0], "/subjects/patient/P-ok")
    assert status == 403
    assert 'error="insufficient_scope"' in headers["WWW-Authenticate"]
    assert body["error"]


def test_a_worker_whose_freeze_registry_is_down_answers_503_with_retry_after(
    local_broker: LocalBroker, topology: Topology, tmp_path: Path
) -> None:
    """A `pass` that missed a freeze would be wrong: without Redis the check is refused, 503."""
    try:
        redis = RedisServer().start()
    except RedisServerError as exc:
        unavailable(str(exc))
    worker = WorkerProcess(
        local_broker.url,
        env={
            "CLAIMSTREAM_PARTITIONS": str(topology.default_partitions),
            "CLAIMSTREAM_APP_ID": "claimstream-check-api-503",
            "CLAIMSTREAM_DATA_DIR": str(tmp_path / "data"),
            "CLAIMSTREAM_REDIS_URL": redis.url,
            "CLAIMSTREAM_API_TOKENS": TOKENS,
        },
        log_path=tmp_path / "worker.log",
    )
    try:
        worker.start()
        body = raw(benign("P-503"))

        def answered(wanted: int) -> Any:
            assert worker.proc is not None and worker.proc.poll() is None, "worker exited"
            try:
                found = call(worker, "/v1/check", body)
            except OSError:
                return None  # the web server is not up yet
            return found if found[0] == wanted else None

        wait_for(lambda: answered(200), 180, "the worker to answer checks")
        redis.stop()
        _, refused, headers = wait_for(lambda: answered(503), 30, "a check to answer 503")
        assert headers["Retry-After"] == "2"
        assert "freeze registry" in refused["error"]
    finally:
        worker.stop()
        redis.stop()
