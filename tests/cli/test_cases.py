"""`claimstream cases`: the reads against a scripted worker on loopback (what they ask, what
they print, their exit codes), and the decision's input refused before anything is published
(publishing: tests/integration/test_cases_stream.py, test_case_decisions_stream.py)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest

from claimstream.cli.main import main
from tests.cli.support import closed_port
from tests.client.scripted import scripted
from tests.support.publishing import published_actions

CASE_ID = "case-3f2a9c0d1e4b5a6978c0d1e2"
SH = ZoneInfo("Asia/Shanghai")


def summary(**more: Any) -> dict[str, Any]:
    return {
        "case_id": CASE_ID,
        "step": "appeal",
        "due": 1_775_000_000,
        "overdue": False,
        "subject": {"kind": "institution", "id": "H0012"},
        "totals": {"flagged": 1250.0, "deducted": 0, "recovered": 0},
        **more,
    }


def test_list_asks_the_cases_route_with_the_client_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLAIMSTREAM_CLIENT_TOKEN", "cs_sup")
    with scripted((200, {"as_of": 0, "cases": [summary()]}, {})) as worker:
        argv = ["cases", "list", "--step", "appeal", "--overdue", "--worker", worker.url]
        assert main(argv) == 0
    assert worker.seen[0].path == "/v1/cases?limit=100&step=appeal&overdue=true"
    assert worker.seen[0].headers["Authorization"] == "Bearer cs_sup"
    assert CASE_ID in capsys.readouterr().out


def test_show_of_a_case_the_worker_does_not_hold_is_exit_2_naming_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with scripted((404, {"error": f"no case {CASE_ID} is held on this worker"}, {})) as worker:
        assert main(["cases", "show", CASE_ID, "--worker", worker.url]) == 2
    assert f"no case {CASE_ID} (unknown id, or not held by that worker)" in capsys.readouterr().err


def test_a_refused_token_is_exit_2_naming_the_role_it_needs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with scripted((403, {"error": "this call needs the supervisor role"}, {})) as worker:
        assert main(["cases", "list", "--worker", worker.url]) == 2
    err = capsys.readouterr().err
    assert "refused the token: HTTP 403" in err and "supervisor role" in err


def test_a_worker_unavailable_is_asked_again(capsys: pytest.CaptureFixture[str]) -> None:
    busy = (503, {"error": "table recovery has not finished"}, {"Retry-After": "0"})
    with scripted(busy, (200, {"as_of": 0, "cases": []}, {})) as worker:
        assert main(["cases", "list", "--worker", worker.url, "--retries", "1"]) == 0
    assert capsys.readouterr().out == "no case\n"


def test_a_worker_failing_with_500_is_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    with scripted((500, {"error": "internal error"}, {})) as worker:
        assert main(["cases", "show", CASE_ID, "--worker", worker.url]) == 3
    assert f"the worker at {worker.url} failed to answer: HTTP 500" in capsys.readouterr().err


def test_a_closed_worker_is_exit_3_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://{closed_port()}"
    assert main(["cases", "list", "--worker", url, "--retries", "0"]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"claimstream cases list: the worker at {url} did not answer (")
    assert len(err.splitlines()) == 1


def test_an_answer_that_is_not_a_case_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with scripted((200, {"hello": "world"}, {})) as worker:
        assert main(["cases", "show", CASE_ID, "--worker", worker.url]) == 2
    assert "answered something else than a case" in capsys.readouterr().err


DECIDE = ["cases", "decide", CASE_ID, "--outcome", "partly_confirmed", "--nature",
          "operational_error", "--amount", "1250", "--by", "wang.fang"]  # fmt: skip


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    return published_actions(monkeypatch)


def test_decide_names_each_confirm_alert_in_the_published_decision(
    published: list[Any],
) -> None:
    argv = [*DECIDE, "--confirm-alert", "alr-1", "--confirm-alert", "alr-3"]
    assert main(argv) == 0
    assert [a.confirmed_alerts for a in published] == [("alr-1", "alr-3")]


@pytest.mark.parametrize(
    ("more", "message"),
    [
        (["--confirm-alert", "alr-1", "--confirm-alert", "alr-1"],
         "confirmed_alerts names the alert alr-1 twice"),
        (["--outcome", "confirmed", "--confirm-alert", "alr-1"],
         "confirmed_alerts goes only with a partly_confirmed decision"),
    ],
)  # fmt: skip
def test_bad_confirm_alerts_are_refused_before_publishing(
    more: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*DECIDE, *more, "--bootstrap", closed_port()]) == 2
    err = capsys.readouterr().err
    assert "claimstream cases decide: refused, nothing published" in err and message in err


AT = "2026-03-02T10:00:00+08:00"
ACTIONS = [
    (
        ["cases", "open", "institution:H0012", "--institution", "H0012", "--note", "hotline"],
        lambda b: b.open_from_input(
            "institution:H0012", "li.na", institution_id="H0012", note="hotline", at=AT, tz=SH
        ),
    ),
    (
        ["cases", "advance", CASE_ID, "--to", "investigation", "--note", "no appeal"],
        lambda b: b.advance_from_input(
            CASE_ID, "li.na", to="investigation", note="no appeal", at=AT, tz=SH
        ),
    ),
    (
        ["cases", "assign", CASE_ID, "--owner", "zhao.lei"],
        lambda b: b.assign_from_input(CASE_ID, "zhao.lei", "li.na", at=AT, tz=SH),
    ),
    (
        ["cases", "decide", CASE_ID, "--outcome", "confirmed", "--nature", "intentional_fraud",
         "--amount", "1250", "--note", "n"],
        lambda b: b.decide_from_input(
            CASE_ID, "confirmed", "li.na", nature="intentional_fraud", confirmed_amount=1250.0,
            note="n", at=AT, tz=SH,
        ),
    ),
    (
        ["cases", "recover", CASE_ID, "--money", "deducted", "--amount", "1250", "--reference",
         "s-04", "--note", "n"],
        lambda b: b.recover_from_input(
            CASE_ID, "deducted", 1250.0, "li.na", reference="s-04", note="n", at=AT, tz=SH
        ),
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "expected"), ACTIONS, ids=lambda v: v[1] if isinstance(v, list) else ""
)
def test_each_action_sub_command_publishes_the_action_its_options_say(
    argv: list[str], expected: Any, published: list[Any]
) -> None:
    from claimstream.kafka import case_actions

    assert main([*argv, "--by", "li.na", "--at", AT]) == 0
    assert published == [expected(case_actions)]
