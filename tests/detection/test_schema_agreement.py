"""The JSON Schema of the event contract and the decoder accept and refuse the same inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from claimstream.detection.decode import decode_event
from claimstream.devtools.simulate import Simulator
from claimstream.model.events import Event
from tests.detection.test_decode import VALID

SCHEMA = json.loads(
    (Path(__file__).parents[2] / "topics" / "schemas" / "event.v1.json").read_text()
)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_every_simulated_event_is_valid_for_both() -> None:
    for event in Simulator(3_000, seed=11).events():
        assert VALIDATOR.is_valid(event), list(VALIDATOR.iter_errors(event))
        assert isinstance(decode_event(event), Event)


@pytest.mark.parametrize(
    "fields",
    [
        {"event_id": None},
        {"days_supply": -1},
        {"days_supply": 0},
        {"quantity": 0},
        {"occurred_at": "2026-03-01T08:00:00"},
        {"event_type": "refund"},
        {"patient_gender": "X"},
        {"patient_age": 200},
        {"institution_id": ""},
        {"patient_id": "PV:XA10AE04"},
        {"doctor_id": "D 1"},
        {"drug_code": "X/1"},
        {"event_id": "e" * 65},
        {"occurred_at": "2200-01-01T00:00:00+08:00"},
        {"occurred_at": "1899-12-31T23:00:00Z"},
        {"occurred_at": "9999-12-31T23:59:59+08:00"},
        {"unit_price": -0.01},
        {"unit_price": "3.50"},
        {"trace_codes": "C1"},
        {"trace_codes": [1]},
        {"trace_codes": [""]},
        {"trace_codes": ["C 1"]},
        {"trace_codes": ["9" * 65]},
        {"trace_codes": ["C1", "C1"]},
        {"trace_codes": [f"C{i}" for i in range(101)]},
    ],
)
def test_both_refuse(fields: dict[str, Any]) -> None:
    obj = {k: v for k, v in {**VALID, **fields}.items() if v is not None}
    assert not VALIDATOR.is_valid(obj)
    assert not isinstance(decode_event(orjson.dumps(obj)), Event)


@pytest.mark.parametrize(
    "fields",
    [
        {"occurred_at": "1900-01-01T00:00:00+08:00"},
        {"occurred_at": "2199-12-31T23:59:59Z"},
        {"patient_id": "P.1_a-b", "doctor_id": "D" * 64},
        {"unit_price": 0},
        {"unit_price": 12.5},
        {"unit_price": None},
        {"trace_codes": None},
        {"trace_codes": []},
        {"trace_codes": ["81234567890123456789", "A.b_c-9"]},
        {"trace_codes": [f"C{i}" for i in range(100)]},
    ],
)
def test_both_accept(fields: dict[str, Any]) -> None:
    obj = {**VALID, **fields}
    assert VALIDATOR.is_valid(obj), list(VALIDATOR.iter_errors(obj))
    assert isinstance(decode_event(orjson.dumps(obj)), Event)
