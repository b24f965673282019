"""`POST /v1/check` and its feedback over HTTP (`claimstream.stream.http.check`), without a broker.

Each test serves the check's routes behind the worker's middlewares (`json_errors`, the access
control) on a plain aiohttp application on loopback; the patient's state comes from a
`Detector` fed the scenario's history (what the patient agent stores), freezes from an
in-process registry, the publisher is a fake that keeps what it was given. The answers are
checked against the OpenAPI document's schemas.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, unused_port
from prometheus_client import CollectorRegistry

from claimstream.detection.detector import Detector
from claimstream.freezes.memory import MemoryRegistry
from claimstream.model.events import Event
from claimstream.model.outputs import Command, Scope
from claimstream.observability.metrics import Metrics
from claimstream.sanctions.codec import action_from_dict
from claimstream.sanctions.signatures import ActionSigner
from claimstream.stream.http.access import Access, access_control, parse_tokens, token_line
from claimstream.stream.http.api import Api
from claimstream.stream.http.check import (
    CheckService,
    PostForwarder,
    check_routes,
)
from claimstream.stream.http.errors import json_errors
from claimstream.stream.http.routes import FORWARDED, WORKER
from claimstream.stream.http.views import worker_routes
from claimstream.stream.settings import Settings
from claimstream.testing import FIXED_NOW, detector
from tests.detection.check_scenarios import benign, scenarios
from tests.stream.test_api import FakePublisher, api_settings, schema_check

SCENARIOS = scenarios()
TOKENS = {"settlement": "cs_settle", "admin": "cs_admin"}
LEGACY = "cs_legacy"
AUTH = {"Authorization": f"Bearer {TOKENS['settlement']}"}
API_KEY = ActionSigner.generate()
TZ = Settings().detection.tz
#: the check's wall clock: the scenarios' events (2026-03) are well before it
NOW = FIXED_NOW


def raw(ev: Event) -> dict[str, Any]:
    return dict(ev.raw)


def freeze(kind: str, id_: str, drug: str | None = None) -> Command:
    return Command(
        command_id=f"cmd-{kind}-{id_}-{drug}",
        action="FREEZE",
        scope=Scope(kind, id_, drug),  # type: ignore[arg-type]
        effective_from="2026-05-01T00:00:00+08:00",
        expires_at="2026-07-01T00:00:00+08:00",
        reason="test",
        rule="repeat_dispensing",
        alert_ids=("alr-x",),
    )


@dataclass
class Served:
    client: TestClient[Any, Any]
    url: str
    publisher: FakePublisher
    registry: MemoryRegistry
    metrics: Metrics
    detector: Detector
    where: dict[str, Any]
    conditions: dict[str, str | None] = field(default_factory=dict)

    async def post(
        self, path: str, body: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, Any]:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        given = {"Content-Type": "application/json", **(AUTH if headers is None else headers)}
        async with self.client.post(path, data=data, headers=given) as response:
            return response.status, await response.json(), response.headers

    def history(self, *events: Event) -> None:
        for ev in events:
            assert self.detector.process(ev).rejection is None

    def checks(self, decision: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "claimstream_checks_total", {"decision": decision}
        )
        return value or 0.0


Serve = Callable[..., Any]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    started: list[Served] = []
    session = aiohttp.ClientSession()

    async def start() -> Served:
        det = detector()
        registry = MemoryRegistry()
        metrics = Metrics(CollectorRegistry(), process=False)
        publisher = FakePublisher()
        port = unused_port()
        url = f"http://127.0.0.1:{port}"
        where: dict[str, Any] = {"owner": url, "here": True}
        conditions: dict[str, str | None] = {"recovering": None, "registry": None}
        service = CheckService(
            engine=lambda: det.engine,
            state=lambda patient: det.states.get(("patient", patient)),
            registry=registry,
            metrics=metrics,
            recovering=lambda: conditions["recovering"],
            registry_state=lambda: conditions["registry"],
            clock=lambda: NOW,
        )
        api = Api(None, publisher.send_and_wait, api_settings(), lambda: TZ, API_KEY)
        lines = "\n".join(token_line(name, name, token) for name, token in TOKENS.items())
        access = Access(None, parse_tokens(lines.encode(), "test"), LEGACY)
        app = web.Application(middlewares=[json_errors, access_control(access)])
        app.add_routes(
            [
                *check_routes(
                    service,
                    api,
                    tz=lambda: TZ,
                    worker_url=url,
                    owner_of=lambda space, key: (where["owner"], where["here"]),
                    forward=PostForwarder(lambda: session, url),
                ),
                *worker_routes(registry=registry, status=dict, exposition=lambda: b""),
            ]
        )
        client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1", port=port))
        await client.start_server()
        served = Served(client, url, publisher, registry, metrics, det, where, conditions)
        started.append(served)
        return served

    try:
        yield start
    finally:
        for served in started:
            await served.client.close()
        await session.close()


# --- the check -----------------------------------------------------------------------------


async def test_a_check_answers_the_violation_with_its_decision(serve: Serve) -> None:
    worker = await serve()
    sc = SCENARIOS["repeat_dispensing"]
    worker.history(*sc.history)
    status, body, headers = await worker.post("/v1/check", raw(sc.completing))
    assert status == 200
    assert headers[WORKER] == worker.url
    schema_check("CheckAnswer", body)
    assert body["decision"] == "hold"
    (violation,) = body["violations"]
    assert violation["rule"] == "repeat_dispensing"
    assert violation["rule_name"] == "重复开药"
    assert violation["event_ids"] == [e.event_id for e in sc.events]
    assert body["freezes"] == []
    assert body["events"] == [{"event_id": sc.completing.event_id, "outcome": "checked"}]
    assert body["check_id"].startswith("chk-")
    assert body["evaluated_at"].endswith("+08:00")
    assert worker.publisher.sent == []  # a check publishes nothing
    assert worker.checks("hold") == 1


async def test_a_checks_violation_amounts_are_counted_as_source_check(serve: Serve) -> None:
    worker = await serve()
    sc = SCENARIOS["duplicate_exam"]
    worker.history(*sc.history)
    for _ in range(2):
        status, body, _ = await worker.post("/v1/check", raw(sc.completing))
        assert status == 200
    (violation,) = body["violations"]
    assert violation["amount"] > 0
    counted = worker.metrics.registry.get_sample_value(
        "claimstream_violation_amount_yuan_total", {"rule": "duplicate_exam", "source": "check"}
    )
    assert counted == 2 * violation["amount"]
    streamed = worker.metrics.registry.get_sample_value(
        "claimstream_violation_amount_yuan_total", {"rule": "duplicate_exam", "source": "stream"}
    )
    assert streamed == 0


async def test_a_benign_claim_passes(serve: Serve) -> None:
    worker = await serve()
    status, body, _ = await worker.post(
        "/v1/check", {"check_id": "HIS-1", "events": [raw(benign())]}
    )
    assert status == 200
    assert (body["decision"], body["violations"], body["check_id"]) == ("pass", [], "HIS-1")
    assert worker.checks("pass") == 1


async def test_a_check_changes_nothing_the_stream_holds(serve: Serve) -> None:
    worker = await serve()
    sc = SCENARIOS["repeat_dispensing"]
    worker.history(*sc.history)
    before = orjson.dumps(worker.detector.states[("patient", sc.patient)])
    for _ in range(2):
        status, body, _ = await worker.post("/v1/check", raw(sc.completing))
        assert (status, body["decision"]) == (200, "hold")
    assert orjson.dumps(worker.detector.states[("patient", sc.patient)]) == before


async def test_a_frozen_institutions_claim_is_rejected(serve: Serve) -> None:
    worker = await serve()
    ev = benign()
    await worker.registry.apply([freeze("institution", ev.institution_id)], NOW)
    status, body, _ = await worker.post("/v1/check", raw(ev))
    assert status == 200
    assert body["decision"] == "reject"
    assert body["violations"] == []
    assert [f["key"] for f in body["freezes"]] == [
        f"claimstream:freeze:institution:{ev.institution_id}"
    ]
    assert worker.checks("reject") == 1


async def test_a_patients_drug_freeze_rejects_that_drug_only(serve: Serve) -> None:
    worker = await serve()
    first = SCENARIOS["repeat_dispensing"].events[0]
    await worker.registry.apply([freeze("patient", first.patient_id, "INS")], NOW)
    status, body, _ = await worker.post("/v1/check", raw(first))
    assert (status, body["decision"]) == (200, "reject")
    other = {**raw(first), "event_id": "other-drug", "drug_code": "MET"}
    status, body, _ = await worker.post("/v1/check", other)
    assert (status, body["decision"], body["freezes"]) == (200, "pass", [])


# --- refusals ------------------------------------------------------------------------------


async def test_a_body_the_stream_would_refuse_is_400_with_its_reason(serve: Serve) -> None:
    worker = await serve()
    bad = {**raw(benign()), "occurred_at": "2026-03-01T08:00:00"}
    status, body, _ = await worker.post("/v1/check", [raw(benign()), bad])
    assert status == 400
    assert (body["reason"], body["index"]) == ("naive_timestamp", 1)
    schema_check("CheckRefused", body)
    status, body, _ = await worker.post("/v1/check", b"[{")
    assert (status, body["reason"]) == (400, "not_json")
    assert worker.checks("pass") == 0


async def test_an_event_ahead_of_the_workers_clock_is_400_future_timestamp(serve: Serve) -> None:
    worker = await serve()
    ahead = {**raw(benign()), "occurred_at": "2026-06-02T00:00:00+08:00"}
    status, body, _ = await worker.post("/v1/check", ahead)
    assert (status, body["reason"]) == (400, "future_timestamp")


async def test_no_token_is_401(serve: Serve) -> None:
    worker = await serve()
    status, body, headers = await worker.post("/v1/check", raw(benign()), headers={})
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    schema_check("Error", body)


async def test_a_worker_still_recovering_answers_503_with_retry_after(serve: Serve) -> None:
    worker = await serve()
    worker.conditions["recovering"] = "table recovery has not finished"
    status, body, headers = await worker.post("/v1/check", raw(benign()))
    assert status == 503
    assert "Retry-After" in headers
    assert "table recovery has not finished" in body["error"]


async def test_a_registry_that_cannot_answer_for_sure_is_503(serve: Serve) -> None:
    worker = await serve()
    worker.conditions["registry"] = "Redis lost the registry; the guard is rebuilding it"
    status, body, headers = await worker.post("/v1/check", raw(benign()))
    assert (status, "Retry-After" in headers) == (503, True)
    assert "freeze registry" in body["error"]


# --- routing -------------------------------------------------------------------------------


async def test_a_check_is_forwarded_once_to_the_patients_owner(serve: Serve) -> None:
    owner, other = await serve(), await serve()
    sc = SCENARIOS["repeat_dispensing"]
    owner.history(*sc.history)  # the owner holds the patient's state, the other worker nothing
    other.where.update(owner=owner.url, here=False)
    status, body, headers = await other.post("/v1/check", raw(sc.completing))
    assert status == 200
    assert body["decision"] == "hold"
    assert headers[WORKER] == owner.url
    assert headers[FORWARDED] == other.url
    assert (owner.checks("hold"), other.checks("hold")) == (1, 0)


async def test_a_forwarded_check_is_not_forwarded_again(serve: Serve) -> None:
    worker = await serve()
    worker.where.update(owner="http://127.0.0.1:1", here=False)
    headers = {**AUTH, FORWARDED: "http://elsewhere"}
    status, body, answer_headers = await worker.post("/v1/check", raw(benign()), headers=headers)
    assert status == 503
    assert "Retry-After" in answer_headers
    assert "no longer on this worker" in body["error"]


async def test_an_unknown_owner_is_503_and_an_owner_not_answering_502(serve: Serve) -> None:
    worker = await serve()
    worker.where.update(owner=None, here=False)
    status, _, _ = await worker.post("/v1/check", raw(benign()))
    assert status == 503
    worker.where.update(owner=f"http://127.0.0.1:{unused_port()}", here=False)
    status, body, _ = await worker.post("/v1/check", raw(benign()))
    assert status == 502
    assert "did not answer" in body["error"]


# --- feedback ------------------------------------------------------------------------------

FEEDBACK = {
    "violations": [
        {"rule": "repeat_dispensing", "alert_id": "alr-0123456789abcdef01234567",
         "handling": "continued", "reason": "the patient's supply was lost"},
        {"rule": "excess_quantity", "handling": "modified", "reason": "30 days now"},
    ]
}  # fmt: skip


async def test_feedback_is_published_signed_in_the_callers_name(serve: Serve) -> None:
    worker = await serve()
    status, body, _ = await worker.post("/v1/check/HIS-1/feedback", FEEDBACK)
    assert status == 202
    schema_check("Accepted", body)
    schema_check("Action", body["record"])
    ((topic, key, value, _),) = worker.publisher.sent
    assert (topic, key) == ("claimstream.actions.v1", b"HIS-1")
    record = orjson.loads(value)
    assert record["type"] == "check_feedback"
    assert record["by"] == "settlement"
    assert record["key_id"] and record["signature"]
    action = action_from_dict(record)
    assert action.action_id == body["action_id"] == record["action_id"]
    assert [(h.rule, h.handling) for h in action.handlings] == [  # type: ignore[union-attr]
        ("repeat_dispensing", "continued"),
        ("excess_quantity", "modified"),
    ]


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({"violations": []}, "non-empty list"),
        ({"violations": [{"rule": "no_such_rule", "handling": "modified"}]}, "rule name"),
        ({"violations": [{"rule": "repeat_dispensing", "handling": "ignored"}]}, "handling"),
        ({"violations": [{"rule": "repeat_dispensing", "handling": "continued"}]}, "reason"),
        ({"violations": FEEDBACK["violations"], "at": "2026-12-01T08:00:00"}, "UTC offset"),
        ([1, 2], "JSON object"),
    ],
)
async def test_feedback_that_cannot_be_used_is_400(serve: Serve, given: Any, words: str) -> None:
    worker = await serve()
    status, body, _ = await worker.post("/v1/check/HIS-1/feedback", given)
    assert status == 400
    assert words in body["error"]
    assert worker.publisher.sent == []


async def test_feedback_in_someone_elses_name_is_403(serve: Serve) -> None:
    worker = await serve()
    status, body, _ = await worker.post("/v1/check/HIS-1/feedback", {**FEEDBACK, "by": "li.na"})
    assert status == 403
    assert "caller's own name" in body["error"]
    assert worker.publisher.sent == []


async def test_a_check_id_that_is_no_id_is_400(serve: Serve) -> None:
    worker = await serve()
    status, body, _ = await worker.post("/v1/check/a%20b/feedback", FEEDBACK)
    assert status == 400
    assert "check_id" in body["error"]
