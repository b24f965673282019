"""gender_age_restriction: gender- or age-restricted drugs and services outside their band."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from claimstream.detection.config import DetectionConfig
from claimstream.testing import dispense, with_rule
from tests.rules._catalogue import (
    alerts,
    claim,
    drains,
    duplicated,
    item,
    same_alerts_in_every_order,
)

RULE = "gender_age_restriction"
OBSTETRIC = "311201001"  # female only
FINASTERIDE = "XG04CBF001A001010100104"  # male only
PAEDIATRIC = "XN02BEA002X001010100105"  # age 14 and under
METHYLPHENIDATE = "XN06BAM001A001010100108"  # age 6 and over
LETROZOLE = "XL02BGL001A001010100109"  # female, 18 and over


def given(code: str, gender: str | None = None, age: int | None = None, **fields: Any) -> Any:
    if gender is not None:
        fields["patient_gender"] = gender
    if age is not None:
        fields["patient_age"] = age
    return claim("c", 0, items=[item(code, "service")], **fields)


def dispensed(code: str, gender: str | None = None, age: int | None = None) -> Any:
    fields: dict[str, Any] = {}
    if gender is not None:
        fields["patient_gender"] = gender
    if age is not None:
        fields["patient_age"] = age
    return dispense("d", 0, drug=code, **fields)


@pytest.mark.parametrize(
    ("code", "gender", "age", "violation"),
    [
        (OBSTETRIC, "M", 30, "gender"),
        (OBSTETRIC, "F", 30, None),
        (OBSTETRIC, None, 30, None),
        (PAEDIATRIC, None, 14, None),
        (PAEDIATRIC, None, 15, "age"),
        (METHYLPHENIDATE, "M", 5, "age"),
        (METHYLPHENIDATE, "M", 6, None),
        (LETROZOLE, "F", 17, "age"),
        (LETROZOLE, "F", 18, None),
        (LETROZOLE, "M", 40, "gender"),
        ("NOT-RESTRICTED", "M", 3, None),
    ],
)
def test_claim_items_outside_their_band(
    code: str, gender: str | None, age: int | None, violation: str | None
) -> None:
    found = [a.details["violation"] for a in alerts(RULE, [given(code, gender, age)])]
    assert found == ([violation] if violation else [])


@pytest.mark.parametrize(("gender", "alerted"), [("F", True), ("M", False)])
def test_dispensings_are_checked_by_drug_code(gender: str, alerted: bool) -> None:
    assert bool(alerts(RULE, [dispensed(FINASTERIDE, gender)])) is alerted


def test_the_alert_says_what_the_restriction_is() -> None:
    (alert,) = alerts(RULE, [given(OBSTETRIC, "M", 40)])
    assert alert.severity == "high"
    assert (alert.subject.kind, alert.subject.id) == ("patient", "P1")
    assert alert.details["restricted_gender"] == "F"
    assert alert.message == (
        "Patient P1 (male) received 311201001 obstetric examination (产前检查) at H1, "
        "which is restricted to female only."
    )


def test_one_alert_per_restricted_code_of_a_claim() -> None:
    event = claim(
        "c",
        0,
        patient_gender="M",
        patient_age=40,
        items=[item(OBSTETRIC, "service"), item(OBSTETRIC, "service"), item(LETROZOLE, "drug")],
    )
    assert sorted(a.details["code"] for a in alerts(RULE, [event])) == sorted(
        [LETROZOLE, OBSTETRIC]
    )


def test_checks_can_be_switched_off() -> None:
    no_gender = with_rule(RULE, check_gender="false")
    assert alerts(RULE, [given(OBSTETRIC, "M", 40)], no_gender) == []
    assert alerts(RULE, [given(LETROZOLE, "M", 15)], no_gender)[0].details["violation"] == "age"
    no_age = with_rule(RULE, check_age="no")
    assert alerts(RULE, [given(PAEDIATRIC, "M", 40)], no_age) == []


def test_order_and_duplicates_change_nothing() -> None:
    events = [
        given(OBSTETRIC, "M", 40),
        claim("c2", 0.5, items=[item(PAEDIATRIC, "drug")], patient_age=30, patient_id="P2"),
    ]
    assert len(same_alerts_in_every_order(RULE, events)) == 2
    assert len(alerts(RULE, duplicated(events))) == 2


def test_holds_no_state() -> None:
    later = given(OBSTETRIC, "M", 40, patient_id="P2")
    assert drains(RULE, [given(OBSTETRIC, "M", 40)], later) == (0, 0)


def test_a_list_of_tens_of_thousands_of_items_loads_once_and_looks_up_by_code(
    tmp_path: Path,
) -> None:
    (tmp_path / "manifest.json").write_text(
        json.dumps({"format": "claimstream-reference/1", "version": "batch-1"}), encoding="utf-8"
    )
    rows = [f"R{i:06d},item {i},{'F' if i % 2 else 'M'},," for i in range(40_000)]
    (tmp_path / "restrictions.csv").write_text(
        "code,name,gender,min_age,max_age\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    config = DetectionConfig.default(reference_data_path=str(tmp_path))
    codes = [f"R{i * 40 + i % 2:06d}" for i in range(1_000)]  # every other one male-only
    events = [
        claim(f"c{i}", i / 100, items=[item(code, "service")], patient_gender="F")
        for i, code in enumerate(codes)
    ]
    started = time.perf_counter()
    found = alerts(RULE, events, config)
    elapsed = time.perf_counter() - started
    assert len(found) == 500  # the even codes are male-only
    assert {a.details["reference_version"] for a in found} == {"batch-1"}
    assert elapsed < 5.0, elapsed  # generous: a scan of the list per item would take minutes


def test_the_amount_is_every_line_of_the_restricted_item_and_the_lines_are_named() -> None:
    event = claim(
        "c",
        0,
        patient_gender="M",
        patient_age=40,
        items=[
            item("SVC-BED", "service", price=80),
            item(OBSTETRIC, "service", price=60, quantity=2),
            item(OBSTETRIC, "service", price=45.5),
        ],
    )
    (alert,) = alerts(RULE, [event])
    assert alert.amount == 165.5
    assert alert.lines == ((1, OBSTETRIC, 120.0), (2, OBSTETRIC, 45.5))
    assert alert.behaviour == "超限定支付范围"
    assert alert.legal_basis.endswith("第十五条、第三十八条第六项")


def test_a_restricted_dispensing_costs_its_price_or_null_without_one() -> None:
    priced = dispense("d", 0, drug=FINASTERIDE, patient_gender="F", quantity=28, unit_price=2.5)
    (alert,) = alerts(RULE, [priced])
    assert (alert.amount, alert.lines) == (70.0, ())
    (unpriced,) = alerts(RULE, [dispensed(FINASTERIDE, "F")])
    assert unpriced.amount is None
