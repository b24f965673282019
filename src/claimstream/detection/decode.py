"""Decode and validate one raw message against event contract v1.

Hand-written rather than run through a JSON Schema validator because it is on the hot path of
every event (a schema validator costs ~20x more); `tests/detection/test_schema_agreement.py`
keeps it in step with `topics/schemas/event.v1.json`. Never raises: bad input yields a
`Rejection`.

What it lets through is safe downstream: ids match `model.ids.ID_PATTERN` (so composite keys
cannot collide) and `occurred_at` is written with a year in `EARLIEST_YEAR..LATEST_YEAR` (so
no calendar or formatting helper can overflow). The configured plausible range and the
worker's future check are the engine's and the processor's, which have the configuration and
the clock.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, TypeVar, cast

import orjson

from claimstream.model.events import (
    EARLIEST_YEAR,
    EVENT_TYPES,
    LATEST_YEAR,
    MAX_TRACE_CODES,
    TRACE_CODE_MAX_LENGTH,
    Body,
    Claim,
    ClaimItem,
    Consultation,
    Dispense,
    Event,
    EventType,
    Stay,
)
from claimstream.model.ids import ID_MAX_LENGTH, id_problem, is_valid_id
from claimstream.model.rejection import InvalidEvent, Rejection

_T = TypeVar("_T")
#: `is_valid_id` without the call: a compiled fullmatch over the id charset and length
_ID = re.compile(f"[A-Za-z0-9._-]{{1,{ID_MAX_LENGTH}}}").fullmatch
#: what a drug traceability code may look like (the id charset, its own length bound)
_TRACE_CODE = re.compile(f"[A-Za-z0-9._-]{{1,{TRACE_CODE_MAX_LENGTH}}}").fullmatch
_ITEM_CATEGORIES = frozenset(("drug", "exam", "lab", "service", "material"))
_VISIT_TYPES = frozenset(("outpatient", "inpatient", "online"))


def decode_event(raw: bytes | str | dict[str, Any]) -> Event | Rejection:
    """Parse one message. Returns the event, or the reason it goes to the dead letter."""
    try:
        if isinstance(raw, dict):
            obj: Any = raw
        else:
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                # orjson validates all of its input as UTF-8 first, so whatever Python cannot
                # decode fails here too: telling the two apart costs nothing on good input.
                if isinstance(raw, bytes):
                    try:
                        raw.decode("utf-8")
                    except UnicodeDecodeError:
                        return Rejection("not_utf8", "the message is not valid UTF-8")
                return Rejection("not_json", f"the message is not JSON: {exc}")
        if not isinstance(obj, dict):
            return Rejection("not_object", f"expected a JSON object, got {type(obj).__name__}")
        return _event(obj)
    except InvalidEvent as exc:
        return exc.rejection


def _event(obj: dict[str, Any]) -> Event:
    get = obj.get
    event_type = get("event_type")
    body = _BODIES.get(event_type) if type(event_type) is str else None
    event_id, patient_id, institution_id = get("event_id"), get("patient_id"), get("institution_id")
    doctor_id, department_id = get("doctor_id"), get("department_id")
    age, gender = get("patient_age"), get("patient_gender")
    if (
        # The common case, checked in one expression: every field present and well typed.
        body is not None
        and type(event_id) is str
        and _ID(event_id)
        and type(patient_id) is str
        and _ID(patient_id)
        and type(institution_id) is str
        and _ID(institution_id)
        and (doctor_id is None or (type(doctor_id) is str and _ID(doctor_id)))
        and (department_id is None or (type(department_id) is str and _ID(department_id)))
        and (age is None or (type(age) is int and 0 <= age <= 150))
        and (gender is None or gender == "M" or gender == "F")
    ):
        occurred_at = _req_str(obj, "occurred_at")
        return Event(
            event_id,
            event_type,  # type: ignore[arg-type]  # checked against _BODIES above
            occurred_at,
            _event_time(occurred_at),
            patient_id,
            institution_id,
            body(obj),
            doctor_id,
            department_id,
            age,
            gender,
            obj,
        )
    return _event_with_reasons(obj)


def _event_with_reasons(obj: dict[str, Any]) -> Event:
    """The slow path: the same checks one by one, to name the first field that is wrong."""
    event_type = _req_str(obj, "event_type")
    if event_type not in EVENT_TYPES:
        raise InvalidEvent(
            "unknown_event_type",
            f"event_type {event_type!r} is not one of {', '.join(sorted(EVENT_TYPES))}",
        )
    occurred_at = _req_str(obj, "occurred_at")
    ts = _event_time(occurred_at)
    age = _opt(obj, "patient_age", int)
    if age is not None and not 0 <= age <= 150:
        raise InvalidEvent("invalid_field", f"patient_age {age} is outside 0..150")
    gender = _opt(obj, "patient_gender", str)
    if gender is not None and gender not in ("M", "F"):
        raise InvalidEvent("invalid_field", f"patient_gender must be 'M' or 'F', got {gender!r}")
    return Event(
        event_id=_req_id(obj, "event_id"),
        event_type=cast(EventType, event_type),
        occurred_at=occurred_at,
        ts=ts,
        patient_id=_req_id(obj, "patient_id"),
        institution_id=_req_id(obj, "institution_id"),
        doctor_id=_opt_id(obj, "doctor_id"),
        department_id=_opt_id(obj, "department_id"),
        patient_age=age,
        patient_gender=cast(Any, gender),
        body=_BODIES[event_type](obj),
        raw=obj,
    )


def _event_time(value: str) -> float:
    """occurred_at as POSIX seconds, refused unless written with a year the contract accepts."""
    ts = _timestamp(value)
    # Every form fromisoformat parses starts with the four digits of the year.
    if not EARLIEST_YEAR <= int(value[:4]) <= LATEST_YEAR:
        raise InvalidEvent(
            "implausible_timestamp",
            f"occurred_at {value!r} is outside the years {EARLIEST_YEAR}..{LATEST_YEAR} the "
            "contract accepts",
        )
    return ts


def _timestamp(value: str) -> float:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidEvent(
            "invalid_field", f"occurred_at {value!r} is not an ISO-8601 timestamp"
        ) from None
    zone = parsed.tzinfo
    # fromisoformat sets a fixed-offset `timezone` or nothing, so tzinfo alone tells.
    if zone is None:
        raise InvalidEvent(
            "naive_timestamp",
            f"occurred_at {value!r} has no UTC offset (write e.g. 2026-03-01T08:00:00+08:00)",
        )

    # `parsed.timestamp()` exactly (the same whole number of microseconds since the epoch,
    # divided the same way), without building the intermediate timedelta: a third of the cost.
    offset = _OFFSET_US.get(zone)
    if offset is None:
        offset = _OFFSET_US[zone] = _microseconds(parsed.utcoffset())
    seconds = (
        (parsed.toordinal() - _EPOCH_ORDINAL) * 86_400
        + parsed.hour * 3_600
        + parsed.minute * 60
        + parsed.second
    )
    return (seconds * 1_000_000 + parsed.microsecond - offset) / 1_000_000


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
#: UTC offset in microseconds of each fixed-offset zone seen (a handful: producers' offsets)
_OFFSET_US: dict[tzinfo, int] = {}


def _microseconds(delta: timedelta | None) -> int:
    assert delta is not None  # a fixed-offset timezone always has one
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# --- field helpers -------------------------------------------------------------------------


def _req_str(obj: dict[str, Any], name: str) -> str:
    value = obj.get(name)
    if value is None:
        raise InvalidEvent("missing_field", f"required field {name!r} is missing")
    if not isinstance(value, str) or not value:
        raise InvalidEvent("invalid_field", f"{name} must be a non-empty string")
    return value


def _req_id(obj: dict[str, Any], name: str) -> str:
    value = _req_str(obj, name)
    if not is_valid_id(value):
        raise InvalidEvent("invalid_field", cast(str, id_problem(name, value)))
    return value


def _opt_id(obj: dict[str, Any], name: str) -> str | None:
    value = _opt_str(obj, name)
    if value is not None and not is_valid_id(value):
        raise InvalidEvent("invalid_field", cast(str, id_problem(name, value)))
    return value


def _opt_str(obj: dict[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidEvent("invalid_field", f"{name} must be a non-empty string when present")
    return value


def _opt(obj: dict[str, Any], name: str, kind: type[_T]) -> _T | None:
    value = obj.get(name)
    if value is None:
        return None
    # bool is an int in Python; a JSON true is never a valid integer or number here.
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise InvalidEvent("invalid_field", f"{name} must be {_KIND_NAMES[kind]}")
    return value


def _req_number(obj: dict[str, Any], name: str, *, positive: bool = False) -> float:
    value = obj.get(name)
    if value is None:
        raise InvalidEvent("missing_field", f"required field {name!r} is missing")
    return _number(value, name, positive=positive)


def _number(value: Any, name: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
        raise InvalidEvent("invalid_field", f"{name} must be a number")
    if positive and value <= 0:
        raise InvalidEvent("invalid_field", f"{name} must be greater than 0, got {value}")
    if value < 0:
        raise InvalidEvent("invalid_field", f"{name} must not be negative, got {value}")
    return float(value)


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond any float (from a dict, or orjson's u64)
        return False


def _choice(obj: dict[str, Any], name: str, allowed: frozenset[str]) -> str:
    value = _req_str(obj, name)
    if value not in allowed:
        raise InvalidEvent(
            "invalid_field", f"{name} {value!r} is not one of {', '.join(sorted(allowed))}"
        )
    return value


_KIND_NAMES: dict[type, str] = {int: "an integer", str: "a string", bool: "a boolean"}


# --- per-type bodies -----------------------------------------------------------------------
#
# Each body has a fast path that accepts only the common, fully valid shape (exact types, in
# range) and builds the same values the checked path would; anything else goes to the checked
# path, which names the first field that is wrong. So the fast path never decides a rejection.

#: numbers at or above this take the checked path (which also refuses what is not finite or
#: is an integer too large for a float); no real amount or quantity comes near it
_HUGE = 1e300


def _dispense(obj: dict[str, Any]) -> Body:
    get = obj.get
    drug_code, days, quantity = get("drug_code"), get("days_supply"), get("quantity")
    drug_name, atc_code = get("drug_name"), get("atc_code")
    long_term_rx, chronic, price = get("long_term_rx"), get("chronic"), get("unit_price")
    if (
        type(days) is int
        and days > 0
        and type(drug_code) is str
        and _ID(drug_code)
        and (type(quantity) is float or type(quantity) is int)
        and 0 < quantity < _HUGE
        and (drug_name is None or (type(drug_name) is str and drug_name))
        and (atc_code is None or (type(atc_code) is str and atc_code))
        and (long_term_rx is None or long_term_rx is True or long_term_rx is False)
        and (chronic is None or chronic is True or chronic is False)
        and (price is None or ((type(price) is float or type(price) is int) and 0 <= price < _HUGE))
    ):
        codes = get("trace_codes")
        return Dispense(
            drug_code,
            days,
            float(quantity),
            drug_name,
            atc_code,
            long_term_rx or False,
            chronic or False,
            None if price is None else float(price),
            () if codes is None else _trace_codes(codes),
        )
    return _dispense_checked(obj)


def _trace_codes(value: Any) -> tuple[str, ...]:
    """`trace_codes`: a list of distinct codes, at most `MAX_TRACE_CODES`, each a string of
    the id characters of at most `TRACE_CODE_MAX_LENGTH` (else `invalid_field`)."""
    if type(value) is not list:
        raise InvalidEvent("invalid_field", "trace_codes must be a list of strings")
    if len(value) > MAX_TRACE_CODES:
        raise InvalidEvent(
            "invalid_field",
            f"trace_codes holds {len(value)} codes; at most {MAX_TRACE_CODES} per dispensing",
        )
    for index, code in enumerate(value):
        if type(code) is not str or not _TRACE_CODE(code):
            raise InvalidEvent(
                "invalid_field",
                f"trace_codes[{index}] must be 1 to {TRACE_CODE_MAX_LENGTH} letters, digits, "
                "'.', '_' or '-'",
            )
    codes = tuple(value)
    if len(set(codes)) != len(codes):
        raise InvalidEvent("invalid_field", "trace_codes names the same code twice")
    return codes


def _dispense_checked(obj: dict[str, Any]) -> Body:
    days = obj.get("days_supply")
    if days is None:
        raise InvalidEvent("missing_field", "required field 'days_supply' is missing")
    if isinstance(days, bool) or not isinstance(days, int):
        raise InvalidEvent("invalid_field", "days_supply must be an integer")
    if days <= 0:
        raise InvalidEvent("invalid_field", f"days_supply must be greater than 0, got {days}")
    price, codes = obj.get("unit_price"), obj.get("trace_codes")
    return Dispense(
        drug_code=_req_id(obj, "drug_code"),
        days_supply=days,
        quantity=_req_number(obj, "quantity", positive=True),
        drug_name=_opt_str(obj, "drug_name"),
        atc_code=_opt_str(obj, "atc_code"),
        long_term_rx=_opt(obj, "long_term_rx", bool) or False,
        chronic=_opt(obj, "chronic", bool) or False,
        unit_price=None if price is None else _number(price, "unit_price"),
        trace_codes=() if codes is None else _trace_codes(codes),
    )


_MODES = frozenset(("online", "offline"))


def _consultation(obj: dict[str, Any]) -> Body:
    mode, consultation_id = obj.get("mode"), obj.get("consultation_id")
    if (type(mode) is str and (mode == "online" or mode == "offline")) and (
        consultation_id is None or (type(consultation_id) is str and consultation_id)
    ):
        return Consultation(cast(Any, mode), consultation_id)
    mode = _choice(obj, "mode", _MODES)
    return Consultation(mode=cast(Any, mode), consultation_id=_opt_str(obj, "consultation_id"))


def _stay(obj: dict[str, Any]) -> Body:
    get = obj.get
    admission_id, diagnosis_code, emergency, planned = (
        get("admission_id"),
        get("diagnosis_code"),
        get("emergency"),
        get("planned"),
    )
    if (
        type(admission_id) is str
        and admission_id
        and type(diagnosis_code) is str
        and diagnosis_code
        and (emergency is None or emergency is True or emergency is False)
        and (planned is None or planned is True or planned is False)
    ):
        return Stay(admission_id, diagnosis_code, emergency or False, planned or False)
    return Stay(
        admission_id=_req_str(obj, "admission_id"),
        diagnosis_code=_req_str(obj, "diagnosis_code"),
        emergency=_opt(obj, "emergency", bool) or False,
        planned=_opt(obj, "planned", bool) or False,
    )


def _claim(obj: dict[str, Any]) -> Body:
    get = obj.get
    claim_id, visit_type = get("claim_id"), get("visit_type")
    total, fund, standard = get("total_amount"), get("fund_amount"), get("drg_standard_cost")
    drg_code, diagnosis_code = get("drg_code"), get("diagnosis_code")
    level, raw_items = get("institution_level"), get("items")
    items = (
        () if raw_items is None else (_items_fast(raw_items) if type(raw_items) is list else None)
    )
    if (
        items is not None
        and type(claim_id) is str
        and claim_id
        and type(visit_type) is str
        and visit_type in _VISIT_TYPES
        and (type(total) is float or type(total) is int)
        and 0 <= total < _HUGE
        and (type(fund) is float or type(fund) is int)
        and 0 <= fund < _HUGE
        and (drg_code is None or (type(drg_code) is str and drg_code))
        and (
            standard is None
            or ((type(standard) is float or type(standard) is int) and 0 < standard < _HUGE)
        )
        and (diagnosis_code is None or (type(diagnosis_code) is str and diagnosis_code))
        and (level is None or (type(level) is str and level))
    ):
        return Claim(
            claim_id,
            visit_type,  # type: ignore[arg-type]  # checked against _VISIT_TYPES above
            float(total),
            float(fund),
            drg_code,
            None if standard is None else float(standard),
            diagnosis_code,
            level,
            items,
        )
    return _claim_checked(obj)


def _items_fast(raw_items: list[Any]) -> tuple[ClaimItem, ...] | None:
    """The items when all are well formed (the common case), else None (check one by one)."""
    items = []
    for item in raw_items:
        if type(item) is not dict:
            return None
        get = item.get
        code, category, special = get("code"), get("category"), get("special_exam", False)
        quantity, price = get("quantity"), get("unit_price")
        if not (
            type(code) is str
            and code
            and type(category) is str
            and category in _ITEM_CATEGORIES
            and (special is True or special is False)
            and (type(quantity) is float or type(quantity) is int)
            and 0 < quantity < _HUGE
            and (type(price) is float or type(price) is int)
            and 0 <= price < _HUGE
        ):
            return None
        items.append(ClaimItem(code, cast(Any, category), float(quantity), float(price), special))
    return tuple(items)


def _claim_checked(obj: dict[str, Any]) -> Body:
    raw_items = obj.get("items")
    if raw_items is None:
        raw_items = []
    if not isinstance(raw_items, list):
        raise InvalidEvent("invalid_field", "items must be a list")
    standard = obj.get("drg_standard_cost")
    return Claim(
        claim_id=_req_str(obj, "claim_id"),
        visit_type=cast(Any, _choice(obj, "visit_type", _VISIT_TYPES)),
        total_amount=_req_number(obj, "total_amount"),
        fund_amount=_req_number(obj, "fund_amount"),
        drg_code=_opt_str(obj, "drg_code"),
        drg_standard_cost=None
        if standard is None
        else _number(standard, "drg_standard_cost", positive=True),
        diagnosis_code=_opt_str(obj, "diagnosis_code"),
        institution_level=_opt_str(obj, "institution_level"),
        items=tuple(_item(item, i) for i, item in enumerate(raw_items)),
    )


def _item(item: Any, index: int) -> ClaimItem:
    where = f"items[{index}]"
    if not isinstance(item, dict):
        raise InvalidEvent("invalid_field", f"{where} must be an object")
    code = item.get("code")
    if not isinstance(code, str) or not code:
        raise InvalidEvent("invalid_field", f"{where}.code must be a non-empty string")
    category = item.get("category")
    if not isinstance(category, str) or category not in _ITEM_CATEGORIES:
        raise InvalidEvent(
            "invalid_field",
            f"{where}.category {category!r} is not one of {', '.join(sorted(_ITEM_CATEGORIES))}",
        )
    special = item.get("special_exam", False)
    if not isinstance(special, bool):
        raise InvalidEvent("invalid_field", f"{where}.special_exam must be a boolean")
    return ClaimItem(
        code=code,
        category=cast(Any, category),
        quantity=_number(item.get("quantity"), f"{where}.quantity", positive=True),
        unit_price=_number(item.get("unit_price"), f"{where}.unit_price"),
        special_exam=special,
    )


_BODIES = {
    "dispense": _dispense,
    "consultation": _consultation,
    "admission": _stay,
    "discharge": _stay,
    "claim": _claim,
}
