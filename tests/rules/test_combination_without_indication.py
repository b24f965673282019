"""combination_without_indication: two drug classes on one claim whose diagnosis does not
justify the combination (the seed: a third-generation cephalosporin with a macrolide)."""

from __future__ import annotations

from typing import Any

import pytest

from claimstream.rules.combination_without_indication import atc_of_nhsa_code
from claimstream.testing import with_rule
from tests.rules._catalogue import alerts, claim, duplicated, item

RULE = "combination_without_indication"
CEFTRIAXONE = "XJ01DDA060B001010100001"  # ATC J01DD04, spelled by the NHSA code
AZITHROMYCIN = "XJ01FAA033A001010100002"  # ATC J01FA10
AMOXICILLIN = "XJ01CAA023E001010100003"


def prescribed(diagnosis: str | None, *codes: str, **fields: Any) -> Any:
    items = [item(code, "drug", price=30.0, quantity=2) for code in codes]
    if diagnosis is not None:
        fields["diagnosis_code"] = diagnosis
    return claim("c1", 0, items=items, **fields)


def test_seed_case_ceftriaxone_with_azithromycin_for_a_common_cold() -> None:
    (alert,) = alerts(RULE, [prescribed("J06.9", CEFTRIAXONE, AZITHROMYCIN)])
    assert alert.severity == "warning"
    assert (alert.subject.kind, alert.subject.id) == ("patient", "P1")
    assert alert.details["pair_id"] == "cephalosporin_3g+macrolide"
    assert alert.details["drug_codes"] == sorted([CEFTRIAXONE, AZITHROMYCIN])
    assert "J06.9" in alert.message


@pytest.mark.parametrize(
    ("diagnosis", "alerted"),
    [
        ("A41.9", False),  # sepsis
        ("a419", False),
        ("R57.2", False),  # septic shock
        ("R57.1", True),  # hypovolaemic shock: no infection
        ("J15.7", False),  # mycoplasma pneumonia
        ("J18.9", False),  # pneumonia
        ("J06.9", True),  # upper respiratory infection
        ("J20.9", True),  # acute bronchitis
        ("R50.9", True),  # fever
    ],
)
def test_the_combination_is_justified_only_by_its_indications(
    diagnosis: str, alerted: bool
) -> None:
    assert bool(alerts(RULE, [prescribed(diagnosis, CEFTRIAXONE, AZITHROMYCIN)])) is alerted


@pytest.mark.parametrize(
    "codes",
    [(CEFTRIAXONE,), (AZITHROMYCIN,), (CEFTRIAXONE, AMOXICILLIN), (CEFTRIAXONE, CEFTRIAXONE)],
)
def test_one_class_alone_is_no_combination(codes: tuple[str, ...]) -> None:
    assert alerts(RULE, [prescribed("J06.9", *codes)]) == []


def test_the_classes_come_from_the_atc_rows_through_the_nhsa_code() -> None:
    assert atc_of_nhsa_code(CEFTRIAXONE) == "J01DD"
    assert atc_of_nhsa_code("ZA01AAA0001") is None  # a Chinese patent medicine
    assert atc_of_nhsa_code("INS") is None
    config = with_rule(RULE, atc_from_drug_code="false")
    assert alerts(RULE, [prescribed("J06.9", CEFTRIAXONE, AZITHROMYCIN)], config) == []


def test_the_amount_is_both_drugs_lines() -> None:
    events = [
        claim(
            "c1",
            0,
            diagnosis_code="J06.9",
            items=[
                item("SV-REG", "service", price=10.0),
                item(CEFTRIAXONE, "drug", price=30.0, quantity=2),
                item(AMOXICILLIN, "drug", price=5.0),
                item(AZITHROMYCIN, "drug", price=12.5),
            ],
        )
    ]
    (alert,) = alerts(RULE, events)
    assert alert.lines == ((1, CEFTRIAXONE, 60.0), (3, AZITHROMYCIN, 12.5))
    assert alert.amount == 72.5


def test_an_item_billed_as_an_exam_is_no_drug() -> None:
    events = [
        claim(
            "c1",
            0,
            diagnosis_code="J06.9",
            items=[item(CEFTRIAXONE, "drug"), item(AZITHROMYCIN, "exam")],
        )
    ]
    assert alerts(RULE, events) == []


def test_a_claim_without_a_diagnosis_is_not_judged() -> None:
    assert alerts(RULE, [prescribed(None, CEFTRIAXONE, AZITHROMYCIN)]) == []


def test_a_redelivered_claim_changes_nothing() -> None:
    events = duplicated([prescribed("J06.9", CEFTRIAXONE, AZITHROMYCIN)])
    assert len(alerts(RULE, events)) == 1


def test_the_alert_cites_article_15_and_names_the_behaviour() -> None:
    (alert,) = alerts(RULE, [prescribed("J06.9", CEFTRIAXONE, AZITHROMYCIN)])
    assert alert.behaviour == "无指征联合用药"
    assert alert.legal_basis == "《医疗保障基金使用监督管理条例》第十五条、第三十八条第二项"
