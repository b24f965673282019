"""topics/schemas/sanction.v1.json describes exactly the notices the ladder publishes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from claimstream.model.outputs import Command
from claimstream.sanctions import Escalation
from claimstream.sanctions.decisions import GradeChange, PointsChange, WarningIssued
from tests.sanctions.support import alert, ts, verdict

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "topics" / "schemas" / "sanction.v1.json").read_text()
)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def notices() -> list[Any]:
    """A walk that gives warnings, points both ways and grade changes down to D."""
    esc = Escalation()
    states: dict[str, Any] = {}
    out: list[Any] = []
    for i in range(10):
        a = alert(f"a{i}", i * 40, severity="high", amount=20_000.0)
        for subject in esc.subjects(a):
            key = f"{subject.kind}:{subject.id}"
            state = states.setdefault(key, esc.new_state(subject))
            out += esc.on_alert(state, a, ts(i * 40))
            v = verdict(a, "confirmed" if i % 3 else "false_positive", i * 40 + 1)
            out += esc.on_verdict(state, a, v, ts(i * 40 + 1))
            if i == 1:
                out += esc.on_verdict(state, a, verdict(a, "false_positive", 42), ts(42))
    return [d for d in out if not isinstance(d, Command)]


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_every_notice_kind_validates() -> None:
    produced = notices()
    kinds = {type(d) for d in produced}
    assert kinds == {WarningIssued, GradeChange, PointsChange}
    assert any(isinstance(d, PointsChange) and d.delta < 0 for d in produced)
    for decision in produced:
        record = decision.to_dict()
        assert VALIDATOR.is_valid(record), list(VALIDATOR.iter_errors(record))


def test_a_notice_with_a_missing_or_extra_field_is_refused() -> None:
    record = notices()[0].to_dict()
    assert not VALIDATOR.is_valid({k: v for k, v in record.items() if k != "reason"})
    assert not VALIDATOR.is_valid({**record, "surprise": 1})
    assert not VALIDATOR.is_valid({**record, "schema": "command.v1"})
