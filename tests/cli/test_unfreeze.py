"""`claimstream unfreeze`: scopes, grounds and reasons checked before anything is published
(publishing itself: tests/integration/test_api_actions.py)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from claimstream.cli.main import build_parser, main
from claimstream.kafka.actions import parse_scope, unfreeze_from_input
from claimstream.model.outputs import Scope
from tests.cli.support import closed_port

UTC8 = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hospital:H1", "--reason", "r", "--by", "x"], "scope kind must be one of"),
        (["institution", "--reason", "r", "--by", "x"], "KIND:ID or KIND:ID:DRUG"),
        (["institution:", "--reason", "r", "--by", "x"], "non-empty id"),
        (["institution:H1:", "--reason", "r", "--by", "x"], "empty drug code"),
        (["institution:H1", "--reason", "  ", "--by", "x"], "reason must be a non-empty string"),
        (["institution:H1", "--reason", "r", "--by", ""], "by must be a non-empty string"),
        (["institution:H1", "--reason", "r", "--by", "x", "--ground", "mercy"],
         "ground must be one of appeal, reviewer"),
        (["institution:H1", "--reason", "r", "--by", "x", "--at", "2026-03-01 10:00"],
         "at needs a UTC offset"),
    ],
)  # fmt: skip
def test_bad_input_is_refused_before_publishing(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["unfreeze", *args, "--bootstrap", closed_port()]) == 2
    err = capsys.readouterr().err
    assert "claimstream unfreeze: refused, nothing published" in err
    assert message in err


def test_reason_and_by_are_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["unfreeze", "institution:H1", "--by", "x"])
    assert exit_.value.code == 2
    assert "--reason" in capsys.readouterr().err


def test_an_unreachable_broker_is_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    where = closed_port()
    code = main(["unfreeze", "doctor:D1", "--reason", "r", "--by", "x", "--bootstrap", where])
    assert code == 3
    assert f"claimstream unfreeze: cannot reach the broker at {where}" in capsys.readouterr().err


def test_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["unfreeze", "--help"])
    out = capsys.readouterr().out
    for word in ("KIND:ID[:DRUG]", "--reason", "--by", "appeal|reviewer", "default reviewer"):
        assert word in out


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("institution:H1", Scope("institution", "H1")),
        ("doctor:D7:X01", Scope("doctor", "D7", "X01")),
        ("patient:P1:A:B", Scope("patient", "P1", "A:B")),  # a drug code may hold ':'
        ({"kind": "patient", "id": "P3"}, Scope("patient", "P3")),
        ({"kind": "doctor", "id": "D1", "drug_code": "X9"}, Scope("doctor", "D1", "X9")),
    ],
)
def test_scopes(text: object, scope: Scope) -> None:
    assert parse_scope(text) == scope


@pytest.mark.parametrize(
    "bad", [None, 7, "", "doctor", {"kind": "doctor"}, {"kind": "x", "id": "1"},
            {"kind": "doctor", "id": "D1", "drug_code": ""}],
)  # fmt: skip
def test_bad_scopes(bad: object) -> None:
    with pytest.raises(ValueError, match="scope"):
        parse_scope(bad)


def test_ground_defaults_to_reviewer() -> None:
    action = unfreeze_from_input(
        "institution:H1", "r", "x", at="2026-03-01T10:00:00+08:00", tz=UTC8
    )
    assert action.ground == "reviewer"
    appeal = unfreeze_from_input("institution:H1", "r", "x", ground="appeal", at=action.at, tz=UTC8)
    assert appeal.action_id != action.action_id  # the ground is part of what was decided
