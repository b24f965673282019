"""Reports in the stream as a pure batch processor, beside the cases (no faust, no clock).

    actions.v1 (report_* actions, keyed by report id)
        --ReportProcessor (table reports: report id -> the report)-->
        notices on claimstream.reports.v1 (report-notice.v1), keyed by report id
        and, for an acceptance, a link on repartition.case keyed by the case id:
        {"type": "report", "case_id", "report_id", "action_id", "by", "at", "subject"?,
         "institution_id"?}

The cases agent runs it on the same batches as `claimstream.cases.processor.CaseProcessor`
(which leaves report actions alone, as this leaves case actions). The link reaches the case's
partition, where `link_report` adds the report to the case (opening it first when the
acceptance asked for a new case), so a report and its case each live with their own key.

Like the cases: actions are verified before they change anything (unsigned or badly signed ones
are dead-lettered), a transition the report's state refuses changes nothing and gives a
`refused` notice with its reason, and everything is idempotent (a receipt of a report id
already held, an action id already in the report's timeline). `tick(keys, now)` gives each
report stage found overdue at event time `now` its one `overdue` notice and counts the
overdue stages (the gauge `claimstream_reports_overdue{stage}`).

Notices never carry the reporter's name or contact, nor the text of a note or a description.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import orjson

from claimstream.cases.calendar import WorkingCalendar
from claimstream.cases.case import Refusal
from claimstream.cases.processor import ACTIONS, REPARTITION_CASE, CaseResult
from claimstream.cases.report_actions import (
    AcceptReport,
    AcknowledgeReport,
    PayReward,
    ReceiveReport,
    RejectReport,
    ReportAction,
    ReportFeedback,
    is_report_action,
    report_action_from_dict,
)
from claimstream.cases.reports import (
    DEADLINES,
    Report,
    ReportEntry,
    ReportRefused,
    ReportSettings,
    accept,
    acknowledge,
    give_feedback,
    new_report,
    next_due,
    notify_overdue,
    overdue,
    pay_reward,
    reject,
    report_from_dict,
    report_to_dict,
)
from claimstream.model.outputs import stable_id
from claimstream.model.records import Record
from claimstream.model.timefmt import iso
from claimstream.sanctions.intake import each, parsed, read_action

REPORT_NOTICES = "claimstream.reports.v1"
#: the table: report id -> the report
REPORTS = "reports"
#: the notice's event for each applied action type
EVENTS = {
    "report_receive": "received",
    "report_acknowledge": "acknowledged",
    "report_accept": "accepted",
    "report_reject": "rejected",
    "report_feedback": "feedback",
    "report_reward": "rewarded",
}

Json = dict[str, Any]
Load = Callable[[str], Any]
Verify = Callable[[Json], object]


#: what a batch or a tick gives (`overdue`: stage -> reports overdue at it)
ReportResult = CaseResult


@dataclass(frozen=True, slots=True)
class Repeated:
    """An action already applied (a redelivery), or a receipt of a report already held."""


def report_notice(
    report_id: str,
    report: Report | None,
    event: str,
    at: str,
    settings: ReportSettings,
    calendar: WorkingCalendar,
    **extra: Any,
) -> Json:
    """A report-notice.v1 record (topics/schemas/report-notice.v1.json); `report` None when no
    such report is held (an action about an unknown report)."""
    due = None if report is None else next_due(report, settings, calendar)
    body: Json = {
        "schema": "report-notice.v1",
        "notice_id": stable_id(
            "rnt", report_id, event, at, str(extra.get("action_id", extra.get("stage", "")))
        ),
        "report_id": report_id,
        "event": event,
        "status": None if report is None else report.status,
        "case_id": None if report is None else report.case_id,
        "next_stage": None if due is None else due[0],
        "due": None if due is None else iso(due[1]),
        "at": at,
    }
    return body | {k: v for k, v in extra.items() if v is not None}


class ReportProcessor:
    """actions.v1 (report actions) -> the reports (table reports), their notices and links."""

    def __init__(
        self,
        settings: ReportSettings,
        calendar: WorkingCalendar,
        load: Load,
        *,
        verify: Verify,
    ) -> None:
        settings.validate()
        self.settings = settings
        self.calendar = calendar
        self.load = load
        self.verify = verify

    def notice(
        self, report_id: str, report: Report | None, event: str, at: str, **extra: Any
    ) -> Json:
        return report_notice(report_id, report, event, at, self.settings, self.calendar, **extra)

    def process(self, records: Iterable[Record]) -> ReportResult:
        out = ReportResult()
        reports: dict[str, Report | None] = {}
        changed: dict[str, int] = {}

        def get(report_id: str) -> Report | None:
            if report_id not in reports:
                raw = self.load(report_id)
                reports[report_id] = None if raw is None else report_from_dict(raw)
            return reports[report_id]

        def one(record: Record) -> None:
            if record.topic != ACTIONS:
                return
            # the sanctions' index dead-letters what is not JSON; others' actions are left alone
            data = read_action(
                record.value, self.verify, ours=is_report_action, refuse_garbage=False
            )
            if data is None:
                return
            action = parsed(report_action_from_dict, data, "invalid_action", "a report action")
            kind = str(data["type"])
            before = get(action.report_id)
            result = self.apply(before, action)
            if isinstance(result, Repeated):
                out.actions.append((kind, "repeated"))
                return
            if isinstance(result, Refusal):
                out.actions.append((kind, "refused"))
                out.notices.append((action.report_id, self.notice(
                    action.report_id, before, "refused", action.at, action_id=action.action_id,
                    type=kind, by=action.by, reason=result.reason, detail=result.detail,
                )))  # fmt: skip
                return
            out.actions.append((kind, "applied"))
            reports[action.report_id] = result
            changed[action.report_id] = record.partition
            out.notices.append((action.report_id, self.notice(
                action.report_id, result, EVENTS[kind], action.at,
                action_id=action.action_id, by=action.by,
            )))  # fmt: skip
            if isinstance(action, AcceptReport):
                out.forwards.append((REPARTITION_CASE, action.case_id, orjson.dumps(link(action))))

        each(records, out.dead_letters, one)
        for report_id, partition in changed.items():
            report = reports[report_id]
            if report is not None:
                out.writes[report_id] = (report_to_dict(report), partition)
        return out

    def apply(self, report: Report | None, action: ReportAction) -> Report | Refusal | Repeated:
        """The report after `action`, a refusal (with its reason), or Repeated."""
        if isinstance(action, ReceiveReport):
            if report is not None:
                return Repeated()
            received = new_report(
                action.at,
                action.channel,
                action.reporter,
                action.about,
                action.description,
                action.evidence,
                action.subject,
                report_id=action.report_id,
                received_by=action.by,
            )
            entry = ReportEntry(action.action_id, "report_receive", action.by, action.at)
            return replace(received, history=(entry,))
        if report is None:
            return Refusal("unknown_report", f"no report {action.report_id}")
        if report.applied(action.action_id):
            return Repeated()
        kind = {
            AcknowledgeReport: "report_acknowledge",
            AcceptReport: "report_accept",
            RejectReport: "report_reject",
            ReportFeedback: "report_feedback",
            PayReward: "report_reward",
        }[type(action)]
        try:
            if isinstance(action, AcknowledgeReport):
                entry = ReportEntry(action.action_id, kind, action.by, action.at, action.note)
                return acknowledge(report, action.at, entry)
            if isinstance(action, AcceptReport):
                note = f"case {action.case_id}" + (f"; {action.note}" if action.note else "")
                entry = ReportEntry(action.action_id, kind, action.by, action.at, note)
                return accept(report, action.case_id, action.at,
                              told_reporter=action.told_reporter, entry=entry)  # fmt: skip
            if isinstance(action, RejectReport):
                entry = ReportEntry(action.action_id, kind, action.by, action.at, action.reason)
                return reject(report, action.reason, action.at,
                              told_reporter=action.told_reporter, entry=entry)  # fmt: skip
            if isinstance(action, ReportFeedback):
                entry = ReportEntry(action.action_id, kind, action.by, action.at, action.note)
                return give_feedback(report, action.at, entry)
            note = f"{action.amount:.2f}" + (f" ({action.reference})" if action.reference else "")
            entry = ReportEntry(action.action_id, kind, action.by, action.at, note)
            return pay_reward(report, action.amount, action.by, action.at, entry)
        except ReportRefused as exc:
            return Refusal(exc.reason, str(exc))

    def tick(
        self, keys: Iterable[str], now: float, partition_of: Callable[[str], int]
    ) -> ReportResult:
        """Overdue notices (once per report and stage) and the overdue count per stage."""
        out = ReportResult(overdue=dict.fromkeys(DEADLINES, 0))
        for key in keys:
            raw = self.load(key)
            if raw is None:
                continue
            report = report_from_dict(raw)
            for stage in overdue(report, now, self.settings, self.calendar):
                out.overdue[stage] += 1
            marked, fresh = notify_overdue(report, now, self.settings, self.calendar)
            if not fresh:
                continue
            out.writes[key] = (report_to_dict(marked), partition_of(key))
            due = next_due(report, self.settings, self.calendar)
            for stage in fresh:
                at = iso(due[1]) if due is not None and due[0] == stage else iso(now)
                out.notices.append((key, self.notice(key, marked, "overdue", at, stage=stage)))
        return out


def link(action: AcceptReport) -> Json:
    """The envelope on repartition.case that adds an accepted report to its case."""
    envelope: Json = {
        "type": "report",
        "case_id": action.case_id,
        "report_id": action.report_id,
        "action_id": action.action_id,
        "by": action.by,
        "at": action.at,
    }
    if action.open_for is not None:
        envelope["subject"] = {"kind": action.open_for.kind, "id": action.open_for.id}
        if action.institution_id:
            envelope["institution_id"] = action.institution_id
    return envelope
