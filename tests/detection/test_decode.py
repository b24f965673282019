"""The decoder never raises: every kind of bad input becomes a rejection with a reason."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from claimstream.detection.decode import decode_event
from claimstream.model.events import Dispense, Event, Stay
from claimstream.model.rejection import Rejection

VALID: dict[str, Any] = {
    "event_id": "e1",
    "event_type": "dispense",
    "occurred_at": "2026-03-01T08:00:00+08:00",
    "patient_id": "P1",
    "institution_id": "H1",
    "drug_code": "INS",
    "days_supply": 30,
    "quantity": 4,
}


def changed(**fields: Any) -> bytes:
    obj = {**VALID, **fields}
    return orjson.dumps({k: v for k, v in obj.items() if v is not DROP})


DROP = object()


def test_a_valid_dispense_is_decoded_with_event_time_in_seconds() -> None:
    event = decode_event(orjson.dumps(VALID))
    assert isinstance(event, Event)
    assert isinstance(event.body, Dispense) and event.body.days_supply == 30
    assert event.ts == 1772323200.0  # 2026-03-01T00:00:00Z


def test_unknown_extra_fields_are_kept() -> None:
    event = decode_event(changed(hospital_ward="7B", nested={"a": 1}))
    assert isinstance(event, Event)
    assert event.raw["hospital_ward"] == "7B" and event.raw["nested"] == {"a": 1}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe", "not_utf8"),
        (b"{not json", "not_json"),
        (b"", "not_json"),
        (b"[1, 2]", "not_object"),
        (b'"text"', "not_object"),
        (changed(event_id=DROP), "missing_field"),
        (changed(event_type=DROP), "missing_field"),
        (changed(occurred_at=DROP), "missing_field"),
        (changed(patient_id=DROP), "missing_field"),
        (changed(institution_id=DROP), "missing_field"),
        (changed(drug_code=DROP), "missing_field"),
        (changed(days_supply=DROP), "missing_field"),
        (changed(quantity=DROP), "missing_field"),
        (changed(event_id=7), "invalid_field"),
        (changed(patient_id=""), "invalid_field"),
        (changed(days_supply=-3), "invalid_field"),
        (changed(days_supply=0), "invalid_field"),
        (changed(days_supply=2.5), "invalid_field"),
        (changed(days_supply="30"), "invalid_field"),
        (changed(days_supply=True), "invalid_field"),
        (changed(quantity=0), "invalid_field"),
        (changed(quantity="4"), "invalid_field"),
        (changed(patient_age=-1), "invalid_field"),
        (changed(patient_gender="X"), "invalid_field"),
        (changed(long_term_rx="yes"), "invalid_field"),
        (changed(occurred_at="yesterday"), "invalid_field"),
        (changed(occurred_at="2026-03-01T08:00:00"), "naive_timestamp"),
        (changed(event_type="refund"), "unknown_event_type"),
    ],
)
def test_bad_input_is_rejected_with_a_reason(raw: bytes, reason: str) -> None:
    result = decode_event(raw)
    assert isinstance(result, Rejection)
    assert result.reason == reason
    assert result.detail  # a readable sentence


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"event_type": "consultation", "mode": "video"}, "invalid_field"),
        ({"event_type": "consultation"}, "missing_field"),
        ({"event_type": "admission", "admission_id": "A1"}, "missing_field"),
        ({"event_type": "discharge", "diagnosis_code": "I10"}, "missing_field"),
        ({"event_type": "claim", "claim_id": "C1", "visit_type": "inpatient"}, "missing_field"),
        (
            {
                "event_type": "claim",
                "claim_id": "C1",
                "visit_type": "home",
                "total_amount": 1,
                "fund_amount": 1,
            },
            "invalid_field",
        ),
        (
            {
                "event_type": "claim",
                "claim_id": "C1",
                "visit_type": "outpatient",
                "total_amount": 10,
                "fund_amount": 5,
                "items": [{"code": "X", "category": "food", "quantity": 1, "unit_price": 1}],
            },
            "invalid_field",
        ),
        (
            {
                "event_type": "claim",
                "claim_id": "C1",
                "visit_type": "outpatient",
                "total_amount": -10,
                "fund_amount": 5,
            },
            "invalid_field",
        ),
    ],
)
def test_bad_bodies_of_the_other_types(fields: dict[str, Any], reason: str) -> None:
    base = {k: v for k, v in VALID.items() if k not in ("drug_code", "days_supply", "quantity")}
    result = decode_event(orjson.dumps({**base, **fields}))
    assert isinstance(result, Rejection) and result.reason == reason


def test_a_claim_with_items_is_parsed() -> None:
    base = {k: v for k, v in VALID.items() if k not in ("drug_code", "days_supply", "quantity")}
    claim = {
        **base,
        "event_type": "claim",
        "claim_id": "C1",
        "visit_type": "inpatient",
        "total_amount": 12000.5,
        "fund_amount": 9000,
        "drg_code": "ES23",
        "drg_standard_cost": 8000,
        "items": [
            {
                "code": "CT1",
                "category": "exam",
                "quantity": 1,
                "unit_price": 300,
                "special_exam": True,
            }
        ],
    }
    event = decode_event(orjson.dumps(claim))
    assert isinstance(event, Event)
    assert event.body.items[0].special_exam is True  # type: ignore[union-attr]


CLAIM: dict[str, Any] = {
    **{k: v for k, v in VALID.items() if k not in ("drug_code", "days_supply", "quantity")},
    "event_type": "claim",
    "claim_id": "C1",
    "visit_type": "outpatient",
    "total_amount": 10,
    "fund_amount": 5,
}


@pytest.mark.parametrize("category", [[], {}, ["exam"], {"a": 1}, None, 3])
def test_an_item_category_of_any_json_type_is_a_rejection_not_a_crash(category: Any) -> None:
    item = {"code": "X", "category": category, "quantity": 1, "unit_price": 1}
    result = decode_event(orjson.dumps({**CLAIM, "items": [item]}))
    assert isinstance(result, Rejection) and result.reason == "invalid_field"
    assert "items[0].category" in result.detail


@pytest.mark.parametrize("field", ["quantity", "unit_price"])
def test_an_integer_too_large_for_a_float_is_a_rejection_not_a_crash(field: str) -> None:
    item = {"code": "X", "category": "exam", "quantity": 1, "unit_price": 1, field: 10**400}
    result = decode_event({**CLAIM, "items": [item]})  # only a dict can carry such an int
    assert isinstance(result, Rejection) and result.reason == "invalid_field"
    assert result.detail == f"items[0].{field} must be a number"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"event_id": "\xed\xa0\x80"}',  # an encoded surrogate
        b'{"event_id": "\xf4\x90\x80\x80"}',  # beyond U+10FFFF
        b'{"event_id": "\xc0\xaf"}',  # overlong
        b'{"event_id": "e1", "x": "\xff"}',
        b"\xff\xfe",
    ],
)
def test_invalid_utf8_anywhere_is_not_utf8_rather_than_not_json(raw: bytes) -> None:
    result = decode_event(raw)
    assert isinstance(result, Rejection) and result.reason == "not_utf8"


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"quantity": float("nan")}, "quantity must be a number"),
        ({"quantity": 1e308 * 10}, "quantity must be a number"),
        ({"quantity": 1e300}, None),  # at the fast path's bound: the checked path accepts it
        ({"quantity": -0.5}, "quantity must be greater than 0, got -0.5"),
        ({"chronic": None, "long_term_rx": None, "drug_name": None}, None),
        ({"drug_name": ""}, "drug_name must be a non-empty string when present"),
        ({"atc_code": 5}, "atc_code must be a non-empty string when present"),
    ],
)
def test_the_fast_and_checked_paths_agree_on_dispense_edge_cases(
    fields: dict[str, Any], detail: str | None
) -> None:
    result = decode_event({**VALID, **fields})
    if detail is None:
        assert isinstance(result, Event)
    else:
        assert isinstance(result, Rejection) and result.detail == detail


def test_event_time_is_exactly_what_datetime_timestamp_gives() -> None:
    """The decoder computes occurred_at's POSIX seconds itself (cheaper than .timestamp());
    it must be the very same float for every offset, fraction and year."""
    import random
    from datetime import datetime, timedelta, timezone

    from claimstream.detection.decode import _timestamp

    rng = random.Random(5)
    spellings = ["2026-03-01T08:00:00Z", "20260301T080000+0800", "2026-03-01 08:00-03:30"]
    for _ in range(20_000):
        moment = datetime(
            rng.choice([1, 1969, 1970, 2026, 9999, rng.randrange(1, 10_000)]),
            rng.randrange(1, 13),
            rng.randrange(1, 29),
            rng.randrange(24),
            rng.randrange(60),
            rng.randrange(60),
            rng.choice([0, 1, 500_000, rng.randrange(1_000_000)]),
            tzinfo=timezone(timedelta(seconds=rng.randrange(-86_399, 86_400))),
        )
        spellings.append(moment.isoformat(timespec=rng.choice(["seconds", "milliseconds", "auto"])))
    for text in spellings:
        assert _timestamp(text) == datetime.fromisoformat(text).timestamp(), text


@pytest.mark.parametrize(
    "occurred_at",
    [
        "9999-12-31T23:59:59+08:00",
        "2200-01-01T00:00:00Z",
        "1899-12-31T23:59:59Z",
        "0001-01-01T00:00Z",
    ],
)
def test_a_year_outside_the_contract_is_implausible(occurred_at: str) -> None:
    result = decode_event(changed(occurred_at=occurred_at))
    assert isinstance(result, Rejection) and result.reason == "implausible_timestamp"
    assert "1900..2199" in result.detail


@pytest.mark.parametrize(
    "occurred_at", ["1900-01-01T00:00:00+23:59", "2199-12-31T23:59:59.999999-23:59"]
)
def test_the_contracts_first_and_last_years_are_accepted_in_any_offset(occurred_at: str) -> None:
    assert isinstance(decode_event(changed(occurred_at=occurred_at)), Event)


@pytest.mark.parametrize(
    "field", ["event_id", "patient_id", "institution_id", "doctor_id", "department_id", "drug_code"]
)
@pytest.mark.parametrize("value", ["PV:XA10AE04", "P 1", "a/b", "x" * 65, "病人"])
def test_an_id_outside_the_id_rule_is_refused_naming_the_field(field: str, value: str) -> None:
    result = decode_event(changed(**{field: value}))
    assert isinstance(result, Rejection) and result.reason == "invalid_field"
    assert result.detail.startswith(field)


@pytest.mark.parametrize(
    ("price", "decoded"),
    [(None, None), (0, 0.0), (12, 12.0), (3.75, 3.75), (1e300, 1e300)],  # 1e300: checked path
)
def test_a_dispensing_may_carry_a_unit_price(price: Any, decoded: float | None) -> None:
    event = decode_event({**VALID, "unit_price": price})
    assert isinstance(event, Event) and isinstance(event.body, Dispense)
    assert event.body.unit_price == decoded


def test_a_dispensing_without_a_unit_price_has_none() -> None:
    event = decode_event(orjson.dumps(VALID))
    assert isinstance(event, Event) and isinstance(event.body, Dispense)
    assert event.body.unit_price is None


@pytest.mark.parametrize(
    ("price", "detail"),
    [
        (-1, "unit_price must not be negative, got -1"),
        ("12.5", "unit_price must be a number"),
        (True, "unit_price must be a number"),
        (float("inf"), "unit_price must be a number"),
    ],
)
def test_a_bad_unit_price_is_refused_naming_it(price: Any, detail: str) -> None:
    result = decode_event({**VALID, "unit_price": price})
    assert isinstance(result, Rejection)
    assert (result.reason, result.detail) == ("invalid_field", detail)


STAY: dict[str, Any] = {
    **{k: v for k, v in VALID.items() if k not in ("drug_code", "days_supply", "quantity")},
    "event_type": "admission",
    "admission_id": "S1",
    "diagnosis_code": "Z51.1",
}


@pytest.mark.parametrize(("planned", "decoded"), [(True, True), (False, False), (None, False)])
def test_a_stay_may_say_it_is_planned(planned: Any, decoded: bool) -> None:
    event = decode_event(orjson.dumps({**STAY, "planned": planned}))
    assert isinstance(event, Event) and isinstance(event.body, Stay)
    assert event.body.planned is decoded


def test_a_stay_without_planned_is_not_planned() -> None:
    event = decode_event(orjson.dumps(STAY))
    assert isinstance(event, Event) and isinstance(event.body, Stay)
    assert event.body.planned is False


@pytest.mark.parametrize("planned", ["yes", 1, 0, "true"])
def test_a_planned_flag_that_is_not_a_bool_is_refused_naming_it(planned: Any) -> None:
    rejection = decode_event(orjson.dumps({**STAY, "planned": planned}))
    assert isinstance(rejection, Rejection)
    assert rejection.reason == "invalid_field" and "planned" in rejection.detail


@pytest.mark.parametrize(
    ("codes", "decoded"),
    [
        (None, ()),
        ([], ()),
        (["81234567890123456789"], ("81234567890123456789",)),
        (["A", "B.2", "c_3-x"], ("A", "B.2", "c_3-x")),
        (["9" * 64], ("9" * 64,)),
        ([f"C{i}" for i in range(100)], tuple(f"C{i}" for i in range(100))),
    ],
)
def test_a_dispensing_may_carry_trace_codes(codes: Any, decoded: tuple[str, ...]) -> None:
    # 1e300: at the fast path's bound, so the checked path decodes it
    for quantity in (4, 1e300):
        event = decode_event(orjson.dumps({**VALID, "trace_codes": codes, "quantity": quantity}))
        assert isinstance(event, Event) and isinstance(event.body, Dispense)
        assert event.body.trace_codes == decoded


@pytest.mark.parametrize(
    ("codes", "detail"),
    [
        ("C1", "trace_codes must be a list of strings"),
        ({"C1": 1}, "trace_codes must be a list of strings"),
        ([1], "trace_codes[0] must be 1 to 64 letters, digits, '.', '_' or '-'"),
        (["C1", ""], "trace_codes[1] must be 1 to 64 letters, digits, '.', '_' or '-'"),
        (["C 1"], "trace_codes[0] must be 1 to 64 letters, digits, '.', '_' or '-'"),
        (["C\x1f1"], "trace_codes[0] must be 1 to 64 letters, digits, '.', '_' or '-'"),
        (["9" * 65], "trace_codes[0] must be 1 to 64 letters, digits, '.', '_' or '-'"),
        ([None], "trace_codes[0] must be 1 to 64 letters, digits, '.', '_' or '-'"),
        ([f"C{i}" for i in range(101)], "trace_codes holds 101 codes; at most 100 per dispensing"),
        (["C1", "C2", "C1"], "trace_codes names the same code twice"),
    ],
)
def test_bad_trace_codes_are_refused_naming_the_field(codes: Any, detail: str) -> None:
    for fields in ({"trace_codes": codes}, {"trace_codes": codes, "quantity": 1e300}):
        result = decode_event(orjson.dumps({**VALID, **fields}))
        assert isinstance(result, Rejection)
        assert (result.reason, result.detail) == ("invalid_field", detail)


def test_trace_codes_of_another_event_type_are_kept_as_an_extra_field_only() -> None:
    event = decode_event(
        {**VALID, "event_type": "consultation", "mode": "online", "trace_codes": ["C1"]}
    )
    assert isinstance(event, Event) and event.raw["trace_codes"] == ["C1"]
    assert event.keys("trace_code") == ()
