"""A dispensing as the trace-code kind sees it: one small, contract-valid view per code, the
same whether built in place (`replay`) or decoded from the forwarded record (the worker)."""

from __future__ import annotations

import orjson

from claimstream.detection.decode import decode_event
from claimstream.detection.tracecodes import slim, view, views
from claimstream.model.events import Dispense, Event
from claimstream.testing import consultation, dispense

CODES = [f"8123456789012345{i:04d}" for i in range(3)]
LINE = dispense(
    "e1",
    5,
    inst="PH7",
    trace_codes=CODES,
    patient_id="P9",
    doctor_id="D3",
    department_id="DEP1",
    drug_name="insulin glargine",
    atc_code="A10AE04",
    unit_price=88.5,
    patient_age=61,
    patient_gender="F",
)


def test_the_decoded_forwarded_record_equals_the_view_built_in_place() -> None:
    for code in CODES:
        decoded = decode_event(orjson.dumps(slim(LINE, code)))
        assert isinstance(decoded, Event)
        assert decoded == view(LINE, code)


def test_a_view_carries_one_code_and_is_keyed_by_it() -> None:
    seen = view(LINE, CODES[1])
    assert isinstance(seen.body, Dispense) and seen.body.trace_codes == (CODES[1],)
    assert seen.key("trace_code") == CODES[1]
    assert seen.keys("trace_code") == (CODES[1],)


def test_a_view_keeps_the_ids_time_and_drug_an_alert_reads() -> None:
    seen = view(LINE, CODES[0])
    assert (seen.event_id, seen.occurred_at, seen.ts) == (LINE.event_id, LINE.occurred_at, LINE.ts)
    assert (seen.patient_id, seen.institution_id, seen.doctor_id, seen.department_id) == (
        "P9",
        "PH7",
        "D3",
        "DEP1",
    )
    assert isinstance(seen.body, Dispense) and seen.body.drug_code == "INS"


def test_the_forwarded_record_is_small_whatever_the_line_carried() -> None:
    many = dispense("e2", 5, trace_codes=[f"8123456789012345{i:04d}" for i in range(100)])
    assert len(orjson.dumps(many.raw)) > 2_500
    assert len(orjson.dumps(slim(many, "81234567890123450042"))) < 300


def test_an_event_with_several_codes_has_a_key_per_code_and_no_single_key() -> None:
    assert LINE.keys("trace_code") == tuple(CODES)
    assert LINE.key("trace_code") is None
    assert [code for code, _ in views(LINE)] == CODES


def test_events_without_codes_have_no_views() -> None:
    assert views(dispense("e3", 1)) == []
    assert views(consultation("c1", 1)) == []
