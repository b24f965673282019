"""Reports from the public on the real broker: the front desk files a report through the API, a
reviewer accepts it into a new case, the case shows the report, the worker is SIGKILLed and
restarted and both are intact; the reporter's contact is on no notice, in no audit record and in
no line of the worker's log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.integration.stream_support import (
    WorkerProcess,
    log_tail,
    read_topic,
    start_broker,
    wait_for,
)
from tests.support.casework import api_call, casework_worker

pytestmark = pytest.mark.integration

DESK, REVIEWER, SUPERVISOR = "desk.wang", "li.na", "zhou.jian"
TOKENS = {DESK: "cs_reports-desk", REVIEWER: "cs_reports-reviewer", SUPERVISOR: "cs_reports-sup"}
ROLES = {DESK: "intake", REVIEWER: "reviewer", SUPERVISOR: "supervisor,reports:contact"}
CONTACT = "reporter-contact-13800000000"
REPORT = {
    "channel": "hotline",
    "reporter": {"anonymous": False, "name": "Zhang San", "contact": CONTACT},
    "about": "the pharmacy on Elm St",
    "subject": "institution:H-rpt-1",
    "description": "buys patients' insurance cards",
    "evidence": ["photo-17"],
    "received_at": "2026-03-06T10:00:00+08:00",
}


def call(worker: WorkerProcess, method: str, path: str, who: str, body: Any = None) -> Any:
    return api_call(worker.port, TOKENS[who], method, path, body)


def started(broker_url: str, tmp: Path, name: str) -> WorkerProcess:
    return casework_worker(broker_url, TOKENS, ROLES, "claimstream-reports-it", tmp, name)


@pytest.mark.both_stores
def test_a_report_is_accepted_into_a_new_case_and_both_survive_a_sigkill(tmp_path: Path) -> None:
    broker = start_broker()
    workers: list[WorkerProcess] = []

    def report(report_id: str) -> dict[str, Any] | None:
        status, body = call(workers[-1], "GET", f"/v1/reports/{report_id}", SUPERVISOR)
        return body if status == 200 else None

    def case(case_id: str) -> dict[str, Any] | None:
        status, body = call(workers[-1], "GET", f"/v1/cases/{case_id}", SUPERVISOR)
        return body if status == 200 else None

    try:
        workers.append(started(broker.url, tmp_path, "first"))
        status, filed = call(workers[-1], "POST", "/v1/reports", DESK, REPORT)
        assert status == 202, filed
        report_id = filed["report_id"]
        status, again = call(workers[-1], "POST", "/v1/reports", DESK, REPORT)  # a retry
        assert status in (200, 202) and again["report_id"] == report_id, again
        received = wait_for(lambda: report(report_id), 120, "the report to be received",
                            explain=lambda: log_tail(workers[-1].log_path))  # fmt: skip
        assert (received["status"], received["reporter"]["contact"]) == ("received", CONTACT)

        status, accepted = call(workers[-1], "POST", f"/v1/reports/{report_id}/accept", REVIEWER,
                                {"subject": "institution:H-rpt-1", "note": "credible"})  # fmt: skip
        assert status == 202, accepted
        case_id = accepted["case_id"]
        linked = wait_for(
            lambda: (c := case(case_id)) is not None and c["report_ids"] == [report_id] and c,
            60, "the accepted report to open its case",
            explain=lambda: log_tail(workers[-1].log_path),
        )  # fmt: skip
        assert (linked["step"], linked["subject"]) == (
            "first_review", {"kind": "institution", "id": "H-rpt-1"},
        )  # fmt: skip
        before = wait_for(
            lambda: (r := report(report_id)) is not None and r["status"] == "accepted" and r,
            60, "the report to be accepted",
        )  # fmt: skip
        assert before["case_id"] == case_id

        workers[-1].kill()  # SIGKILL: the report and the case live in their tables' changelogs
        workers.append(started(broker.url, tmp_path, "second"))
        after = wait_for(lambda: report(report_id), 120, "the restarted worker to hold the report")
        keep = ("status", "case_id", "history", "reporter", "acknowledged_at", "decided_at")
        assert {k: after[k] for k in keep} == {k: before[k] for k in keep}
        assert wait_for(lambda: case(case_id), 60, "the case")["report_ids"] == [report_id]

        notices = read_topic(broker.bootstrap, "claimstream.reports.v1")
        assert [v["event"] for _, v in notices if v["report_id"] == report_id][:2] == [
            "received", "accepted",
        ]  # fmt: skip
        audited = wait_for(
            lambda: [
                r for _, r in read_topic(broker.bootstrap, "claimstream.audit.v1")
                if str(r.get("body", {}).get("action", "")).startswith("report_")
            ] or None,
            60, "the report actions to be chained",
        )  # fmt: skip
        everything = orjson.dumps([[v for _, v in notices], audited]).decode()
        assert CONTACT not in everything and "Zhang San" not in everything
        for worker in workers:
            assert CONTACT not in worker.log_path.read_text(errors="replace")
    finally:
        for worker in workers:
            worker.stop()
        broker.stop()
