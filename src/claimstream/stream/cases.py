"""Casework in the stream: alerts grouped into cases, people's case actions applied, overdue
steps noticed. Two agents, each a thin shell around a pure processor of
`claimstream.cases.processor` (read it for the data flow), in the co-partition group
"sanctions":

* `claimstream.cases-group`: alerts.v1 against the table `case-groups` (subject `kind:id` ->
  its current case, in the partition of the subject's alerts) -> repartition.case, keyed by
  case id;
* `claimstream.cases`: repartition.case + actions.v1 (co-partitioned: case actions are keyed
  by case id) against the table `cases` (case id -> the case) -> notices on
  claimstream.cases.v1; dead letters as the sanctions' (unsigned or badly signed actions,
  records that are not what they should be); a decision's verdicts and step to the sanctions'
  repartition.alert and repartition.subject (`decision_forwards`, docs/sanctions.md).

Per batch, as everywhere: process (pure), publish forwards and notices and wait for them, hand
dead letters to the sinks, then write each changed key's state once (its changelog partition
is the input partition), and only then ack. A timer (`CLAIMSTREAM_CASES_TICK_INTERVAL`)
judges the assigned cases at event-time "now" (the sanctions' clock: the detection's low
watermark as the ladder follows it, `SanctionsRuntime.watermark`), notices each overdue step
once and sets `claimstream_cases_overdue{step}`; without sanctions there is no event-time clock
and nothing is judged overdue (a start-up warning says so).

`CasesRuntime` is also the read side the API asks (`case`, `cases`): it answers from the cases
of this worker's partitions. Reports from the public ride on the same agent and tick
(`claimstream.stream.reports`: `CasesRuntime.reports`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson

from claimstream.cases.actions import STEPS
from claimstream.cases.calendar import load_calendar
from claimstream.cases.case import (
    TIMED_STEPS,
    Case,
    CaseSettings,
    Procedure,
    case_from_dict,
    case_to_dict,
    summary,
)
from claimstream.cases.processor import (
    ACTIONS,
    ALERTS,
    CASE_GROUPS,
    CASE_NOTICES,
    CASES,
    REPARTITION_CASE,
    CaseProcessor,
    CaseResult,
    GroupProcessor,
    stale_groups,
)
from claimstream.cases.report_processor import REPORT_NOTICES, REPORTS, ReportProcessor
from claimstream.cases.reports import ReportSettings
from claimstream.kafka.topology import Topology
from claimstream.model.config import ConfigError
from claimstream.model.partitioning import partition_for
from claimstream.observability.metrics import Metrics
from claimstream.sanctions.processor import REPARTITION_ALERT, REPARTITION_SUBJECT
from claimstream.sanctions.signatures import ActionVerifier
from claimstream.stream.assignment import owned_partitions
from claimstream.stream.batches import Batching, ack_all, queue_batches, records_of
from claimstream.stream.publish import BatchPublisher
from claimstream.stream.reports import ReportsRuntime, emit_result
from claimstream.stream.sinks import SinkSet
from claimstream.stream.tables import TableWriter, raw_topic, state_table

log = logging.getLogger(__name__)

STEP_DAYS_VARIABLE = "CLAIMSTREAM_CASES_STEP_DAYS"
DECISION_TOPICS = (REPARTITION_ALERT, REPARTITION_SUBJECT)
#: event-time "now" of the cases (None: not known yet)
Clock = Callable[[], float | None]


def parse_step_days(text: str) -> dict[str, int]:
    """`15` (every step) or `first_review=10,appeal=20` (the others 15); ConfigError names the
    variable."""
    days: dict[str, int] = dict.fromkeys(TIMED_STEPS, 15)
    raw = text.strip()
    if not raw:
        return days
    try:
        if "=" not in raw:
            every: dict[str, int] = dict.fromkeys(TIMED_STEPS, int(raw))
            return every
        for item in raw.split(","):
            step, _, value = item.partition("=")
            if step.strip() not in TIMED_STEPS:
                raise ValueError(f"unknown step {step.strip()!r} (one of {', '.join(TIMED_STEPS)})")
            days[step.strip()] = int(value)
    except ValueError as exc:
        raise ConfigError(f"{STEP_DAYS_VARIABLE}: {exc}") from None
    return days


def procedure_from(
    *, step_days: str, group_days: int, calendar_file: str | None, tz: Any
) -> Procedure:
    """The procedure of the worker's settings; ConfigError when a value cannot be used."""
    settings = CaseSettings(step_days=parse_step_days(step_days), group_days=group_days)
    try:
        settings.validate()
    except ValueError as exc:
        raise ConfigError(f"{STEP_DAYS_VARIABLE}: {exc}") from None
    calendar = load_calendar(calendar_file, tz)
    return Procedure(settings, calendar)


