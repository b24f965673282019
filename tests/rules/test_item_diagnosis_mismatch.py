"""item_diagnosis_mismatch: an exam or lab item billed for a diagnosis that does not indicate it."""

from __future__ import annotations

from typing import Any

import pytest

from claimstream.model.config import ConfigError
from claimstream.testing import with_rule
from tests.rules._catalogue import alerts, claim, duplicated, item

RULE = "item_diagnosis_mismatch"
PELVIC_US = "220201003"  # pelvic ultrasound: item_indications.csv
HBA1C = "250302003"


def visit(diagnosis: str | None, *codes: str, **fields: Any) -> Any:
    items = [item(code, "lab" if code == HBA1C else "exam", price=120.0) for code in codes]
    if diagnosis is not None:
        fields["diagnosis_code"] = diagnosis
    return claim("c1", 0, items=items, **fields)


def test_seed_case_a_pelvic_ultrasound_for_a_headache() -> None:
    (alert,) = alerts(RULE, [visit("R51", PELVIC_US)])
    assert alert.severity == "warning"
    assert (alert.subject.kind, alert.subject.id) == ("patient", "P1")
    assert alert.details["items"] == [PELVIC_US]
    assert alert.details["diagnosis_code"] == "R51"
    assert "pelvic ultrasound" in alert.message


@pytest.mark.parametrize(
    ("diagnosis", "alerted"),
    [
        ("N94.6", False),  # dysmenorrhoea
        ("n946", False),
        ("O20.0", False),  # pregnancy: the whole chapter
        ("R10.2", False),  # pelvic pain
        ("R10", False),
        ("R1", True),  # shorter than the prefix: not indicated
        ("R11", True),  # nausea
        ("R51", True),  # headache
        ("G43.9", True),  # migraine
    ],
)
def test_an_item_is_indicated_by_a_diagnosis_starting_with_one_of_its_prefixes(
    diagnosis: str, alerted: bool
) -> None:
    assert bool(alerts(RULE, [visit(diagnosis, PELVIC_US)])) is alerted


def test_an_item_not_in_the_list_is_never_checked() -> None:
    assert alerts(RULE, [visit("R51", "EX-CT-HEAD", "210300001")]) == []


def test_a_claim_without_a_diagnosis_is_not_judged() -> None:
    assert alerts(RULE, [visit(None, PELVIC_US)]) == []


def test_one_alert_per_claim_naming_every_mismatched_line_and_their_amount() -> None:
    events = [
        claim(
            "c1",
            0,
            diagnosis_code="R51",
            items=[
                item("SV-REG", "service", price=10.0),
                item(PELVIC_US, price=120.0),
                item(HBA1C, "lab", price=80.0, quantity=2),
            ],
        )
    ]
    (alert,) = alerts(RULE, events)
    assert alert.details["items"] == [PELVIC_US, HBA1C]
    assert alert.lines == ((1, PELVIC_US, 120.0), (2, HBA1C, 160.0))
    assert alert.amount == 280.0


def test_an_indicated_item_beside_a_mismatched_one_is_not_a_line() -> None:
    (alert,) = alerts(RULE, [visit("E11.9", PELVIC_US, HBA1C)])
    assert alert.lines == ((0, PELVIC_US, 120.0),)


@pytest.mark.parametrize(
    ("visit_type", "alerted"), [("outpatient", True), ("online", True), ("inpatient", False)]
)
def test_by_default_inpatient_claims_are_not_judged(visit_type: str, alerted: bool) -> None:
    assert bool(alerts(RULE, [visit("R51", PELVIC_US, visit_type=visit_type)])) is alerted


def test_the_visit_types_are_a_setting() -> None:
    config = with_rule(RULE, visit_types="inpatient")
    assert alerts(RULE, [visit("R51", PELVIC_US, visit_type="inpatient")], config)
    assert not alerts(RULE, [visit("R51", PELVIC_US)], config)


@pytest.mark.parametrize("value", ["", "home", "outpatient,home"])
def test_an_unknown_visit_type_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="visit_types"):
        with_rule(RULE, visit_types=value)


def test_a_redelivered_claim_changes_nothing() -> None:
    assert len(alerts(RULE, duplicated([visit("R51", PELVIC_US)]))) == 1


def test_the_alert_cites_article_15_and_warns_at_a_check() -> None:
    (alert,) = alerts(RULE, [visit("R51", PELVIC_US)])
    assert alert.behaviour == "过度检查"
    assert alert.legal_basis == "《医疗保障基金使用监督管理条例》第十五条、第三十八条第二项"
