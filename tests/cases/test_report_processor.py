"""Reports in the casework stream without faust: report actions applied by report id,
refusals, redelivery, the link of an accepted report into its case (opened when new), overdue
notices, and the reporter's contact kept out of every notice."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from claimstream.cases.calendar import load_calendar
from claimstream.cases.case import CaseSettings, Procedure, case_from_dict, case_to_dict
from claimstream.cases.processor import ACTIONS, REPARTITION_CASE, CaseProcessor
from claimstream.cases.report_actions import (
    AcceptReport,
    AcknowledgeReport,
    ReceiveReport,
    RejectReport,
    ReportAction,
    ReportFeedback,
    audit_body,
    case_for_report,
    report_action_from_dict,
    report_action_to_dict,
)
from claimstream.cases.report_processor import ReportProcessor
from claimstream.cases.reports import Reporter, ReportSettings
from claimstream.model.outputs import Subject
from claimstream.model.records import Record
from claimstream.sanctions.signatures import ActionVerifier, Keyring

SH = ZoneInfo("Asia/Shanghai")
CAL = load_calendar(None, SH)
UNSIGNED_OK = ActionVerifier(lambda: Keyring({}), accept_unsigned=True).check
T0 = "2026-03-06T10:00:00+08:00"
CONTACT = "138-0000-0000"
NAMED = Reporter(False, "Zhang San", CONTACT)
RECEIVE = ReceiveReport(
    "rpt-17", "hotline", NAMED, "pharmacy on Elm St", "sells cards", "desk", T0, ("photo-1",),
    Subject("institution", "H1"),
)  # fmt: skip


def at(day: int, hour: int = 10) -> str:
    return f"2026-03-{day:02d}T{hour:02d}:00:00+08:00"


class Flow:
    def __init__(self, verify: Any = UNSIGNED_OK) -> None:
        self.reports: dict[str, Any] = {}
        self.cases: dict[str, Any] = {}
        self.procedure = Procedure(CaseSettings(), CAL)
        self.report = ReportProcessor(ReportSettings(), CAL, self.reports.get, verify=verify)
        self.case = CaseProcessor(self.procedure, self.cases.get, verify=verify)
        self.offset = 0
        self.notices: list[dict[str, Any]] = []

    def record(self, topic: str, key: str, value: Any) -> Record:
        self.offset += 1
        raw = value if isinstance(value, bytes) else orjson.dumps(value)
        return Record(key.encode(), raw, topic, 0, self.offset)

    def act(self, *actions: ReportAction) -> Any:
        records = [self.record(ACTIONS, a.report_id, report_action_to_dict(a)) for a in actions]
        out = self.report.process(records)
        for key, (state, _) in out.writes.items():
            self.reports[key] = state
        self.notices += [n for _, n in out.notices]
        # the links reach the case's partition: the cases step applies them
        links = [self.record(t, k, v) for t, k, v in out.forwards if t == REPARTITION_CASE]
        cases = self.case.process(links)
        for key, (state, _) in cases.writes.items():
            self.cases[key] = state
        self.notices += [n for _, n in cases.notices]
        return out


def test_a_received_report_is_held_under_its_id():
    flow = Flow()
    flow.act(RECEIVE)
    assert flow.reports["rpt-17"]["status"] == "received"


def test_a_second_receipt_of_the_same_id_changes_nothing():
    flow = Flow()
    flow.act(RECEIVE)
    out = flow.act(RECEIVE)
    assert (out.writes, out.actions) == ({}, [("report_receive", "repeated")])


def test_an_acceptance_into_a_new_case_opens_it_with_the_report_linked():
    flow = Flow()
    case_id = case_for_report("rpt-17")
    flow.act(RECEIVE, AcceptReport("rpt-17", case_id, "li.na", at(7), Subject("doctor", "D7")))
    case = case_from_dict(flow.cases[case_id])
    assert (case.subject, case.report_ids, case.step) == (
        Subject("doctor", "D7"), ("rpt-17",), "first_review",
    )  # fmt: skip
    assert flow.reports["rpt-17"]["case_id"] == case_id


def test_an_acceptance_into_an_existing_case_links_it_there():
    flow = Flow()
    held = flow.procedure.open("case-9", Subject("institution", "H1"), T0, "li.na", action_id="a")
    flow.cases["case-9"] = case_to_dict(held)
    flow.act(RECEIVE, AcceptReport("rpt-17", "case-9", "li.na", at(7)))
    assert case_from_dict(flow.cases["case-9"]).report_ids == ("rpt-17",)


def test_a_redelivered_acceptance_links_the_report_once():
    flow = Flow()
    accepting = AcceptReport("rpt-17", case_for_report("rpt-17"), "li.na", at(7),
                             Subject("doctor", "D7"))  # fmt: skip
    flow.act(RECEIVE, accepting)
    flow.act(accepting)
    case = case_from_dict(flow.cases[accepting.case_id])
    assert (case.report_ids, len(case.history)) == (("rpt-17",), 2)


def test_an_acceptance_into_an_unknown_case_is_refused_on_the_case_side():
    flow = Flow()
    flow.act(RECEIVE, AcceptReport("rpt-17", "case-none", "li.na", at(7)))
    refused = [n for n in flow.notices if n.get("event") == "refused"]
    assert [(n["case_id"], n["reason"]) for n in refused] == [("case-none", "unknown_case")]


def test_a_second_decision_is_refused_with_its_reason():
    flow = Flow()
    flow.act(RECEIVE, RejectReport("rpt-17", "no grounds", "li.na", at(7)))
    out = flow.act(AcceptReport("rpt-17", "case-9", "li.na", at(8)))
    assert [n["reason"] for _, n in out.notices] == ["decided"]


def test_an_action_on_an_unknown_report_is_refused():
    out = Flow().act(AcknowledgeReport("rpt-none", "li.na", T0))
    assert [n["reason"] for _, n in out.notices] == ["unknown_report"]


def test_an_unsigned_report_action_is_dead_lettered_when_signatures_are_required():
    flow = Flow(verify=ActionVerifier(lambda: Keyring({})).check)
    out = flow.act(RECEIVE)
    assert ([d.reason for d in out.dead_letters], flow.reports) == (["unsigned_action"], {})


def test_case_actions_are_left_to_the_cases_step():
    flow = Flow()
    record = flow.record(ACTIONS, "case-1", {"type": "case_advance", "case_id": "case-1"})
    assert flow.report.process([record]).dead_letters == []


def test_an_unanswered_report_gives_one_overdue_notice_and_counts():
    flow = Flow()
    flow.act(RECEIVE)
    now = datetime.fromisoformat(at(8, 11)).timestamp()
    first = flow.report.tick(["rpt-17"], now, lambda key: 0)
    for key, (state, _) in first.writes.items():
        flow.reports[key] = state
    again = flow.report.tick(["rpt-17"], now, lambda key: 0)
    assert [(n["event"], n["stage"]) for _, n in first.notices] == [("overdue", "respond")]
    assert (again.notices, again.overdue["respond"]) == ([], 1)


def test_feedback_given_in_time_leaves_nothing_overdue():
    flow = Flow()
    flow.act(
        RECEIVE,
        AcceptReport("rpt-17", case_for_report("rpt-17"), "li.na", at(7), Subject("doctor", "D")),
        ReportFeedback("rpt-17", "li.na", at(9)),
    )
    now = datetime.fromisoformat(at(30)).timestamp()
    assert set(flow.report.tick(["rpt-17"], now, lambda key: 0).overdue.values()) == {0}


def test_no_notice_carries_the_reporters_name_or_contact():
    flow = Flow()
    flow.act(
        RECEIVE,
        AcknowledgeReport("rpt-17", "li.na", at(6, 11)),
        AcceptReport("rpt-17", case_for_report("rpt-17"), "li.na", at(7), Subject("doctor", "D")),
        AcceptReport("rpt-17", "case-x", "li.na", at(8)),
    )
    text = orjson.dumps(flow.notices).decode()
    assert len(flow.notices) >= 5 and CONTACT not in text and "Zhang San" not in text


def test_the_audit_trail_gets_a_hash_of_the_reporter_not_the_contact():
    body = orjson.dumps(audit_body(RECEIVE)).decode()
    assert CONTACT not in body and "Zhang San" not in body and '"sha256"' in body


def test_a_report_action_reads_back_from_its_record():
    accepting = AcceptReport("rpt-17", "case-9", "li.na", T0, None, None, False, "n")
    assert report_action_from_dict(report_action_to_dict(accepting)) == accepting
    assert report_action_from_dict(report_action_to_dict(RECEIVE)) == RECEIVE
