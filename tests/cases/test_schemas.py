"""Case actions and case notices match their published JSON Schemas (topics/schemas)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jsonschema
import pytest

from claimstream.cases.actions import (
    AdvanceCase,
    AssignCase,
    DecideCase,
    OpenCase,
    RecordRecovery,
    case_action_to_dict,
)
from claimstream.cases.calendar import load_calendar
from claimstream.cases.case import CaseSettings, Procedure
from claimstream.cases.processor import notice
from claimstream.cases.report_actions import (
    AcceptReport,
    AcknowledgeReport,
    PayReward,
    ReceiveReport,
    RejectReport,
    ReportFeedback,
    case_for_report,
    report_action_to_dict,
)
from claimstream.cases.report_processor import report_notice
from claimstream.cases.reports import Reporter, ReportSettings, new_report
from claimstream.model.outputs import Subject
from claimstream.sanctions.signatures import ActionSigner

SCHEMAS = Path(__file__).parents[2] / "topics" / "schemas"
T0 = "2026-03-02T10:00:00+08:00"


def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads((SCHEMAS / name).read_text("utf-8")))


@pytest.mark.parametrize(
    "action",
    [
        OpenCase(Subject("doctor", "D1"), "li.na", T0, "by hand", "H1"),
        AdvanceCase("case-1", "li.na", T0),
        AdvanceCase("case-1", "li.na", T0, "investigation", "no appeal lodged"),
        AssignCase("case-1", "zhao", "li.na", T0),
        DecideCase("case-1", "confirmed", "intentional_fraud", 12.5, "w", T0),
        DecideCase("case-1", "not_confirmed", None, 0, "w", T0),
        RecordRecovery("case-1", "deducted", 7.25, "fin", T0, "settlement 2026-03"),
    ],
)
def test_a_signed_case_action_is_a_valid_action_record(action):
    validator("action.v1.json").validate(ActionSigner.generate().sign(case_action_to_dict(action)))


def test_a_case_decision_without_its_outcome_is_not_a_valid_record():
    record = case_action_to_dict(DecideCase("case-1", "confirmed", "intentional_fraud", 1, "w", T0))
    del record["outcome"]
    assert not validator("action.v1.json").is_valid(record)


def test_case_notices_are_valid_case_notice_records():
    proc = Procedure(CaseSettings(), load_calendar(None, ZoneInfo("Asia/Shanghai")))
    case = proc.open("case-1", Subject("institution", "H1"), T0, "system", action_id="act-1")
    check = validator("case-notice.v1.json")
    check.validate(notice("case-1", case, "opened", T0, by="system"))
    check.validate(notice("case-1", None, "refused", T0, reason="unknown_case", detail="no case"))
    due = datetime.fromtimestamp(case.due or 0, ZoneInfo("Asia/Shanghai")).isoformat()
    check.validate(notice("case-1", case, "overdue", due))


@pytest.mark.parametrize(
    "action",
    [
        ReceiveReport(
            "rpt-1",
            "web",
            Reporter(False, "Zhang", "138"),
            "a",
            "b",
            "desk",
            T0,
            ("photo",),
            Subject("institution", "H1"),
        ),
        ReceiveReport("rpt-1", "letter", Reporter(True), "a", "b", "desk", T0),
        AcknowledgeReport("rpt-1", "li.na", T0),
        AcceptReport("rpt-1", case_for_report("rpt-1"), "li.na", T0, Subject("doctor", "D1")),
        AcceptReport("rpt-1", "case-1", "li.na", T0, told_reporter=False),
        RejectReport("rpt-1", "no grounds", "li.na", T0),
        ReportFeedback("rpt-1", "li.na", T0, "called back"),
        PayReward("rpt-1", 500, "fin", T0, "voucher 7"),
    ],
)
def test_a_signed_report_action_is_a_valid_action_record(action):
    record = ActionSigner.generate().sign(report_action_to_dict(action))
    validator("action.v1.json").validate(record)


def test_report_notices_are_valid_report_notice_records():
    calendar = load_calendar(None, ZoneInfo("Asia/Shanghai"))
    report = new_report(T0, "web", Reporter(True), "a", "b", report_id="rpt-1")
    check = validator("report-notice.v1.json")
    check.validate(report_notice("rpt-1", report, "received", T0, ReportSettings(), calendar,
                                 by="desk", action_id="act-1"))  # fmt: skip
    check.validate(report_notice("rpt-1", None, "refused", T0, ReportSettings(), calendar,
                                 reason="unknown_report", detail="no report"))  # fmt: skip
    check.validate(report_notice("rpt-1", report, "overdue", T0, ReportSettings(), calendar,
                                 stage="respond"))  # fmt: skip


def test_a_report_link_notice_is_a_valid_case_notice():
    proc = Procedure(CaseSettings(), load_calendar(None, ZoneInfo("Asia/Shanghai")))
    case = proc.open("case-1", Subject("institution", "H1"), T0, "li.na", action_id="act-1")
    validator("case-notice.v1.json").validate(
        notice("case-1", case, "report", T0, report_id="rpt-1", action_id="act-2", by="li.na")
    )
