"""high_frequency_consultation: at least 20 online consultations in any trailing 30 days."""

from __future__ import annotations

import pytest

from claimstream.testing import DAY_H, alerts_of, consultation, run, with_rule

RULE = "high_frequency_consultation"


def online(count: int, *, start: float = 0.0, step: float = 6.0, prefix: str = "c") -> list:
    return [consultation(f"{prefix}{i:03d}", start + i * step) for i in range(count)]


@pytest.mark.parametrize(("count", "alerts"), [(19, 0), (20, 1), (35, 1)])
def test_twenty_online_consultations_make_one_alert_per_episode(count: int, alerts: int) -> None:
    assert len(alerts_of(RULE, run(online(count)))) == alerts


def test_the_alert_carries_the_window_as_evidence() -> None:
    (alert,) = alerts_of(RULE, run(online(20)))
    assert alert.severity == "warning"
    assert len(alert.event_ids) == 20
    assert alert.event_ids[-1] == "c019"
    assert alert.details["count"] == 20
    assert alert.occurred_at == online(20)[-1].occurred_at


def test_offline_consultations_do_not_count() -> None:
    events = [*online(19), consultation("off", 200.0, mode="offline")]
    assert alerts_of(RULE, run(events)) == []


@pytest.mark.parametrize(
    ("span_hours", "alerted"),
    [(30 * DAY_H - 1 / 60, True), (30 * DAY_H, False)],
)
def test_the_window_is_trailing_30_days_exclusive_of_its_start(
    span_hours: float, alerted: bool
) -> None:
    # 19 consultations within the first day, the 20th `span_hours` after the first.
    events = [*online(19, step=1.0), consultation("last", span_hours)]
    assert bool(alerts_of(RULE, run(events))) is alerted


def test_a_new_episode_after_the_count_dips_alerts_again() -> None:
    events = online(20) + online(20, start=40 * DAY_H, prefix="d")
    assert len(alerts_of(RULE, run(events))) == 2


def test_a_steady_rate_at_the_threshold_is_one_episode_with_one_alert() -> None:
    # one every 36 h: from the 20th on, every trailing 30 days holds exactly 20
    assert len(alerts_of(RULE, run(online(40, step=36.0)))) == 1


def test_alerts_only_no_command() -> None:
    assert run(online(20)).commands == []


def test_threshold_is_configurable() -> None:
    config = with_rule(RULE, min_consultations=5)
    assert len(alerts_of(RULE, run(online(5), config))) == 1
    assert alerts_of(RULE, run(online(4), config)) == []


def test_a_duplicate_delivery_changes_nothing() -> None:
    events = online(20)
    assert len(alerts_of(RULE, run([*events, events[-1], events[-2]]))) == 1


def test_out_of_order_within_lateness_gives_the_same_alert() -> None:
    events = online(20, step=0.25)  # every 15 minutes
    shuffled = [*events[:17], events[19], events[18], events[17]]  # last three reversed
    expected = [a.alert_id for a in run(events).alerts]
    assert [a.alert_id for a in run(shuffled).alerts] == expected


def test_a_consultation_later_than_the_lateness_is_dead_lettered() -> None:
    events = online(19, step=0.25)
    result = run([*events, consultation("old", -2.0)])
    assert result.alerts == []
    assert result.rejection is not None and result.rejection.reason == "late"


def test_consultations_carry_no_price_so_the_amount_is_null() -> None:
    (alert,) = alerts_of(RULE, run(online(20)))
    assert (alert.amount, alert.lines) == (None, ())
    assert (alert.behaviour, alert.legal_basis) == ("高频问诊", "《医疗保障基金使用监督管理条例》")
