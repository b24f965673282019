"""excess_quantity: days_supply over 7 (acute), 30 (chronic) or 84 (long-term prescription)."""

from __future__ import annotations

from typing import Any

import pytest

from claimstream.testing import DAY_H, dispense, with_rule
from tests.rules._catalogue import alerts, drains, duplicated, same_alerts_in_every_order

RULE = "excess_quantity"
ACUTE: dict[str, Any] = {"drug": "AMOX", "chronic": False}
CHRONIC_BY_FLAG: dict[str, Any] = {"drug": "INS", "chronic": True}
CHRONIC_BY_ATC: dict[str, Any] = {"drug": "METF", "chronic": False, "atc_code": "A10BA02"}
LONG_TERM: dict[str, Any] = {"drug": "INS", "chronic": True, "long_term_rx": True}


@pytest.mark.parametrize(
    ("kind", "days", "alerted"),
    [
        (ACUTE, 7, False),
        (ACUTE, 8, True),
        (CHRONIC_BY_FLAG, 30, False),
        (CHRONIC_BY_FLAG, 31, True),
        (CHRONIC_BY_ATC, 30, False),
        (CHRONIC_BY_ATC, 31, True),
        (LONG_TERM, 84, False),
        (LONG_TERM, 85, True),
        ({**ACUTE, "long_term_rx": True}, 84, False),
    ],
)
def test_limits_by_kind_of_prescription(kind: dict[str, Any], days: int, alerted: bool) -> None:
    assert bool(alerts(RULE, [dispense("e", 0, days=days, **kind)])) is alerted


def test_the_alert_names_the_limit_and_the_excess() -> None:
    (alert,) = alerts(RULE, [dispense("e", 0, days=45, **CHRONIC_BY_FLAG)])
    assert (alert.subject.kind, alert.subject.id) == ("patient", "P1")
    assert alert.event_ids == ("e",)
    assert alert.details["limit_days"] == 30
    assert alert.details["excess_days"] == 15
    assert alert.details["prescription_kind"] == "chronic"
    assert "45 days" in alert.message and "30-day" in alert.message


def test_limits_are_configurable_and_must_stay_ordered() -> None:
    config = with_rule(RULE, acute_max_days="10")
    assert alerts(RULE, [dispense("e", 0, days=10, **ACUTE)], config) == []
    with pytest.raises(ValueError, match="acute <= chronic <= long_term"):
        with_rule(RULE, acute_max_days="40")


def test_order_and_duplicates_change_nothing() -> None:
    events = [dispense("a", 0, days=10, **ACUTE), dispense("b", 0.5, days=40, **CHRONIC_BY_FLAG)]
    assert len(same_alerts_in_every_order(RULE, events)) == 2
    assert len(alerts(RULE, duplicated(events))) == 2


def test_holds_no_state() -> None:
    later = dispense("x", 10 * DAY_H, patient_id="P2", days=10, **ACUTE)
    assert drains(RULE, [dispense("e", 0, days=10, **ACUTE)], later) == (0, 0)


@pytest.mark.parametrize(
    ("days", "amount"),
    [(8, 12.5), (10, 30.0), (7, None)],  # 100 yuan for the supply; 1 of 8 days, 3 of 10 over
)
def test_the_amount_is_the_cost_of_the_days_over_the_limit(days: int, amount: float | None) -> None:
    event = dispense("e", 0, days=days, quantity=4, unit_price=25.0, **ACUTE)
    assert [a.amount for a in alerts(RULE, [event])] == ([] if amount is None else [amount])


def test_without_a_price_the_amount_is_null_and_the_law_is_cited() -> None:
    (alert,) = alerts(RULE, [dispense("e", 0, days=45, **CHRONIC_BY_FLAG)])
    assert alert.amount is None
    assert alert.legal_basis.endswith("第十五条、第三十八条第二项")
    assert alert.behaviour == "超量开药"
