"""doctor_consultation_rate: a doctor with at least 30 online consultations within one hour."""

from __future__ import annotations

import pytest

from claimstream.testing import DAY_H, consultation, with_rule
from tests.rules._catalogue import alerts, drains, duplicated, same_alerts_in_every_order

RULE = "doctor_consultation_rate"


def sessions(count: int, *, minutes: float = 1.0, doctor: str = "D1", start: float = 0.0) -> list:
    """`count` online consultations by one doctor, `minutes` apart, each with its own patient."""
    return [
        consultation(
            f"{doctor}-{start}-{i:03d}",
            start + i * minutes / 60,
            doctor_id=doctor,
            patient_id=f"P{i}",
        )
        for i in range(count)
    ]


@pytest.mark.parametrize(("count", "alerted"), [(29, 0), (30, 1), (55, 1)])
def test_thirty_in_an_hour_make_one_alert_per_episode(count: int, alerted: int) -> None:
    assert len(alerts(RULE, sessions(count))) == alerted


@pytest.mark.parametrize(("minutes", "alerted"), [(59 / 29 - 0.01, True), (60 / 29, False)])
def test_the_window_is_a_trailing_hour(minutes: float, alerted: bool) -> None:
    # 30 consultations spanning 29 intervals: just under an hour alerts, an hour does not
    assert bool(alerts(RULE, sessions(30, minutes=minutes))) is alerted


def test_the_alert_is_about_the_doctor() -> None:
    (alert,) = alerts(RULE, sessions(30))
    assert (alert.subject.kind, alert.subject.id) == ("doctor", "D1")
    assert alert.patient_id is None
    assert alert.details["count"] == 30 and alert.details["patients"] == 30
    assert alert.details["span_minutes"] == 29.0
    assert len(alert.event_ids) == 30
    assert "D1" in alert.message and "30 online consultations" in alert.message


def test_offline_consultations_and_other_doctors_do_not_count() -> None:
    offline = consultation("off", 0.9, doctor_id="D1", mode="offline")
    assert alerts(RULE, [*sessions(29), offline]) == []
    assert alerts(RULE, [*sessions(15), *sessions(15, doctor="D2")]) == []


def test_a_new_episode_after_a_quiet_spell_alerts_again() -> None:
    assert len(alerts(RULE, [*sessions(30), *sessions(30, start=5.0)])) == 2


def test_threshold_is_configurable() -> None:
    config = with_rule(RULE, min_consultations="10", window_minutes="20")
    assert len(alerts(RULE, sessions(10), config)) == 1
    assert alerts(RULE, sessions(10, minutes=3), config) == []


def test_out_of_order_within_lateness_gives_the_same_alert() -> None:
    four = with_rule(RULE, min_consultations=4)
    assert len(same_alerts_in_every_order(RULE, sessions(4), four)) == 1
    events = sessions(30)
    shuffled = [*events[::2], *events[1::2]]  # the odd ones arrive late, within the hour
    assert [a.alert_id for a in alerts(RULE, shuffled)] == [
        a.alert_id for a in alerts(RULE, events)
    ]


def test_duplicates_change_nothing() -> None:
    assert alerts(RULE, duplicated(sessions(29))) == []
    assert len(alerts(RULE, duplicated(sessions(30)))) == 1


def test_state_is_bounded_by_the_window() -> None:
    later = consultation("x", 3 * DAY_H, doctor_id="D9")
    assert drains(RULE, sessions(30), later) == (30, 0)


def test_consultations_carry_no_price_so_the_amount_is_null() -> None:
    (alert,) = alerts(RULE, sessions(30))
    assert alert.amount is None
    assert alert.behaviour == "虚构医药服务项目"
    assert alert.legal_basis.endswith("第四十条第三项")
