"""Alerts back from their published records, with and without money and law."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from claimstream.sanctions.codec import alert_from_dict
from tests.sanctions.support import alert

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "topics" / "schemas" / "alert.v1.json").read_text()
)
ALERT_V1 = jsonschema.Draft202012Validator(SCHEMA)

MONEY = {
    "amount": 226.5,
    "legal_basis": "《医疗保障基金使用监督管理条例》第十五条、第三十八条第二项",
    "behaviour": "重复开药",
    "lines": [{"index": 2, "code": "CT-HEAD", "amount": 100.0}],
}


def record(**fields: Any) -> dict[str, Any]:
    return {**alert("a1", 0).to_dict(), **fields}


def test_an_alert_published_before_money_and_law_reads_back_and_writes_back_unchanged() -> None:
    old = alert("a1", 0).to_dict()
    assert not set(MONEY) & old.keys()
    back = alert_from_dict(orjson.loads(orjson.dumps(old)))
    assert (back.amount, back.legal_basis, back.behaviour, back.lines) == (None, "", "", ())
    assert back.to_dict() == old


def test_money_and_law_read_back_as_published() -> None:
    back = alert_from_dict(record(**MONEY))
    assert back.amount == 226.5
    assert back.legal_basis == MONEY["legal_basis"] and back.behaviour == "重复开药"
    assert back.lines == ((2, "CT-HEAD", 100.0),)
    assert back.to_dict() == record(**MONEY)


def test_a_null_amount_is_written_and_read_as_null() -> None:
    unpriced = dataclasses.replace(alert("a1", 0), legal_basis="《条例》", behaviour="分解住院")
    written = unpriced.to_dict()
    assert written["amount"] is None and written["lines"] == []
    assert alert_from_dict(written) == unpriced


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"amount": "12"}, "amount"),
        ({"amount": True}, "amount"),
        ({"legal_basis": 15}, "legal_basis"),
        ({"lines": {"index": 0}}, "lines"),
        ({"lines": [{"index": -1, "code": "X", "amount": 1}]}, r"lines\[0\].index"),
        ({"lines": [{"index": 0, "code": "", "amount": 1}]}, r"lines\[0\].code"),
        ({"lines": [{"index": 0, "code": "X", "amount": "1"}]}, r"lines\[0\].amount"),
    ],
)
def test_a_malformed_field_is_refused_by_name(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        alert_from_dict(record(**fields))


@pytest.mark.parametrize("fields", [{}, MONEY, {**MONEY, "amount": None, "lines": []}])
def test_old_and_new_alerts_are_valid_alert_v1(fields: dict[str, Any]) -> None:
    ALERT_V1.validate(record(**fields))


def test_the_schema_refuses_a_line_without_its_code() -> None:
    with pytest.raises(jsonschema.ValidationError):
        ALERT_V1.validate(record(lines=[{"index": 0, "amount": 1.0}]))
