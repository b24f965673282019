"""Casework on the real broker: alerts open a case, a reviewer walks it through every step with
the API, a recovery is recorded, the worker is SIGKILLed and restarted half-way and the case
is intact, and the audit trail (which chains every case action) verifies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from claimstream.cli.main import main
from claimstream.model.outputs import Alert, Subject, stable_id
from tests.integration.stream_support import (
    PERSON,
    WorkerProcess,
    log_tail,
    person_key,
    produce,
    read_topic,
    start_broker,
    wait_for,
)
from tests.support.casework import api_call, casework_worker

pytestmark = pytest.mark.integration

ALERTS = "claimstream.alerts.v1"
NOTICES = "claimstream.cases.v1"
AUDIT = "claimstream.audit.v1"
REVIEWER, SUPERVISOR = "li.na", "zhou.jian"
TOKENS = {REVIEWER: "cs_cases-reviewer", SUPERVISOR: "cs_cases-supervisor"}
INSTITUTION = "H-case-1"


def alert(name: str, minute: int, amount: float) -> Alert:
    return Alert(
        alert_id=stable_id("alr", "cases-it", name),
        rule="repeat_dispensing",
        rule_version=1,
        severity="warning",
        subject=Subject("institution", INSTITUTION),
        patient_id="P-case-1",
        institution_id=INSTITUTION,
        doctor_id="D-case-1",
        department_id=None,
        event_ids=(f"evt-{name}",),
        occurred_at=f"2026-03-02T10:{minute:02d}:00+08:00",
        detected_at=f"2026-03-02T10:{minute:02d}:01+08:00",
        message="dispensed again within the supply of the last dispensing",
        details={},
        amount=amount,
    )


def call(worker: WorkerProcess, method: str, path: str, who: str, body: Any = None) -> Any:
    return api_call(worker.port, TOKENS[who], method, path, body)


def the_case(worker: WorkerProcess) -> dict[str, Any] | None:
    status, body = call(worker, "GET", "/v1/cases", SUPERVISOR)
    if status != 200 or not body["cases"]:
        return None
    (summary,) = body["cases"]
    status, case = call(worker, "GET", f"/v1/cases/{summary['case_id']}", SUPERVISOR)
    return case if status == 200 else None


def started(broker_url: str, tmp: Path, name: str) -> WorkerProcess:
    roles = {REVIEWER: "reviewer", SUPERVISOR: "supervisor"}
    return casework_worker(broker_url, TOKENS, roles, "claimstream-cases-it", tmp, name)


@pytest.mark.both_stores
def test_a_case_walks_every_step_through_the_api_and_survives_a_sigkill(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = start_broker()
    workers: list[WorkerProcess] = []
    try:
        workers.append(started(broker.url, tmp_path, "first"))
        produce(
            broker.bootstrap,
            [
                (ALERTS, INSTITUTION.encode(), orjson.dumps(a.to_dict()))
                for a in (alert("a", 0, 300.0), alert("b", 5, 200.0))
            ],
        )
        case = wait_for(
            lambda: (c := the_case(workers[-1])) is not None and c["alert_count"] == 2 and c,
            120,
            "the alerts to open one case",
            explain=lambda: log_tail(workers[-1].log_path),
        )
        case_id = case["case_id"]
        assert (case["step"], case["totals"]["flagged"]) == ("first_review", 500.0)

        # a supervisor reads, and may not act
        status, body = call(workers[-1], "POST", f"/v1/cases/{case_id}/advance", SUPERVISOR, {})
        assert status == 403, body

        def act(what: str, body: dict[str, Any], then: Any) -> dict[str, Any]:
            status, answer = call(
                workers[-1], "POST", f"/v1/cases/{case_id}/{what}", REVIEWER, body
            )
            assert status == 202, answer
            return wait_for(
                lambda: (c := the_case(workers[-1])) is not None and then(c) and c,
                60,
                f"{what} to be applied",
                explain=lambda: log_tail(workers[-1].log_path),
            )

        act("advance", {"note": "records checked"}, lambda c: c["step"] == "re_review")
        act("advance", {}, lambda c: c["step"] == "appeal")
        before = the_case(workers[-1])

        workers[-1].kill()  # SIGKILL mid-way: the case lives in the cases table's changelog
        workers.append(started(broker.url, tmp_path, "second"))
        after = wait_for(
            lambda: the_case(workers[-1]), 120, "the restarted worker to hold the case"
        )
        assert after == before

        # a decision before the decision step is refused before anything is published
        status, body = call(workers[-1], "POST", f"/v1/cases/{case_id}/decide", REVIEWER,
                            {"outcome": "confirmed", "nature": "operational_error",
                             "confirmed_amount": 450})  # fmt: skip
        assert (status, body.get("reason")) == (409, "wrong_step"), body

        # the command line: a person assigns the case with their own key, a supervisor reads it
        capsys.readouterr()
        key = str(person_key(tmp_path))
        argv = ["cases", "assign", case_id, "--owner", "zhao.lei", "--by", PERSON,
                "--signing-key", key, "--bootstrap", broker.bootstrap]  # fmt: skip
        assert main(argv) == 0, capsys.readouterr().err
        wait_for(lambda: (c := the_case(workers[-1])) is not None and c["owner"] == "zhao.lei",
                 60, "the assignment to be applied")  # fmt: skip
        monkeypatch.setenv("CLAIMSTREAM_CLIENT_TOKEN", TOKENS[SUPERVISOR])
        worker_url = f"http://127.0.0.1:{workers[-1].port}"
        capsys.readouterr()
        assert main(["cases", "list", "--worker", worker_url]) == 0
        listed = capsys.readouterr().out
        assert case_id in listed and "appeal" in listed
        assert main(["cases", "show", case_id, "--worker", worker_url]) == 0
        assert "owner zhao.lei" in capsys.readouterr().out
        assert main(["cases", "show", "case-none", "--worker", worker_url]) == 2

        act("advance", {"note": "appeal heard"}, lambda c: c["step"] == "investigation")
        act("advance", {}, lambda c: c["step"] == "decision")
        act(
            "decide",
            {"outcome": "partly_confirmed", "nature": "operational_error",
             "confirmed_amount": 450, "note": "one line justified"},
            lambda c: c["decision"] is not None,
        )  # fmt: skip
        act(
            "recover",
            {"money": "deducted", "amount": 450, "reference": "settlement 2026-04"},
            lambda c: c["totals"]["deducted"] == 450,
        )
        closed = act("advance", {"note": "done"}, lambda c: c["step"] == "closed")

        assert closed["totals"] == {
            "flagged": 500.0, "confirmed": 450.0, "deducted": 450.0, "recovered": 0.0
        }  # fmt: skip
        assert [e["type"] for e in closed["history"]] == [
            "case_open", "case_advance", "case_advance", "case_assign",
            "case_advance", "case_advance", "case_decide", "case_recover", "case_advance",
        ]  # fmt: skip
        assert {e["by"] for e in closed["history"][1:]} == {REVIEWER, PERSON}
        assert closed["alert_ids"] == [alert("a", 0, 300.0).alert_id, alert("b", 5, 200.0).alert_id]

        notices = [v["event"] for k, v in read_topic(broker.bootstrap, NOTICES)]
        assert notices.count("advanced") == 5 and "decided" in notices and "money" in notices

        def chained_case_actions() -> int:
            records = read_topic(broker.bootstrap, AUDIT)
            return sum(
                1
                for _, r in records
                if str(r.get("body", {}).get("action", "")).startswith("case_")
            )

        wait_for(lambda: chained_case_actions() >= 8, 60, "the case actions to be chained")
        argv = ["audit", "verify", "--topic", AUDIT, "--bootstrap", broker.bootstrap]
        assert main(argv) == 0, capsys.readouterr().out
    finally:
        for worker in workers:
            worker.stop()
        broker.stop()