class CasesRuntime:
    """What the two agents and the tick share; the API's read side."""

    def __init__(
        self,
        app: Any,
        publisher: BatchPublisher,
        procedure: Procedure,
        group_table: Any,
        case_table: Any,
        partitions: int,
        *,
        sinks: SinkSet,
        metrics: Metrics,
        verifier: ActionVerifier,
        clock: Clock,
        min_severity: str = "warning",
    ) -> None:
        self.app = app
        self.publisher = publisher
        self.procedure = procedure
        self.table = case_table
        self.group_table = group_table
        self.partitions = partitions
        self.sinks = sinks
        self.metrics = metrics
        self.clock = clock
        self.group = GroupProcessor(
            _copying(group_table),
            group_days=procedure.settings.group_days,
            min_severity=min_severity,
        )
        self.cases = CaseProcessor(procedure, _copying(case_table), verify=verifier.check)
        #: reports from the public (None: not installed, e.g. tests of the cases alone)
        self.reports: ReportsRuntime | None = None
        #: the cases agent and the tick never interleave on a case; nor the group agent and the
        #: sweep of its records
        self.lock = asyncio.Lock()
        self.group_lock = asyncio.Lock()

    # -- read side ----------------------------------------------------------------------------

    def now(self) -> float | None:
        return self.clock()

    def owned(self) -> set[int] | None:
        """The partitions of the cases this worker is assigned (None: no consumer to ask)."""
        return owned_partitions(self.app, ACTIONS)

    def partition(self, case_id: str) -> int:
        return partition_for(case_id, self.partitions)

    def case(self, case_id: str) -> dict[str, Any] | None:
        """The whole case (timeline and money lines), with `overdue` at the cases' clock."""
        state = self.table.data.get(case_id)
        if state is None:
            return None
        case = case_from_dict(state)
        now = self.now()
        body = case_to_dict(case)
        body["overdue"] = now is not None and self.procedure.overdue(case, now) is not None
        body["totals"] = case.totals()
        body["as_of"] = now
        return body

    def list(
        self, *, step: str | None = None, overdue: bool | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Summaries of the cases of this worker's partitions (not its standby copies of
        others'), by due time (the overdue first)."""
        if step is not None and step not in STEPS:
            raise ValueError(f"step must be one of {', '.join(STEPS)}")
        now = self.now()
        owned = self.owned()
        out: list[dict[str, Any]] = []
        for key, state in list(self.table.data.items()):
            if owned is not None and self.partition(key) not in owned:
                continue
            case: Case = case_from_dict(state)
            if step is not None and case.step != step:
                continue
            row = summary(case, now)
            if overdue is not None and row["overdue"] != overdue:
                continue
            out.append(row)
        out.sort(key=lambda r: (r["due"] is None, r["due"] or 0.0, r["case_id"]))
        return out[:limit]

    # -- outputs ------------------------------------------------------------------------------

    async def emit(self, result: CaseResult, writer: TableWriter | None) -> None:
        await emit_result(result, CASE_NOTICES, self.publisher, self.sinks, self.metrics, writer)

    async def tick(
        self,
        writer: TableWriter,
        group_writer: TableWriter | None = None,
        report_writer: TableWriter | None = None,
    ) -> int:
        """Overdue notices and the overdue gauge for the assigned cases, and the grouping
        records no alert can join any more forgotten; returns cases seen."""
        if self.app.rebalancing or getattr(self.app, "in_recovery", False):
            return 0
        now = self.now()
        if now is None:
            return 0
        owned = owned_partitions(self.app, ACTIONS) or set()
        async with self.lock:
            keys = [k for k in list(self.table.data.keys()) if self.partition(k) in owned]
            result = self.cases.tick(keys, now, self.partition)
            await self.emit(result, writer)
            if self.reports is not None and report_writer is not None:
                await self.reports.tick(report_writer, now, owned)
        self.metrics.set_cases_overdue(result.overdue)
        if group_writer is not None:
            alerts = owned_partitions(self.app, ALERTS) or set()
            async with self.group_lock:
                await self.sweep_groups(group_writer, now, alerts)
        return len(keys)

    async def sweep_groups(self, writer: TableWriter, now: float, owned: set[int]) -> None:
        """Delete the assigned grouping records older than twice the grouping days."""
        data = self.group_table.data
        mine = []
        for key in list(data.keys()):
            # key `kind:id`: the record lives in the partition of the subject's alerts (by id)
            partition = self.partition(key.partition(":")[2])
            if partition in owned and (state := data.get(key)) is not None:
                mine.append((key, state))
        gone = stale_groups(mine, now, self.procedure.settings.group_days)
        if gone:
            await writer.write({}, {key: self.partition(key.partition(":")[2]) for key in gone})


def install_cases(
    app: Any,
    *,
    topology: Topology,
    procedure: Procedure,
    publisher: BatchPublisher,
    sinks: SinkSet,
    metrics: Metrics,
    verifier: ActionVerifier,
    batching: Batching,
    clock: Clock | None,
    tick_interval: float,
    min_severity: str = "warning",
    report_settings: ReportSettings | None = None,
) -> CasesRuntime:
    """Add the two casework agents, their tables and the overdue tick to `app` (the reports
    from the public ride on the cases agent: `claimstream.stream.reports`)."""
    # the decision topics: where a decision goes to the sanctions (`decision_forwards`)
    for name in (ALERTS, ACTIONS, REPARTITION_CASE, CASE_NOTICES, REPORT_NOTICES, *DECISION_TOPICS):
        topology.topic(name)  # KeyError if topics.toml no longer declares it
    group_table, group_changelog, partitions = state_table(app, topology, CASE_GROUPS)
    case_table, case_changelog, _ = state_table(app, topology, CASES)
    report_table, report_changelog, _ = state_table(app, topology, REPORTS)
    if clock is None:
        log.warning(
            "cases: the sanctions are off, so there is no event-time clock: no case step will "
            "be judged overdue (CLAIMSTREAM_SANCTIONS_ENABLED)"
        )
    years = procedure.calendar.covers
    log.info(
        "cases: steps due in %s working days; holiday calendar for %s; alerts grouped per "
        "subject within %d days",
        ",".join(str(procedure.settings.step_days[s]) for s in TIMED_STEPS),
        ", ".join(str(y) for y in sorted(years)) or "no year (weekdays only)",
        procedure.settings.group_days,
    )
    runtime = CasesRuntime(
        app,
        publisher,
        procedure,
        group_table,
        case_table,
        partitions,
        sinks=sinks,
        metrics=metrics,
        verifier=verifier,
        clock=clock or (lambda: None),
        min_severity=min_severity,
    )
    runtime.reports = ReportsRuntime(
        app,
        publisher,
        ReportProcessor(
            report_settings or ReportSettings(),
            procedure.calendar,
            _copying(report_table),
            verify=verifier.check,
        ),
        report_table,
        partitions,
        sinks=sinks,
        metrics=metrics,
        clock=clock or (lambda: None),
    )
    group_writer = TableWriter(group_table, group_changelog, ALERTS, publisher)
    case_writer = TableWriter(case_table, case_changelog, REPARTITION_CASE, publisher)
    # a report's changelog partition is its actions' (report actions are keyed by report id)
    report_writer = TableWriter(report_table, report_changelog, ACTIONS, publisher)
    batch, within = batching.size, batching.within

    async def grouping(stream: Any) -> None:
        await sinks.ensure_started()
        async for events in queue_batches(app, stream, batch, within):
            async with runtime.group_lock:
                await runtime.emit(runtime.group.process(records_of(events)), group_writer)
            ack_all(events)

    async def cases(stream: Any) -> None:
        await sinks.ensure_started()
        async for events in queue_batches(app, stream, batch, within):
            records = records_of(events)
            async with runtime.lock:
                await runtime.emit(runtime.cases.process(records), case_writer)
                reports = runtime.reports
                if reports is not None:
                    await reports.emit(reports.processor.process(records), report_writer)
            ack_all(events)

    async def tick() -> None:
        try:
            await runtime.tick(case_writer, group_writer, report_writer)
        except Exception:  # the next tick tries again; nothing was written
            log.exception("cases tick failed")

    app.agent(
        raw_topic(app, ALERTS, partitions=partitions),
        name="claimstream.cases-group",
        concurrency=1,
    )(grouping)
    app.agent(
        raw_topic(app, REPARTITION_CASE, ACTIONS, partitions=partitions),
        name="claimstream.cases",
        concurrency=1,
    )(cases)
    app.timer(tick_interval)(tick)
    return runtime


def _copying(table: Any) -> Callable[[str], Any]:
    """A loader handing the processors a copy (see `stream.sanctions.runtime._copying`)."""

    def load(key: str) -> Any:
        value = table.data.get(key)
        return None if value is None else orjson.loads(orjson.dumps(value))

    return load


def report_settings_from(settings: Any) -> ReportSettings:
    """The reports' deadlines of the worker's settings (`CLAIMSTREAM_REPORTS_*`); ConfigError
    names the variables when they cannot be used."""
    deadlines = ReportSettings(
        respond_hours=float(settings.reports_respond_hours),
        accept_working_days=int(settings.reports_accept_days),
        feedback_days=float(settings.reports_feedback_days),
    )
    try:
        deadlines.validate()
    except ValueError as exc:
        raise ConfigError(
            "CLAIMSTREAM_REPORTS_RESPOND_HOURS, _ACCEPT_DAYS, _FEEDBACK_DAYS: " + str(exc)
        ) from None
    return deadlines
