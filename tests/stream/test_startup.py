"""The worker's start-up line (`claimstream.stream.startup`)."""

from __future__ import annotations

import logging
from collections import namedtuple
from types import SimpleNamespace
from typing import Any

import pytest

from claimstream.stream.startup import announce_when_assigned, startup_line

TP = namedtuple("TP", "topic partition")


def test_the_line_names_broker_group_partitions_per_topic_and_web_url() -> None:
    line = startup_line(
        broker="127.0.0.1:9092",
        group="claimstream",
        assignment=[TP("settlement.claims.v1", 0), TP("settlement.claims.v1", 3), TP("b.v1", 1)],
        web_url="http://127.0.0.1:6066",
    )
    assert line == (
        "claimstream worker: ready: broker 127.0.0.1:9092, consumer group claimstream, "
        "3 partitions (b.v1: 1, settlement.claims.v1: 2), web http://127.0.0.1:6066"
    )
    assert "\n" not in line


class Signal:
    def __init__(self) -> None:
        self.receivers: list[Any] = []

    def connect(self, receiver: Any) -> None:
        self.receivers.append(receiver)

    async def send(self) -> None:
        for receiver in self.receivers:
            await receiver(self)


async def test_the_line_is_written_once_and_later_assignments_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assignment = {TP("settlement.claims.v1", 0)}
    app = SimpleNamespace(
        on_rebalance_complete=Signal(), consumer=SimpleNamespace(assignment=lambda: assignment)
    )
    written: list[str] = []
    announce_when_assigned(app, broker="b:1", group="g", web_url="http://w:1", write=written.append)
    assert written == []  # nothing before the first assignment
    await app.on_rebalance_complete.send()
    assert len(written) == 1 and "1 partitions (settlement.claims.v1: 1)" in written[0]
    assignment.add(TP("settlement.claims.v1", 1))
    with caplog.at_level(logging.INFO, logger="claimstream.stream.startup"):
        await app.on_rebalance_complete.send()
    assert len(written) == 1
    assert "reassigned: broker b:1" in caplog.text
    assert "2 partitions (settlement.claims.v1: 2)" in caplog.text
