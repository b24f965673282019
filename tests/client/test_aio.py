"""`AsyncClient` (and `Client`, in a thread) against the worker's real check routes served on
loopback (`tests/stream/test_check_http.py`'s fixture): the typed answers are the routes'."""

from __future__ import annotations

import asyncio

import pytest

from claimstream.client import AsyncClient, Client, Handling, RequestRefused, Retry
from tests.detection.check_scenarios import scenarios
from tests.stream.test_check_http import TOKENS, Serve, raw, serve

__all__ = ["serve"]  # the fixture, used by name

SCENARIO = scenarios()["repeat_dispensing"]


async def test_a_check_and_its_feedback_through_the_async_client(serve: Serve) -> None:
    worker = await serve()
    worker.history(*SCENARIO.history)
    async with AsyncClient(worker.url, TOKENS["settlement"]) as client:
        result = await client.check(raw(SCENARIO.completing), check_id="HIS-7")
        assert (result.check_id, result.decision, result.worker) == ("HIS-7", "hold", worker.url)
        (violation,) = result.violations
        assert (violation.rule, violation.rule_name) == ("repeat_dispensing", "重复开药")
        receipt = await client.feedback(result.check_id, [Handling.to(violation, "cancelled")])
        assert receipt.key == "HIS-7"
        status = await client.freezes("patient", SCENARIO.patient, "INS")
        assert not status.frozen
    ((_, key, _, _),) = worker.publisher.sent
    assert key == b"HIS-7"


async def test_a_refusal_through_the_async_client(serve: Serve) -> None:
    worker = await serve()
    bad = {**raw(SCENARIO.completing), "days_supply": "thirty"}
    async with AsyncClient(worker.url, TOKENS["settlement"]) as client:
        with pytest.raises(RequestRefused) as caught:
            await client.check(bad)
    assert (caught.value.status, caught.value.reason) == (400, "invalid_field")


async def test_the_blocking_client_gets_the_same_answer(serve: Serve) -> None:
    worker = await serve()
    worker.history(*SCENARIO.history)
    client = Client(worker.url, TOKENS["settlement"], retry=Retry(retries=0))
    result = await asyncio.to_thread(client.check, raw(SCENARIO.completing))
    assert result.decision == "hold"
    assert [v.rule for v in result.violations] == ["repeat_dispensing"]
