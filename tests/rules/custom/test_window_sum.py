"""window_sum: the sum of an expression over the matching events of a window, at least X."""

from __future__ import annotations

import pytest

from claimstream.testing import DAY_H, detector
from tests.rules._catalogue import alerts, claim, duplicated, rule_size, same_alerts_in_every_order
from tests.rules.custom._custom import RULE, config

FUND_SPENT = {
    "key": "patient",
    "event_types": ["claim"],
    "filter": 'event.visit_type == "outpatient"',
    "value": "event.fund_amount",
    "window_days": 30,
    "min_sum": 3000.0,
}


def spending(*amounts: float, step: float = 24.0) -> list:
    return [
        claim(f"c{i}", i * step, total=amount, fund_amount=amount)
        for i, amount in enumerate(amounts)
    ]


@pytest.mark.parametrize(("last", "alerted"), [(999.99, False), (1000.0, True)])
def test_a_sum_at_least_min_sum_alerts(last: float, alerted: bool) -> None:
    found = alerts(RULE, spending(1000.0, 1000.0, last), config("window_sum", **FUND_SPENT))
    assert bool(found) is alerted


@pytest.mark.parametrize(("step", "alerted"), [(15 * DAY_H - 1 / 120, True), (15 * DAY_H, False)])
def test_the_window_is_trailing_and_excludes_its_start(step: float, alerted: bool) -> None:
    events = spending(1000.0, 1000.0, 1000.0, step=step)
    assert bool(alerts(RULE, events, config("window_sum", **FUND_SPENT))) is alerted


def test_one_alert_per_episode_with_the_sum_in_the_details() -> None:
    (alert,) = alerts(RULE, spending(*[1000.0] * 6), config("window_sum", **FUND_SPENT))
    assert (alert.details["sum"], alert.details["count"]) == (3000.0, 3)


def test_events_outside_the_filter_add_nothing() -> None:
    events = [
        claim(f"c{i}", i, visit_type="inpatient", total=1000.0, fund_amount=1000.0)
        for i in range(3)
    ]
    assert alerts(RULE, events, config("window_sum", **FUND_SPENT)) == []


def test_a_negative_value_takes_no_part() -> None:
    settings = config("window_sum", **{**FUND_SPENT, "value": "event.fund_amount - 1500.0"})
    (alert,) = alerts(RULE, spending(3500.0, 500.0, 2500.0), settings)
    assert (alert.event_ids, alert.details["sum"]) == (("c0", "c2"), 3000.0)


def test_out_of_order_within_lateness_gives_the_same_alert() -> None:
    events = spending(1000.0, 1000.0, 1000.0, step=0.2)
    found = same_alerts_in_every_order(RULE, events, config("window_sum", **FUND_SPENT))
    assert len(found) == 1


def test_redelivery_changes_nothing() -> None:
    found = alerts(
        RULE, duplicated(spending(1000.0, 1000.0, 1000.0)), config("window_sum", **FUND_SPENT)
    )
    assert len(found) == 1


def test_state_is_bounded_by_the_window() -> None:
    det = detector(config("window_sum", **FUND_SPENT))
    for ev in spending(1000.0, 1000.0):
        det.process(ev)
    det.process(claim("x", 90 * DAY_H, patient_id="P2"))
    det.sweep()
    assert rule_size(det, RULE, skip="P2") == 0
