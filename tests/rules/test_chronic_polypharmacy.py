"""chronic_polypharmacy: at least 5 distinct chronic-disease drugs for one patient in 3 days."""

from __future__ import annotations

import pytest

from claimstream.testing import DAY_H, dispense, with_rule
from tests.rules._catalogue import (
    alerts,
    commands,
    drains,
    duplicated,
    same_alerts_in_every_order,
)

RULE = "chronic_polypharmacy"


def drugs(count: int, *, step: float = 6.0, last: float | None = None) -> list:
    times = [i * step for i in range(count)]
    if last is not None:
        times[-1] = last
    return [dispense(f"e{i}", t, drug=f"DRUG{i}", inst=f"H{i}") for i, t in enumerate(times)]


@pytest.mark.parametrize(("count", "alerted"), [(4, 0), (5, 1), (8, 1)])
def test_five_distinct_chronic_drugs_in_three_days(count: int, alerted: int) -> None:
    assert len(alerts(RULE, drugs(count))) == alerted


@pytest.mark.parametrize(("last", "alerted"), [(3 * DAY_H - 1 / 60, True), (3 * DAY_H, False)])
def test_the_window_is_a_trailing_three_days(last: float, alerted: bool) -> None:
    assert bool(alerts(RULE, drugs(5, last=last))) is alerted


def test_the_same_drug_again_is_not_another_drug() -> None:
    events = [*drugs(4), dispense("again", 30, drug="DRUG0")]
    assert alerts(RULE, events) == []


def test_only_chronic_drugs_count_by_flag_or_by_reference_class() -> None:
    acute = dispense("acute", 30, drug="AMOX", chronic=False, days=5)
    assert alerts(RULE, [*drugs(4), acute]) == []
    by_atc = dispense("atc", 30, drug="VALSARTAN", chronic=False, atc_code="C09CA03")
    assert len(alerts(RULE, [*drugs(4), by_atc])) == 1


def test_the_newest_prescription_is_held_until_an_unfreeze() -> None:
    events = drugs(5)
    (alert,) = alerts(RULE, events)
    assert alert.event_ids == ("e0", "e1", "e2", "e3", "e4")
    assert alert.details["distinct_drugs"] == 5
    assert alert.details["held_drug_code"] == "DRUG4"
    assert "DRUG4" in alert.message
    (command,) = commands(RULE, events)
    assert command.action == "FREEZE"
    assert (command.scope.kind, command.scope.id, command.scope.drug_code) == (
        "patient",
        "P1",
        "DRUG4",
    )
    assert command.expires_at is None
    assert command.effective_from == events[-1].occurred_at
    assert command.alert_ids == (alert.alert_id,)


def test_threshold_is_configurable_and_commands_can_be_switched_off() -> None:
    config = with_rule(RULE, min_distinct_drugs="3", issue_commands="false")
    assert len(alerts(RULE, drugs(3), config)) == 1
    assert commands(RULE, drugs(3), config) == []


def test_out_of_order_within_lateness_gives_the_same_alert() -> None:
    assert len(same_alerts_in_every_order(RULE, drugs(5, step=0.2))) == 1


def test_duplicates_change_nothing() -> None:
    assert alerts(RULE, duplicated(drugs(4))) == []
    assert len(commands(RULE, duplicated(drugs(5)))) == 1


def test_state_is_bounded_by_the_window() -> None:
    later = dispense("x", 30 * DAY_H, patient_id="P2")
    assert drains(RULE, drugs(5), later) == (5, 0)


def test_the_amount_is_the_cost_of_the_prescription_held_for_review() -> None:
    priced = [
        dispense(f"e{i}", i * 6.0, drug=f"DRUG{i}", quantity=2, unit_price=10.0 * (i + 1))
        for i in range(5)
    ]
    (alert,) = alerts(RULE, priced)
    assert alert.amount == 100.0  # the fifth drug: 2 x 50.00
    assert alert.behaviour == "超常处方"
    assert alert.legal_basis.endswith("第十五条、第三十八条第二项")


def test_without_prices_the_amount_is_null() -> None:
    (alert,) = alerts(RULE, drugs(5))
    assert alert.amount is None
