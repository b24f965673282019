"""contraindication: quinolones under 18; warfarin with aspirin (overlapping supply) from 65."""

from __future__ import annotations

from typing import Any

import pytest

from claimstream.testing import DAY_H, alerts_of, detector, dispense, with_rule
from tests.rules._catalogue import (
    alerts,
    drains,
    duplicated,
    same_alerts_in_every_order,
    written_before,
)

RULE = "contraindication"


def quinolone(age: int | None, **fields: Any) -> Any:
    fields.setdefault("atc_code", "J01MA12")
    if age is not None:
        fields["patient_age"] = age
    return dispense("q", 0, drug="LEVO", days=5, chronic=False, **fields)


def warfarin(event_id: str, hours: float, age: int = 70, days: int = 30) -> Any:
    return dispense(event_id, hours, drug="WARF", atc_code="B01AA03", days=days, patient_age=age)


def aspirin(event_id: str, hours: float, age: int = 70, atc: str = "B01AC06") -> Any:
    return dispense(event_id, hours, drug="ASA", atc_code=atc, days=30, patient_age=age)


@pytest.mark.parametrize(("age", "alerted"), [(10, True), (17, True), (18, False), (None, False)])
def test_quinolones_under_eighteen(age: int | None, alerted: bool) -> None:
    assert bool(alerts(RULE, [quinolone(age)])) is alerted


def test_a_quinolone_is_known_by_its_drug_code_too() -> None:
    event = dispense("q", 0, drug="XJ01MAL046A001010100004", days=5, patient_age=12)
    (alert,) = alerts(RULE, [event])
    assert alert.details["check"] == "quinolone_minor"
    assert alert.details["patient_age"] == 12
    assert "12" in alert.message and "quinolone" in alert.message


@pytest.mark.parametrize(("age", "alerted"), [(64, False), (65, True), (80, True)])
def test_warfarin_with_aspirin_from_sixty_five(age: int, alerted: bool) -> None:
    events = [warfarin("w", 0, age=age), aspirin("a", 10 * DAY_H, age=age)]
    assert bool(alerts(RULE, events)) is alerted


@pytest.mark.parametrize(("start", "alerted"), [(30 * DAY_H - 1 / 60, True), (30 * DAY_H, False)])
def test_the_supplies_must_overlap(start: float, alerted: bool) -> None:
    assert bool(alerts(RULE, [warfarin("w", 0), aspirin("a", start)])) is alerted


def test_either_drug_can_come_first_and_analgesic_aspirin_counts() -> None:
    (alert,) = alerts(RULE, [aspirin("a", 0, atc="N02BA01"), warfarin("w", 48)])
    assert alert.event_ids == ("a", "w")
    assert alert.details["pair_id"] == "warfarin+aspirin"
    assert alert.details["drug_codes"] == ["ASA", "WARF"]
    assert alert.details["overlap_days"] == 28.0
    assert alert.severity == "high"


def test_ages_are_configurable() -> None:
    config = with_rule(RULE, interaction_min_age="75", quinolone_min_age="16")
    assert alerts(RULE, [warfarin("w", 0), aspirin("a", 24)], config) == []
    assert alerts(RULE, [quinolone(17)], config) == []


def test_out_of_order_within_lateness_gives_the_same_alert() -> None:
    events = [warfarin("w", 0), aspirin("a", 0.5), aspirin("b", 0.75)]
    assert len(same_alerts_in_every_order(RULE, events)) == 2


def test_duplicates_change_nothing() -> None:
    assert len(alerts(RULE, duplicated([warfarin("w", 0), aspirin("a", 24)]))) == 1
    assert len(alerts(RULE, duplicated([quinolone(9)]))) == 1


def test_state_is_bounded_by_the_supply() -> None:
    events = [warfarin("w", 0), aspirin("a", 24), quinolone(30)]  # quinolones are not kept
    soon = dispense("x", 20 * DAY_H, patient_id="P2")
    assert drains(RULE, events, soon) == (2, 2)
    later = dispense("x", 60 * DAY_H, patient_id="P2")
    assert drains(RULE, events, later) == (2, 0)


def test_the_amount_of_a_quinolone_to_a_minor_is_the_whole_dispensing() -> None:
    (alert,) = alerts(RULE, [quinolone(12, quantity=10, unit_price=3.2)])
    assert alert.amount == 32.0
    assert alert.behaviour == "禁忌用药"
    assert alert.legal_basis.endswith("第十五条、第三十八条第二项")


def test_the_amount_of_an_interaction_is_the_later_dispensing() -> None:
    first = dispense("w", 0, drug="WARF", atc_code="B01AA03", days=30, patient_age=70)
    later = dispense(
        "a",
        24,
        drug="ASA",
        atc_code="B01AC06",
        days=30,
        patient_age=70,
        unit_price=1.5,
        quantity=30,
    )
    (alert,) = alerts(RULE, [first, later])
    assert alert.amount == 45.0


def test_an_unpriced_contraindicated_dispensing_has_a_null_amount() -> None:
    (alert,) = alerts(RULE, [warfarin("w", 0), aspirin("a", 24)])
    assert alert.amount is None


def test_a_dispensing_held_from_before_amounts_existed_alerts_with_a_null_amount() -> None:
    det = detector()
    det.process(dispense("a", 0.5, drug="ASA", atc_code="B01AC06", patient_age=70, unit_price=1.0))
    written_before(det, RULE, 11)  # the layout before AMOUNT
    later = det.process(warfarin("w", 0))
    (alert,) = alerts_of(RULE, later)
    assert alert.event_ids == ("w", "a") and alert.amount is None
