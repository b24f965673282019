"""Reports from the public in the stream: the cases agent's second step, and the read side.

The cases agent (`claimstream.stream.cases`) hands each batch of repartition.case + actions.v1
to `claimstream.cases.report_processor.ReportProcessor` too (report actions are keyed by report
id, so a report lives in the partition of its actions), writes the changed reports to the table
`reports` (compacted changelog `claimstream-reports-changelog`), publishes the notices on
`claimstream.reports.v1` and an acceptance's link on repartition.case, and only then acks. The
cases' timer ticks the reports too: each stage found overdue at the cases' event time gives one
`overdue` notice, and `claimstream_reports_overdue{stage}` counts the reports overdue now.

`ReportsRuntime` is also what the API and the console read (`report`, `list`): the reports of
this worker's partitions. The reporter's name and contact are in an answer only when asked
for with `contact=True` (the `reports:contact` role); never in a log line or a metric.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import orjson

from claimstream.cases.processor import ACTIONS, CaseResult
from claimstream.cases.report_processor import REPORT_NOTICES, ReportProcessor
from claimstream.cases.reports import (
    STATUSES,
    Report,
    deadlines,
    detail_view,
    full_view,
    next_due,
    overdue,
    public_view,
    report_from_dict,
)
from claimstream.detection.sinks.base import Outputs
from claimstream.model.partitioning import partition_for
from claimstream.observability.metrics import Metrics
from claimstream.sanctions.signatures import REFUSED
from claimstream.stream.assignment import owned_partitions
from claimstream.stream.publish import BatchPublisher
from claimstream.stream.sinks import SinkSet
from claimstream.stream.tables import TableWriter

log = logging.getLogger(__name__)

Clock = Callable[[], float | None]


async def emit_result(
    result: CaseResult,
    notices: str,
    publisher: BatchPublisher,
    sinks: SinkSet,
    metrics: Metrics,
    writer: TableWriter | None,
) -> None:
    """A batch's outputs, the cases' or the reports' (`notices`: their topic), in this order:
    the forwards and notices published, the dead letters written, the changed records written
    to the table (`writer`), then the metrics (dead letters, refusals, actions, money)."""
    publish: list[Any] = [(t, k.encode(), v, None) for t, k, v in result.forwards]
    publish += [(notices, k.encode(), orjson.dumps(n), None) for k, n in result.notices]
    if publish:
        await publisher.send_and_wait(publish)
    if result.dead_letters:
        await sinks.write(Outputs(dead_letters=result.dead_letters))
    if writer is not None:
        await writer.write(result.writes)
    for letter in result.dead_letters:
        metrics.dead_letter(letter.reason)
        if letter.reason in REFUSED:
            metrics.action_refused(letter.reason)
    for action, outcome in result.actions:
        metrics.case_action(action, outcome)
    for stage, amount in result.money:
        metrics.case_money(stage, amount)


class ReportsRuntime:
    """The reports' table, processor and outputs, shared by the cases agent, its tick and the
    API's reads."""

    def __init__(
        self,
        app: Any,
        publisher: BatchPublisher,
        processor: ReportProcessor,
        table: Any,
        partitions: int,
        *,
        sinks: SinkSet,
        metrics: Metrics,
        clock: Clock,
    ) -> None:
        self.app = app
        self.publisher = publisher
        self.processor = processor
        self.table = table
        self.partitions = partitions
        self.sinks = sinks
        self.metrics = metrics
        self.clock = clock

    # -- read side ----------------------------------------------------------------------------

    def now(self) -> float | None:
        return self.clock()

    def partition(self, report_id: str) -> int:
        return partition_for(report_id, self.partitions)

    def owned(self) -> set[int] | None:
        """The partitions of the reports this worker is assigned (None: no consumer to ask)."""
        return owned_partitions(self.app, ACTIONS)

    def held(self, report_id: str) -> Report | None:
        state = self.table.data.get(report_id)
        return None if state is None else report_from_dict(state)

    def _timing(self, report: Report) -> dict[str, Any]:
        settings, calendar = self.processor.settings, self.processor.calendar
        now = self.now()
        due = next_due(report, settings, calendar)
        late = [] if now is None else overdue(report, now, settings, calendar)
        return {
            "deadlines": deadlines(report, settings, calendar),
            "next_stage": None if due is None else due[0],
            "due": None if due is None else due[1],
            "overdue": late,
        }

    def report(self, report_id: str, *, contact: bool = False) -> dict[str, Any] | None:
        """One report (timeline included) with its deadlines; the reporter's name and contact
        only when `contact`."""
        report = self.held(report_id)
        if report is None:
            return None
        body = full_view(report) if contact else detail_view(report)
        return body | self._timing(report) | {"as_of": self.now()}

    def list(
        self,
        *,
        status: str | None = None,
        overdue_only: bool | None = None,
        open_only: bool = False,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The reports of this worker's partitions, without the reporter's identity, by the
        due time of their next deadline (the overdue first; those with every deadline met
        last)."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        owned = self.owned()
        rows: list[dict[str, Any]] = []
        for key, state in list(self.table.data.items()):
            if owned is not None and self.partition(key) not in owned:
                continue
            report = report_from_dict(state)
            if status is not None and report.status != status:
                continue
            row = public_view(report) | self._timing(report)
            del row["deadlines"]
            if overdue_only is not None and bool(row["overdue"]) != overdue_only:
                continue
            if open_only and row["next_stage"] is None:
                continue
            rows.append(row)
        rows.sort(key=lambda r: (r["due"] is None, r["due"] or 0.0, r["report_id"]))
        return rows[:limit]

    # -- outputs ------------------------------------------------------------------------------

    async def emit(self, result: CaseResult, writer: TableWriter | None) -> None:
        await emit_result(result, REPORT_NOTICES, self.publisher, self.sinks, self.metrics, writer)

    async def tick(self, writer: TableWriter, now: float, owned: set[int]) -> int:
        """Overdue notices and the overdue gauge for the reports of `owned` partitions."""
        keys = [k for k in list(self.table.data.keys()) if self.partition(k) in owned]
        result = self.processor.tick(keys, now, self.partition)
        await self.emit(result, writer)
        self.metrics.set_reports_overdue(result.overdue)
        return len(keys)
