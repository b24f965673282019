"""`claimstream alerts review`: input refused before anything is published, a clear error when
the broker cannot be reached (publishing itself: tests/integration/test_api_actions.py)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from claimstream.cli.main import build_parser, main
from claimstream.kafka.actions import normalize_at, verdict_from_input
from tests.cli.support import closed_port

SHANGHAI = ZoneInfo("Asia/Shanghai")


def review(*args: str) -> list[str]:
    return ["alerts", "review", *args]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["A1", "--verdict", "maybe", "--by", "x"], "verdict must be one of confirmed, false_pos"),
        (["A1", "--verdict", "confirmed", "--by", " "], "by must be a non-empty string"),
        (["", "--verdict", "confirmed", "--by", "x"], "alert_id must be a non-empty string"),
        (["A1", "--verdict", "confirmed", "--by", "x", "--at", "2026-03-01T10:00:00"],
         "at needs a UTC offset"),
        (["A1", "--verdict", "confirmed", "--by", "x", "--at", "monday"], "RFC 3339"),
        (["A1", "--verdict", "confirmed", "--by", "x", "--timeout", "0"], "--timeout"),
        (["A1", "--verdict", "confirmed", "--by", "x", "--bootstrap", "http://h:1"],
         "scheme must be kafka://"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_before_publishing(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # --bootstrap points nowhere: had the input passed, the exit status would be 3
    extra = [] if "--bootstrap" in args else ["--bootstrap", closed_port()]
    assert main(review(*args, *extra)) == 2
    err = capsys.readouterr().err
    assert "claimstream alerts review: refused, nothing published" in err
    assert message in err


def test_a_bad_time_zone_setting_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CLAIMSTREAM_TIMEZONE", "Mars/Olympus")
    assert main(review("A1", "--verdict", "confirmed", "--by", "x")) == 2
    assert "Mars/Olympus" in capsys.readouterr().err


def test_verdict_and_by_are_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(review("A1", "--by", "x"))
    assert exit_.value.code == 2
    assert "--verdict" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(review("A1", "--verdict", "confirmed"))
    assert "--by" in capsys.readouterr().err


def test_an_unreachable_broker_is_exit_3_with_where(capsys: pytest.CaptureFixture[str]) -> None:
    where = closed_port()
    code = main(review("A1", "--verdict", "confirmed", "--by", "x", "--bootstrap", where,
                       "--timeout", "5"))  # fmt: skip
    assert code == 3
    err = capsys.readouterr().err
    assert f"claimstream alerts review: cannot reach the broker at {where}" in err


def test_help_names_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["alerts", "review", "--help"])
    out = capsys.readouterr().out
    for word in ("confirmed|false_positive", "--by", "--note", "--at", "--bootstrap", "ALERT_ID"):
        assert word in out
    assert "alerts" in build_parser().format_help()


def test_the_verdict_built_from_input() -> None:
    verdict = verdict_from_input(
        " A1 ", "false_positive", " li.na ", note=" ok ", at="2026-03-01T02:00:00Z", tz=SHANGHAI
    )
    assert (verdict.alert_id, verdict.by, verdict.note) == ("A1", "li.na", "ok")
    assert verdict.at == "2026-03-01T02:00:00+00:00"  # Z spelled as an offset, same instant


def test_at_defaults_to_now_in_the_zone() -> None:
    now = normalize_at(None, SHANGHAI)
    assert now.endswith("+08:00")
    assert (
        normalize_at("2026-03-01T10:00:00.250+08:00", SHANGHAI) == "2026-03-01T10:00:00.250+08:00"
    )
