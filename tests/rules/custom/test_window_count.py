"""window_count: at least N matching events per key within a trailing window."""

from __future__ import annotations

import pytest

from claimstream.detection.config import DetectionConfig
from claimstream.detection.decode import decode_event
from claimstream.devtools.simulate import generate
from claimstream.model.events import Event
from claimstream.testing import DAY_H, consultation, detector, run
from tests.rules._catalogue import (
    alerts,
    claim,
    duplicated,
    rule_size,
    same_alerts_in_every_order,
)
from tests.rules.custom._custom import RULE, config

HIGH_COST = {
    "key": "patient",
    "event_types": ["claim"],
    "filter": "event.total_amount > 1000.0",
    "window_days": 7,
    "min_count": 3,
}


def costly(count: int, *, step: float = 12.0, last: float | None = None, total: float = 1500.0):
    times = [i * step for i in range(count)]
    if last is not None:
        times[-1] = last
    return [claim(f"c{i:02d}", t, total=total) for i, t in enumerate(times)]


@pytest.mark.parametrize(("last", "alerted"), [(7 * DAY_H - 1 / 60, True), (7 * DAY_H, False)])
def test_the_window_is_trailing_and_excludes_its_start(last: float, alerted: bool) -> None:
    found = alerts(RULE, costly(3, last=last), config("window_count", **HIGH_COST))
    assert bool(found) is alerted


@pytest.mark.parametrize(("count", "alerted"), [(2, False), (3, True)])
def test_at_least_min_count_events_alert(count: int, alerted: bool) -> None:
    assert bool(alerts(RULE, costly(count), config("window_count", **HIGH_COST))) is alerted


@pytest.mark.parametrize(("total", "alerted"), [(1000.0, False), (1000.01, True)])
def test_only_events_matching_the_filter_count(total: float, alerted: bool) -> None:
    found = alerts(RULE, costly(3, total=total), config("window_count", **HIGH_COST))
    assert bool(found) is alerted


def test_one_alert_per_episode() -> None:
    assert len(alerts(RULE, costly(8), config("window_count", **HIGH_COST))) == 1


def test_the_alert_names_the_events_of_its_window_and_the_key() -> None:
    (alert,) = alerts(RULE, costly(3), config("window_count", **HIGH_COST))
    assert (alert.subject.kind, alert.subject.id, alert.event_ids) == (
        "patient",
        "P1",
        ("c00", "c01", "c02"),
    )


def test_out_of_order_within_lateness_gives_the_same_alert() -> None:
    events = costly(3, step=0.2)
    found = same_alerts_in_every_order(RULE, events, config("window_count", **HIGH_COST))
    assert len(found) == 1


def test_redelivery_changes_nothing() -> None:
    found = alerts(RULE, duplicated(costly(3)), config("window_count", **HIGH_COST))
    assert len(found) == 1


def test_the_same_events_give_the_same_alert_id() -> None:
    settings = config("window_count", **HIGH_COST)
    first = alerts(RULE, costly(3), settings)
    assert first[0].alert_id == alerts(RULE, costly(3), settings)[0].alert_id


def test_state_is_bounded_by_the_window() -> None:
    det = detector(config("window_count", **HIGH_COST))
    for ev in costly(3):
        det.process(ev)
    det.process(claim("x", 30 * DAY_H, patient_id="P2", total=1500.0))
    det.sweep()
    assert rule_size(det, RULE, skip="P2") == 0


def test_distinct_by_counts_distinct_values() -> None:
    events = [claim(f"c{i}", i, inst=f"H{i % 2}", total=1500.0) for i in range(4)]
    settings = config("window_count", **{**HIGH_COST, "distinct_by": "event.institution_id"})
    assert alerts(RULE, events, settings) == []


@pytest.mark.parametrize(("institutions", "alerted"), [(2, False), (3, True)])
def test_distinct_by_alerts_at_min_count_distinct_values(institutions: int, alerted: bool) -> None:
    events = [claim(f"c{i}", i, inst=f"H{i % institutions}", total=1500.0) for i in range(6)]
    settings = config("window_count", **{**HIGH_COST, "distinct_by": "event.institution_id"})
    assert bool(alerts(RULE, events, settings)) is alerted


def test_a_doctor_key_counts_the_doctor_s_events_over_patients() -> None:
    events = [claim(f"c{i}", i, patient_id=f"P{i}", doctor_id="D1", total=1500.0) for i in range(3)]
    (alert,) = alerts(RULE, events, config("window_count", **{**HIGH_COST, "key": "doctor"}))
    assert (alert.subject.kind, alert.subject.id, alert.patient_id) == ("doctor", "D1", None)


def test_the_amount_is_the_sum_of_the_expression_over_the_alert_s_events() -> None:
    settings = config("window_count", **HIGH_COST, amount="event.total_amount")
    (alert,) = alerts(RULE, costly(3), settings)
    assert alert.amount == 4500.0


def test_the_message_is_the_message_expression() -> None:
    message = '"high cost: " + string(finding.count) + " claims of " + finding.key'
    (alert,) = alerts(RULE, costly(3), config("window_count", **HIGH_COST, message=message))
    assert alert.message == "high cost: 3 claims of P1"


def test_a_new_rule_is_in_shadow_mode_by_default() -> None:
    settings = DetectionConfig.default().with_custom(
        {RULE: {"template": "window_count", **HIGH_COST}}
    )
    result = run(costly(3), settings)
    assert ([a.rule for a in result.shadow_alerts], result.alerts) == ([RULE], [])


def test_the_alerts_carry_the_rule_s_law_and_the_configuration_version() -> None:
    settings = config("window_count", **HIGH_COST, legal_basis="《条例》第十五条")
    (alert,) = alerts(RULE, costly(3), settings)
    assert (alert.legal_basis, alert.rule_version) == ("《条例》第十五条", settings.version)


def test_a_disabled_rule_is_not_run() -> None:
    assert alerts(RULE, costly(3), config("window_count", **HIGH_COST, enabled=False)) == []


# --- a built-in rule written as a template ------------------------------------------------

HIGH_FREQUENCY = {
    "template": "window_count",
    "key": "patient",
    "event_types": ["consultation"],
    "filter": 'event.mode == "online"',
    "window_days": 30,
    "min_count": 20,
    "mode": "enforce",
}


def _found(alerts_: list, rule: str) -> list[tuple]:
    return sorted(
        (a.subject.kind, a.subject.id, a.occurred_at, a.event_ids)
        for a in alerts_
        if a.rule == rule
    )


def test_high_frequency_consultation_as_window_count_gives_the_built_in_s_alerts() -> None:
    """A simulated month, abuse injected: the same cases, the same evidence, rule name aside."""
    events = [decode_event(raw) for raw in generate(30_000, seed=3)]
    assert all(isinstance(ev, Event) for ev in events)
    settings = DetectionConfig.default().with_custom({"hfc_custom": HIGH_FREQUENCY})
    result = run(events, settings)  # type: ignore[arg-type]
    built_in = _found(result.alerts, "high_frequency_consultation")
    assert built_in  # the month holds some cases, or this would prove nothing
    assert _found(result.alerts, "hfc_custom") == built_in


def test_high_frequency_consultation_as_window_count_agrees_at_the_threshold() -> None:
    settings = DetectionConfig.default().with_custom({"hfc_custom": HIGH_FREQUENCY})
    events = [consultation(f"c{i:02d}", i * 36.0) for i in range(21)]
    result = run(events, settings)
    assert _found(result.alerts, "hfc_custom") == _found(
        result.alerts, "high_frequency_consultation"
    )
