"""`claimstream reports`: each action sub-command publishes the action its options say (the
broker faked at `publish_action`), the reads against a scripted worker on loopback (what they
ask, what they print), and a receipt's contact never printed (publishing for real:
tests/integration/test_reports_stream.py)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest

from claimstream.cli.main import main
from claimstream.kafka import report_actions as build
from tests.client.scripted import scripted
from tests.support.publishing import published_actions

SH = ZoneInfo("Asia/Shanghai")
RID = "rpt-3f2a9c0d1e4b5a6978c0d1e2"
AT = "2026-03-06T10:00:00+08:00"
CONTACT = "138-0000-0000"


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    return published_actions(monkeypatch)


ADD = ["reports", "add", "--channel", "hotline", "--name", "Zhang San", "--contact", CONTACT,
       "--about", "pharmacy on Elm St", "--subject", "institution:H0012", "--description",
       "buys cards", "--evidence", "photo-17", "--evidence", "photo-18", "--received-at", AT,
       "--by", "desk.wang"]  # fmt: skip
CASES = [
    (
        ADD,
        lambda: build.receive_from_input(
            channel="hotline", reporter={"anonymous": False, "name": "Zhang San",
            "contact": CONTACT}, about="pharmacy on Elm St", description="buys cards",
            by="desk.wang", subject="institution:H0012", evidence=["photo-17", "photo-18"],
            received_at=AT, tz=SH,
        ),
    ),
    (
        ["reports", "acknowledge", RID, "--note", "called back", "--by", "li.na", "--at", AT],
        lambda: build.acknowledge_from_input(RID, "li.na", note="called back", at=AT, tz=SH),
    ),
    (
        ["reports", "accept", RID, "--subject", "institution:H0012", "--institution", "H0012",
         "--not-told", "--note", "n", "--by", "li.na", "--at", AT],
        lambda: build.accept_from_input(
            RID, "li.na", subject="institution:H0012", institution_id="H0012",
            told_reporter=False, note="n", at=AT, tz=SH,
        ),
    ),
    (
        ["reports", "accept", RID, "--case", "case-7", "--by", "li.na", "--at", AT],
        lambda: build.accept_from_input(
            RID, "li.na", case_id="case-7", told_reporter=True, at=AT, tz=SH
        ),
    ),
    (
        ["reports", "reject", RID, "--reason", "not the fund", "--by", "li.na", "--at", AT],
        lambda: build.reject_from_input(
            RID, "not the fund", "li.na", told_reporter=True, at=AT, tz=SH
        ),
    ),
    (
        ["reports", "feedback", RID, "--note", "told", "--by", "li.na", "--at", AT],
        lambda: build.feedback_from_input(RID, "li.na", note="told", at=AT, tz=SH),
    ),
    (
        ["reports", "reward", RID, "--amount", "500", "--reference", "v17", "--by", "fin.wu",
         "--at", AT],
        lambda: build.reward_from_input(RID, 500.0, "fin.wu", reference="v17", at=AT, tz=SH),
    ),
]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "expected"), CASES, ids=lambda v: v[1] if isinstance(v, list) else ""
)
def test_each_action_sub_command_publishes_the_action_its_options_say(
    argv: list[str], expected: Any, published: list[Any]
) -> None:
    assert main(argv) == 0
    assert published == [expected()]


def test_add_with_json_prints_where_the_report_went_never_the_contact(
    published: list[Any], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*ADD, "--json"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("published act-") and CONTACT not in out


def test_list_asks_the_reports_route_and_prints_a_row_per_report(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLAIMSTREAM_CLIENT_TOKEN", "cs_sup")
    row = {"report_id": RID, "status": "received", "next_stage": "respond", "due": None,
           "overdue": ["respond"], "channel": "hotline", "about": "pharmacy on Elm St"}  # fmt: skip
    with scripted((200, {"as_of": 0, "reports": [row]}, {})) as worker:
        argv = ["reports", "list", "--status", "received", "--overdue", "--open"]
        assert main([*argv, "--worker", worker.url]) == 0
    assert worker.seen[0].path == "/v1/reports?limit=100&status=received&overdue=true&open=true"
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["report", "status", "next", "due", "channel", "about"]
    assert lines[1].split() == [RID, "received", "respond", "-", "LATE", "hotline", "pharmacy",
                                "on", "Elm", "St"]  # fmt: skip


def test_list_of_no_report_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    with scripted((200, {"as_of": 0, "reports": []}, {})) as worker:
        assert main(["reports", "list", "--worker", worker.url]) == 0
    assert capsys.readouterr().out == "no report\n"


def test_a_limit_out_of_range_is_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reports", "list", "--limit", "0", "--worker", "http://127.0.0.1:9"]) == 2
    assert "--limit must be from 1 to 1000" in capsys.readouterr().err


def test_show_prints_the_reporter_only_as_the_worker_gives_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    report = {"report_id": RID, "channel": "hotline", "received_at": AT, "status": "received",
              "next_stage": "respond", "due": None, "overdue": [], "anonymous": False,
              "about": "pharmacy", "subject": {"kind": "institution", "id": "H0012"},
              "case_id": None, "description": "buys cards", "evidence": ["photo-17"],
              "history": [{"at": AT, "type": "report_receive", "by": "desk.wang"}]}  # fmt: skip
    with scripted((200, report, {})) as worker:
        assert main(["reports", "show", RID, "--worker", worker.url]) == 0
    out = capsys.readouterr().out
    assert worker.seen[0].path == f"/v1/reports/{RID}"
    assert "  reporter: real name (withheld)\n" in out
    assert "  about: pharmacy [institution:H0012]\n" in out
    assert f"    {AT}  report_receive      desk.wang\n" in out


def test_show_of_an_unknown_report_is_exit_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with scripted((404, {"error": f"no report {RID} is held on this worker"}, {})) as worker:
        assert main(["reports", "show", RID, "--worker", worker.url]) == 2
    assert f"no report {RID} (unknown id, or not held by that worker)" in capsys.readouterr().err
