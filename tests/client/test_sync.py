"""The blocking `Client` against a scripted server on loopback: what it sends, what it returns,
when it tries again and when it gives up."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp.test_utils import unused_port

from claimstream.client import (
    Client,
    Handling,
    RequestRefused,
    Retry,
    WorkerUnavailable,
)
from tests.client.scripted import scripted

EVENT = {"event_id": "e1", "event_type": "dispense", "patient_id": "P1"}
ANSWER: dict[str, Any] = {
    "check_id": "chk-1",
    "decision": "hold",
    "violations": [
        {
            "rule": "repeat_dispensing",
            "rule_name": "重复开药",
            "severity": "high",
            "amount": 259.2,
            "legal_basis": "《医疗保障基金使用监督管理条例》第十五条",
            "behaviour": "重复开药",
            "message": "refilled early",
            "event_ids": ["e0", "e1"],
            "lines": [{"index": 0, "code": "XA10AE04", "amount": 259.2}],
            "alert_id": "alr-1",
            "decision": "hold",
        }
    ],
    "freezes": [],
    "rule_version": 3,
    "evaluated_at": "2026-12-04T10:00:00+08:00",
    "events": [{"event_id": "e1", "outcome": "checked"}],
}
NO_WAIT = Retry(retries=2, backoff=0.0, max_wait=0.0)


def client(url: str, **kwargs: Any) -> Client:
    waits: list[float] = []
    made = Client(url, "cs_token", retry=kwargs.pop("retry", NO_WAIT), sleep=waits.append, **kwargs)
    made.waits = waits  # type: ignore[attr-defined]
    return made


def test_a_check_sends_the_event_with_the_token_and_returns_typed_values() -> None:
    with scripted((200, ANSWER, {"X-Claimstream-Worker": "http://w1"})) as server:
        result = client(server.url).check(EVENT)
    (seen,) = server.seen
    assert (seen.method, seen.path) == ("POST", "/v1/check")
    assert seen.headers["Authorization"] == "Bearer cs_token"
    assert orjson.loads(seen.body) == EVENT
    assert (result.decision, result.check_id, result.worker) == ("hold", "chk-1", "http://w1")
    (violation,) = result.violations
    assert (violation.rule_name, violation.amount, violation.lines[0].code) == (
        "重复开药",
        259.2,
        "XA10AE04",
    )
    assert not result.passed and result.evaluated_at.utcoffset() is not None


def test_a_list_with_a_check_id_is_sent_as_an_envelope() -> None:
    with scripted((200, ANSWER, {})) as server:
        client(server.url).check([EVENT, EVENT], check_id="HIS-9")
    assert orjson.loads(server.seen[0].body) == {"check_id": "HIS-9", "events": [EVENT, EVENT]}


def test_503_is_tried_again_after_retry_after_then_answered() -> None:
    busy = (503, {"error": "recovering"}, {"Retry-After": "2"})
    with scripted(busy, busy, (200, ANSWER, {})) as server:
        made = client(server.url, retry=Retry(retries=3, backoff=0.1, max_wait=5.0))
        assert made.check(EVENT).decision == "hold"
    assert made.waits == [2.0, 2.0]  # type: ignore[attr-defined]
    assert len(server.seen) == 3


def test_backoff_doubles_and_is_capped() -> None:
    retry = Retry(retries=5, backoff=0.5, max_wait=3.0)
    assert [retry.wait(n, None) for n in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert retry.wait(0, "10") == 3.0 and retry.wait(0, "soon") == 0.5


def test_a_worker_that_keeps_answering_503_is_unavailable_after_every_try() -> None:
    busy = (503, {"error": "the freeze registry cannot be reached"}, {})
    with scripted(busy, busy, busy) as server, pytest.raises(WorkerUnavailable) as caught:
        client(server.url).check(EVENT)
    assert caught.value.status == 503
    assert "freeze registry" in str(caught.value) and "3 tries" in str(caught.value)


def test_a_worker_that_cannot_be_reached_is_unavailable() -> None:
    with pytest.raises(WorkerUnavailable) as caught:
        client(f"http://127.0.0.1:{unused_port()}").check(EVENT)
    assert caught.value.status is None


def test_a_worker_that_does_not_answer_in_time_is_tried_again() -> None:
    with scripted((200, ANSWER, {}), (200, ANSWER, {}), stall=5.0) as server:
        with pytest.raises(WorkerUnavailable):
            client(server.url, timeout=0.2, retry=Retry(1, 0.0, 0.0)).check(EVENT)
        assert len(server.seen) == 2


def test_a_refusal_is_raised_at_once_with_the_dead_letter_reason() -> None:
    refused = (400, {"error": "patient_id is missing", "reason": "missing_field", "index": 0}, {})
    with scripted(refused) as server, pytest.raises(RequestRefused) as caught:
        client(server.url).check(EVENT)
    assert (caught.value.status, caught.value.reason, caught.value.index) == (
        400,
        "missing_field",
        0,
    )
    assert len(server.seen) == 1


def test_feedback_carries_its_time_so_a_retry_is_the_same_action() -> None:
    accepted = {"action_id": "act-1", "topic": "claimstream.actions.v1", "key": "HIS 1",
                "partition": 3, "record": {}}  # fmt: skip
    busy = (503, {"error": "could not publish"}, {})
    with scripted(busy, (202, accepted, {})) as server:
        receipt = client(server.url).feedback(
            "HIS 1",
            [Handling("repeat_dispensing", "continued", "supply lost", "alr-1"),
             {"rule": "excess_quantity", "handling": "modified"}],
        )  # fmt: skip
    assert (receipt.action_id, receipt.partition) == ("act-1", 3)
    first, second = server.seen
    assert first.path == "/v1/check/HIS%201/feedback"
    assert first.body == second.body
    body = orjson.loads(first.body)
    assert body["violations"][0] == {
        "rule": "repeat_dispensing",
        "handling": "continued",
        "reason": "supply lost",
        "alert_id": "alr-1",
    }
    assert body["at"][-6] in "+-"


def test_a_freeze_look_up() -> None:
    answer = {"kind": "patient", "id": "P1", "drug_code": "INS", "frozen": True,
              "freezes": [{"key": "claimstream:freeze:patient:P1:INS"}]}  # fmt: skip
    with scripted((200, answer, {})) as server:
        status = client(server.url).freezes("patient", "P1", "INS")
    assert server.seen[0].path == "/freezes/patient/P1?drug_code=INS"
    assert status.frozen and status.freezes[0]["key"].endswith(":INS")


def test_the_address_must_be_http() -> None:
    with pytest.raises(ValueError, match="http"):
        Client("worker:6066")
