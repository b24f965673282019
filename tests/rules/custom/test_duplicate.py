"""duplicate: the same value of an expression seen again within the window, per key."""

from __future__ import annotations

import pytest

from claimstream.testing import DAY_H, detector, dispense
from tests.rules._catalogue import (
    alerts,
    claim,
    duplicated,
    item,
    rule_size,
    same_alerts_in_every_order,
)
from tests.rules.custom._custom import RULE, config

SAME_DRUG = {
    "key": "patient",
    "event_types": ["dispense"],
    "value": "event.drug_code",
    "window_days": 30,
}
SAME_EXAM = {
    "key": "patient",
    "event_types": ["claim"],
    "value": 'event.items.filter(i, i.category == "exam").map(i, i.code)',
    "window_days": 90,
}


@pytest.mark.parametrize(("later", "alerted"), [(30 * DAY_H - 1 / 60, True), (30 * DAY_H, False)])
def test_the_same_value_within_the_window_alerts(later: float, alerted: bool) -> None:
    events = [dispense("d1", 0), dispense("d2", later)]
    assert bool(alerts(RULE, events, config("duplicate", **SAME_DRUG))) is alerted


def test_another_value_does_not_alert() -> None:
    events = [dispense("d1", 0), dispense("d2", 1, drug="MET")]
    assert alerts(RULE, events, config("duplicate", **SAME_DRUG)) == []


def test_each_repeat_is_one_alert_naming_the_earlier_events() -> None:
    events = [dispense(f"d{i}", i) for i in range(3)]
    found = alerts(RULE, events, config("duplicate", **SAME_DRUG))
    assert [a.event_ids for a in found] == [("d0", "d1"), ("d0", "d1", "d2")]


def test_a_list_value_compares_each_element() -> None:
    events = [claim("c1", 0, items=[item("CT1"), item("MR1")]), claim("c2", 5, items=[item("MR1")])]
    (alert,) = alerts(RULE, events, config("duplicate", **SAME_EXAM))
    assert (alert.details["value"], alert.event_ids) == ("MR1", ("c1", "c2"))


def test_the_filter_decides_which_events_take_part() -> None:
    events = [dispense("d1", 0, days=7), dispense("d2", 1, days=7)]
    settings = config("duplicate", **SAME_DRUG, filter="event.days_supply > 7")
    assert alerts(RULE, events, settings) == []


def test_out_of_order_within_lateness_gives_the_same_alerts() -> None:
    events = [dispense(f"d{i}", i * 0.2) for i in range(3)]
    assert len(same_alerts_in_every_order(RULE, events, config("duplicate", **SAME_DRUG))) == 2


def test_redelivery_changes_nothing() -> None:
    events = duplicated([dispense("d1", 0), dispense("d2", 1)])
    assert len(alerts(RULE, events, config("duplicate", **SAME_DRUG))) == 1


def test_the_amount_is_the_sum_over_the_alert_s_events() -> None:
    events = [dispense("d1", 0, unit_price=2.5), dispense("d2", 1, unit_price=2.5)]
    settings = config("duplicate", **SAME_DRUG, amount="event.quantity * event.unit_price")
    (alert,) = alerts(RULE, events, settings)
    assert alert.amount == 20.0


def test_an_amount_some_event_lacks_is_unknown() -> None:
    events = [dispense("d1", 0), dispense("d2", 1, unit_price=2.5)]
    settings = config("duplicate", **SAME_DRUG, amount="event.quantity * event.unit_price")
    (alert,) = alerts(RULE, events, settings)
    assert alert.amount is None


def test_state_is_bounded_by_the_window() -> None:
    det = detector(config("duplicate", **SAME_DRUG))
    for ev in (dispense("d1", 0), dispense("d2", 1)):
        det.process(ev)
    det.process(dispense("x", 90 * DAY_H, patient_id="P2"))
    det.sweep()
    assert rule_size(det, RULE, skip="P2") == 0
