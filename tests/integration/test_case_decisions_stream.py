"""A case's decision on the real broker: alerts open a case, a reviewer decides it through the
API, and the sanctions follow as docs/sanctions.md says: confirmed as intentional fraud, the
institution one step up the ladder and its alerts confirmed (doctor points, per-rule
precision); partly confirmed naming one alert, that one confirmed and the other false
positive."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from claimstream.cli.main import main
from claimstream.devtools.localbroker import LocalBroker
from claimstream.model.outputs import Alert, Subject, stable_id
from tests.integration.stream_support import (
    WorkerProcess,
    log_tail,
    produce,
    read_topic,
    start_broker,
    wait_for,
)
from tests.support.casework import api_call, casework_worker

pytestmark = pytest.mark.integration

ALERTS = "claimstream.alerts.v1"
COMMANDS = "claimstream.commands.v1"
REVIEWER, SUPERVISOR = "li.na", "zhou.jian"
TOKENS = {REVIEWER: "cs_decisions-reviewer", SUPERVISOR: "cs_decisions-supervisor"}
INSTITUTION, DOCTOR = "H-decided-1", "D-decided-1"


def alert(name: str, when: str, institution: str = INSTITUTION, doctor: str = DOCTOR) -> Alert:
    return Alert(
        alert_id=stable_id("alr", "decisions-it", name),
        rule="repeat_dispensing",
        rule_version=1,
        severity="warning",
        subject=Subject("institution", institution),
        patient_id="P-decided-1",
        institution_id=institution,
        doctor_id=doctor,
        department_id=None,
        event_ids=(f"evt-{name}",),
        occurred_at=when,
        detected_at=when,
        message="dispensed again within the supply of the last dispensing",
        details={},
        amount=100.0,
    )


#: 35 days apart: two warnings on the ladder (outside its 30-day repeat window), one case (the
#: test groups alerts within 60 days)
FIRST = alert("first", "2026-01-20T10:00:00+08:00")
SECOND = alert("second", "2026-02-24T10:00:00+08:00")


def call(worker: WorkerProcess, method: str, path: str, who: str, body: Any = None) -> Any:
    return api_call(worker.port, TOKENS[who], method, path, body)


def read(worker: WorkerProcess, path: str) -> Any:
    status, body = call(worker, "GET", path, SUPERVISOR)
    return body if status == 200 else None


def the_case(worker: WorkerProcess) -> dict[str, Any] | None:
    listed = read(worker, "/v1/cases")
    if not listed or not listed["cases"]:
        return None
    (summary,) = listed["cases"]
    case: dict[str, Any] | None = read(worker, f"/v1/cases/{summary['case_id']}")
    return case


def reviewed(worker: WorkerProcess, verdict: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "claimstream_reviewed_alerts"
        and sample.labels == {"rule": "repeat_dispensing", "verdict": verdict}
    )


@contextmanager
def a_case_at_its_decision_step(
    tmp_path: Path, app_id: str, alerts: tuple[Alert, ...]
) -> Iterator[tuple[LocalBroker, WorkerProcess, str]]:
    """A broker and a worker with casework on, where `alerts` (of one institution) opened one
    case, advanced to its decision step through the API: (broker, worker, case id)."""
    broker = start_broker()
    started: WorkerProcess | None = None
    try:
        roles = {REVIEWER: "reviewer", SUPERVISOR: "supervisor"}
        started = casework_worker(
            broker.url, TOKENS, roles, app_id, tmp_path, CLAIMSTREAM_CASES_GROUP_DAYS="60"
        )
        worker = started
        institution = alerts[0].institution_id
        assert institution is not None
        produce(
            broker.bootstrap,
            [(ALERTS, institution.encode(), orjson.dumps(a.to_dict())) for a in alerts],
        )
        case = wait_for(
            lambda: (c := the_case(worker)) is not None and c["alert_count"] == len(alerts) and c,
            120,
            "the alerts to open one case",
            explain=explain(worker),
        )
        standing = wait_for(
            lambda: (
                (s := read(worker, f"/subjects/institution/{institution}")) is not None
                and s["violations"] == len(alerts)
                and s
            ),
            60,
            "the ladder to hold the alerts",
            explain=explain(worker),
        )
        assert standing["level"] == "warned"  # warnings 35 days apart: no repeat
        act(worker, case["case_id"], "advance",
            {"to": "decision", "at": "2026-02-25T09:00:00+08:00", "note": "no appeal lodged"},
            lambda c: c["step"] == "decision")  # fmt: skip
        yield broker, worker, case["case_id"]
    finally:
        if started is not None:
            started.stop()
        broker.stop()


def explain(worker: WorkerProcess) -> Any:
    return lambda: log_tail(worker.log_path)


def act(worker: WorkerProcess, case_id: str, what: str, body: dict[str, Any], then: Any) -> None:
    """A reviewer's case action through the API, waited for until the case shows `then`."""
    status, answer = call(worker, "POST", f"/v1/cases/{case_id}/{what}", REVIEWER, body)
    assert status == 202, answer
    wait_for(lambda: (c := the_case(worker)) is not None and then(c), 60,
             f"{what} to be applied", explain=explain(worker))  # fmt: skip


