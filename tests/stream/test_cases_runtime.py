"""The cases runtime's tick: overdue steps of the assigned cases judged at the event-time clock,
noticed once on claimstream.cases.v1, counted in claimstream_cases_overdue{step}."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from prometheus_client import CollectorRegistry

from claimstream.cases.calendar import load_calendar
from claimstream.cases.case import CaseSettings, Procedure, case_to_dict
from claimstream.model.outputs import Subject
from claimstream.observability.metrics import Metrics
from claimstream.sanctions.signatures import ActionVerifier, Keyring
from claimstream.stream.cases import CasesRuntime

SH = ZoneInfo("Asia/Shanghai")
PROC = Procedure(CaseSettings(), load_calendar(None, SH))
LATE = datetime.fromisoformat("2026-04-01T00:00:00+08:00").timestamp()


class Publisher:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def send_and_wait(self, records: Any) -> None:
        self.sent.extend(records)


class Writer:
    def __init__(self, table: Any) -> None:
        self.table = table

    async def write(self, writes: Any, deletes: Any = None) -> list[Any]:
        for key, (value, _) in writes.items():
            self.table.data[key] = value
        return []


def runtime(
    clock: float | None, *, rebalancing: bool = False
) -> tuple[CasesRuntime, Publisher, Metrics]:
    case = PROC.open("case-1", Subject("institution", "H1"), "2026-03-02T10:00:00+08:00",
                     "system", action_id="act-0")  # fmt: skip
    assigned = [
        SimpleNamespace(topic=topic, partition=p)
        for topic in ("claimstream.actions.v1", "claimstream.alerts.v1")
        for p in range(8)
    ]
    app = SimpleNamespace(
        rebalancing=rebalancing, consumer=SimpleNamespace(assignment=lambda: assigned)
    )
    publisher, metrics = Publisher(), Metrics(CollectorRegistry())
    cases = SimpleNamespace(data={"case-1": case_to_dict(case)})
    run = CasesRuntime(
        app, publisher, PROC, SimpleNamespace(data={}), cases, 8,  # type: ignore[arg-type]
        sinks=None, metrics=metrics, verifier=ActionVerifier(lambda: Keyring({})),  # type: ignore[arg-type]
        clock=lambda: clock,
    )  # fmt: skip
    return run, publisher, metrics


def overdue(metrics: Metrics, step: str) -> float:
    value = metrics.registry.get_sample_value("claimstream_cases_overdue", {"step": step})
    return value or 0.0


async def test_an_overdue_case_is_noticed_once_and_counted_while_it_lasts() -> None:
    run, publisher, metrics = runtime(LATE)
    writer = Writer(run.table)
    await run.tick(writer)  # type: ignore[arg-type]
    await run.tick(writer)  # type: ignore[arg-type]
    notices = [
        orjson.loads(v) for topic, _, v, _ in publisher.sent if topic == "claimstream.cases.v1"
    ]
    assert [n["event"] for n in notices] == ["overdue"]
    assert overdue(metrics, "first_review") == 1


async def test_without_an_event_time_clock_nothing_is_judged() -> None:
    run, publisher, metrics = runtime(None)
    assert await run.tick(Writer(run.table)) == 0  # type: ignore[arg-type]
    assert publisher.sent == [] and overdue(metrics, "first_review") == 0


async def test_nothing_is_judged_during_a_rebalance() -> None:
    run, publisher, _ = runtime(LATE, rebalancing=True)
    assert await run.tick(Writer(run.table)) == 0  # type: ignore[arg-type]
    assert publisher.sent == []


async def test_the_list_puts_the_overdue_first() -> None:
    run, _, _ = runtime(LATE)
    other = PROC.open("case-2", Subject("doctor", "D1"), "2026-03-30T10:00:00+08:00", "system",
                      action_id="act-2")  # fmt: skip
    run.table.data["case-2"] = case_to_dict(other)
    assert [(c["case_id"], c["overdue"]) for c in run.list()] == [
        ("case-1", True),
        ("case-2", False),
    ]


async def test_the_tick_forgets_grouping_records_no_alert_can_join() -> None:
    run, _, _ = runtime(LATE)
    run.group_table.data.update(
        {"institution:H1": {"case_id": "case-1", "first": LATE - 61 * 86400},
         "doctor:D1": {"case_id": "case-9", "first": LATE - 86400}}
    )  # fmt: skip
    await run.tick(Writer(run.table), GroupWriter(run.group_table))  # type: ignore[arg-type]
    assert list(run.group_table.data) == ["doctor:D1"]


class GroupWriter(Writer):
    async def write(self, writes: Any, deletes: Any = None) -> list[Any]:
        for key in deletes or {}:
            self.table.data.pop(key, None)
        return await super().write(writes)


async def test_the_list_leaves_out_standby_copies_of_other_workers_cases() -> None:
    run, _, _ = runtime(LATE)
    mine = run.partition("case-1")
    run.app.consumer.assignment = lambda: [  # type: ignore[union-attr]
        SimpleNamespace(topic="claimstream.actions.v1", partition=p) for p in range(8) if p != mine
    ]
    assert run.list() == []
