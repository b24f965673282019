"""institution_cost_jump: a month's average per visit more than 30 % above the previous one's,
evaluated once the month is closed: a claim of the institution at or after its end plus the
allowed lateness (1 h)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from claimstream.testing import SHANGHAI, with_rule
from tests.rules._catalogue import (
    alerts,
    claim,
    drains,
    duplicated,
    hours_until,
)

RULE = "institution_cost_jump"
APRIL = hours_until(datetime(2026, 4, 1, tzinfo=SHANGHAI))
MAY = hours_until(datetime(2026, 5, 1, tzinfo=SHANGHAI))


def visits(prefix: str, start: float, amounts: list[float], inst: str = "H1") -> list:
    return [
        claim(f"{prefix}{i:02d}", start + 10 + i, inst=inst, total=amount, patient_id=f"P{i}")
        for i, amount in enumerate(amounts)
    ]


def months(april_amount: float, **fields: Any) -> list:
    """Ten March visits at 100, ten April visits at `april_amount`, a claim closing April."""
    return [
        *visits("m", 0, [100.0] * 10),
        *visits("a", APRIL, [april_amount] * 10),
        claim("close", MAY + 1, total=50, **fields),
    ]


@pytest.mark.parametrize(("april", "alerted"), [(130.0, False), (130.5, True), (200.0, True)])
def test_more_than_thirty_percent_above_the_previous_month(april: float, alerted: bool) -> None:
    assert bool(alerts(RULE, months(april))) is alerted


def test_the_alert_is_about_the_institution_and_the_month() -> None:
    amounts = [150.0, 140.0, 160.0, 130.0, 170.0, 120.0, 180.0, 110.0, 190.0, 150.0]
    events = [*visits("m", 0, [100.0] * 10), *visits("a", APRIL, amounts), claim("z", MAY + 1)]
    (alert,) = alerts(RULE, events)
    assert (alert.subject.kind, alert.subject.id) == ("institution", "H1")
    assert alert.occurred_at == "2026-05-01T00:00:00+08:00"
    assert alert.details["month"] == "2026-04" and alert.details["previous_month"] == "2026-03"
    assert alert.details["average"] == 150.0 and alert.details["previous_average"] == 100.0
    assert alert.details["increase"] == 0.5 and alert.details["visits"] == 10
    assert alert.event_ids == ("a08", "a06", "a04", "a02", "a00")  # the five highest claims
    assert "50%" in alert.message and "2026-04" in alert.message


@pytest.mark.parametrize(("closing", "evaluated"), [(MAY + 0.99, False), (MAY + 1, True)])
def test_the_month_closes_at_its_end_plus_the_allowed_lateness(
    closing: float, evaluated: bool
) -> None:
    events = [*months(200)[:-1], claim("close", closing)]
    assert bool(alerts(RULE, events)) is evaluated


def test_a_late_claim_of_the_month_still_counts_before_it_closes() -> None:
    early_may = claim("may", MAY + 0.5, total=100)
    late_april = claim("late", MAY - 0.25, total=1_000, patient_id="PL")
    base = [*visits("m", 0, [100.0] * 10), *visits("a", APRIL, [100.0] * 9)]
    # without the late claim April averages 100: no jump; with it 190
    events = [*base, early_may, late_april, claim("close", MAY + 1)]
    (alert,) = alerts(RULE, events)
    assert alert.details["average"] == 190.0
    assert "late" in alert.event_ids


def test_out_of_order_within_lateness_gives_the_same_alert() -> None:
    base = [*visits("m", 0, [100.0] * 10), *visits("a", APRIL, [100.0] * 9)]
    may = claim("may", MAY + 0.5, total=100)
    late = claim("late", MAY - 0.25, total=1_000)  # 45 minutes behind `may`: accepted
    for tail in ([may, late], [late, may]):
        (alert,) = alerts(RULE, [*base, *tail, claim("close", MAY + 1)])
        assert (
            alert.alert_id == alerts(RULE, [*base, late, may, claim("close", MAY + 1)])[0].alert_id
        )
        assert alert.details["average"] == 190.0


def test_no_previous_month_no_comparison_and_institutions_apart() -> None:
    assert alerts(RULE, [*visits("a", APRIL, [500.0] * 10), claim("close", MAY + 1)]) == []
    other = [*visits("m", 0, [100.0] * 10), *visits("a", APRIL, [200.0] * 10, inst="H2")]
    assert alerts(RULE, [*other, claim("c1", MAY + 1), claim("c2", MAY + 1, inst="H2")]) == []


def test_settings_min_visits_amount_and_threshold() -> None:
    assert alerts(RULE, months(200), with_rule(RULE, min_visits="11")) == []
    assert alerts(RULE, months(125), with_rule(RULE, max_increase="0.2"))
    # fund_amount defaults to 70 % of the total in these claims: the same jump
    assert alerts(RULE, months(200), with_rule(RULE, amount="fund_amount"))
    with pytest.raises(ValueError, match="amount must be one of"):
        with_rule(RULE, amount="price")


def test_duplicates_change_nothing() -> None:
    (once,) = alerts(RULE, months(150))
    (twice,) = alerts(RULE, duplicated(months(150)))
    assert (twice.alert_id, twice.details) == (once.alert_id, once.details)


def test_state_is_bounded_to_two_months() -> None:
    soon = claim("x", MAY + 24 * 10, inst="H9")
    assert drains(RULE, months(150), soon) == (3, 2)  # April stays: May's comparison base
    later = claim("x", MAY + 24 * 90, inst="H9")
    assert drains(RULE, months(150), later) == (3, 0)


def test_the_amount_is_what_the_month_billed_above_the_allowed_growth() -> None:
    (alert,) = alerts(RULE, months(200.0))
    assert alert.amount == 700.0  # 10 visits x (200 - 100 x 1.3)
    assert alert.behaviour == "次均费用异常增长"
    assert alert.legal_basis == "《医疗保障基金使用监督管理条例》"