def test_a_case_confirmed_as_intentional_fraud_freezes_its_subject_and_confirms_its_alerts(
    tmp_path: Path,
) -> None:
    with a_case_at_its_decision_step(tmp_path, "claimstream-decisions-it", (FIRST, SECOND)) as (
        broker,
        worker,
        case_id,
    ):
        act(
            worker,
            case_id,
            "decide",
            {"outcome": "confirmed", "nature": "intentional_fraud", "confirmed_amount": 200,
             "at": "2026-02-25T10:00:00+08:00", "note": "forged prescriptions"},
            lambda c: c["decision"] is not None,
        )  # fmt: skip

        # the institution one step up: frozen until the end of the decision's local day
        frozen = wait_for(
            lambda: (
                (s := read(worker, f"/subjects/institution/{INSTITUTION}")) is not None
                and s["level"] == "frozen"
                and s
            ),
            60,
            "the institution to be frozen",
            explain=explain(worker),
        )
        assert frozen["frozen_until"] == "2026-02-26T00:00:00+08:00"
        freezes = [
            c for _, c in read_topic(broker.bootstrap, COMMANDS) if c["rule"] == "case_decision"
        ]
        assert [(c["action"], c["scope"]["id"]) for c in freezes] == [("FREEZE", INSTITUTION)]
        assert sorted(freezes[0]["alert_ids"]) == sorted([FIRST.alert_id, SECOND.alert_id])

        # its alerts confirmed, as a reviewer's verdict would: the doctor's points, precision
        doctor = wait_for(
            lambda: (
                (s := read(worker, f"/subjects/doctor/{DOCTOR}")) is not None
                and s.get("points", {}).get("2026") == 4
                and s
            ),
            60,
            "the doctor's points (2 per confirmed warning)",
            explain=explain(worker),
        )
        assert doctor["level"] == "warned"
        for a in (FIRST, SECOND):
            assert read(worker, f"/alerts/{a.alert_id}")["status"] == "confirmed"
        wait_for(lambda: reviewed(worker, "confirmed") == 2, 60,
                 "the precision gauge to count both alerts confirmed",
                 explain=explain(worker))  # fmt: skip
        assert reviewed(worker, "false_positive") == 0


#: a second institution and doctor, for the partly confirmed decision
PARTLY_INSTITUTION, PARTLY_DOCTOR = "H-decided-2", "D-decided-2"
RIGHT = alert("right", "2026-01-20T10:00:00+08:00", PARTLY_INSTITUTION, PARTLY_DOCTOR)
WRONG = alert("wrong", "2026-02-24T10:00:00+08:00", PARTLY_INSTITUTION, PARTLY_DOCTOR)


def test_a_partly_confirmed_decision_naming_one_alert_confirms_it_and_refutes_the_other(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with a_case_at_its_decision_step(tmp_path, "claimstream-partly-it", (RIGHT, WRONG)) as (
        _,
        worker,
        case_id,
    ):
        # an alert the case does not link is refused before anything is published
        body = {"outcome": "partly_confirmed", "nature": "operational_error",
                "confirmed_amount": 100, "at": "2026-02-25T10:00:00+08:00"}  # fmt: skip
        status, answer = call(worker, "POST", f"/v1/cases/{case_id}/decide", REVIEWER,
                              {**body, "confirmed_alerts": [FIRST.alert_id]})  # fmt: skip
        assert (status, answer.get("reason")) == (409, "invalid"), answer

        act(worker, case_id, "decide", {**body, "confirmed_alerts": [RIGHT.alert_id]},
            lambda c: c["decision"] is not None)  # fmt: skip

        # the named alert confirmed (its doctor's 2 points), the other found false positive
        wait_for(
            lambda: (
                (s := read(worker, f"/subjects/doctor/{PARTLY_DOCTOR}")) is not None
                and s.get("points", {}).get("2026") == 2
            ),
            60,
            "the doctor's points (2, for the one confirmed warning)",
            explain=explain(worker),
        )
        wait_for(lambda: reviewed(worker, "false_positive") == 1, 60,
                 "the precision gauge to count the other alert false positive",
                 explain=explain(worker))  # fmt: skip
        assert reviewed(worker, "confirmed") == 1
        assert read(worker, f"/alerts/{RIGHT.alert_id}")["status"] == "confirmed"
        assert read(worker, f"/alerts/{WRONG.alert_id}")["status"] == "false_positive"

        # the case shows the decision's alerts, on the command line too
        monkeypatch.setenv("CLAIMSTREAM_CLIENT_TOKEN", TOKENS[SUPERVISOR])
        capsys.readouterr()
        assert main(["cases", "show", case_id, "--worker", f"http://127.0.0.1:{worker.port}"]) == 0
        assert f"confirms alerts: {RIGHT.alert_id}" in capsys.readouterr().out
