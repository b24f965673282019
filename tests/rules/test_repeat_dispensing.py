"""repeat_dispensing: same drug, another institution, while an earlier supply still runs."""

from __future__ import annotations

import pytest

from claimstream.testing import DAY_H, alerts_of, dispense, run, with_rule

RULE = "repeat_dispensing"


def test_seed_case_twelve_boxes_of_insulin_from_three_hospitals() -> None:
    result = run(
        [
            dispense("a", 0, inst="H1"),
            dispense("b", 2 * DAY_H, inst="H2"),
            dispense("c", 5 * DAY_H, inst="H3"),
        ]
    )
    alerts = alerts_of(RULE, result)
    assert [a.event_ids for a in alerts] == [("a", "b"), ("a", "b", "c")]
    last = alerts[-1]
    assert last.severity == "high"
    assert (last.subject.kind, last.subject.id) == ("patient", "P1")
    assert last.details["total_quantity"] == 12
    assert last.details["institutions"] == ["H1", "H2", "H3"]


def test_freeze_of_the_drug_for_the_patient_until_the_earlier_supply_runs_out() -> None:
    result = run([dispense("a", 0, inst="H1"), dispense("b", 2 * DAY_H, inst="H2")])
    (command,) = result.commands
    assert command.action == "FREEZE"
    assert (command.scope.kind, command.scope.id, command.scope.drug_code) == (
        "patient",
        "P1",
        "INS",
    )
    assert command.effective_from == "2026-03-03T08:00:00+08:00"
    assert command.expires_at == "2026-03-31T08:00:00+08:00"  # 30 days after the first
    assert command.alert_ids == (result.alerts[0].alert_id,)


@pytest.mark.parametrize(
    ("share_of_supply", "alerted"),
    [(0.79, True), (0.7999, True), (0.80, False), (0.81, False)],
)
def test_refill_before_80_percent_of_a_30_day_supply_is_early(
    share_of_supply: float, alerted: bool
) -> None:
    refill = share_of_supply * 30 * DAY_H
    result = run([dispense("a", 0, inst="H1"), dispense("b", refill, inst="H2")])
    assert bool(alerts_of(RULE, result)) is alerted


@pytest.mark.parametrize(
    ("tolerance", "refill_days", "alerted"),
    [(0.5, 14.9, True), (0.5, 15.1, False), (0.0, 29.9, True), (0.0, 30.0, False)],
)
def test_tolerance_is_configurable(tolerance: float, refill_days: float, alerted: bool) -> None:
    config = with_rule(RULE, early_refill_tolerance=tolerance)
    result = run(
        [dispense("a", 0, inst="H1"), dispense("b", refill_days * DAY_H, inst="H2")], config
    )
    assert bool(alerts_of(RULE, result)) is alerted


@pytest.mark.parametrize(
    ("second", "why"),
    [
        (dispense("b", 48, inst="H1"), "same institution"),
        (dispense("b", 48, inst="H2", drug="MET"), "another drug"),
        (dispense("b", 48, inst="H2", patient_id="P2"), "another patient"),
    ],
)
def test_no_alert_when(second: object, why: str) -> None:
    assert not alerts_of(RULE, run([dispense("a", 0, inst="H1"), second])), why  # type: ignore[list-item]


def test_a_duplicate_delivery_changes_nothing() -> None:
    once = run([dispense("a", 0, inst="H1"), dispense("b", 48, inst="H2")])
    twice = run(
        [dispense("a", 0, inst="H1"), dispense("b", 48, inst="H2"), dispense("b", 48, inst="H2")]
    )
    assert [a.alert_id for a in twice.alerts] == [a.alert_id for a in once.alerts]
    assert len(twice.commands) == len(once.commands) == 1


def test_out_of_order_within_lateness_gives_the_same_alert() -> None:
    in_order = run([dispense("a", 0, inst="H1"), dispense("b", 0.5, inst="H2")])
    reversed_ = run([dispense("b", 0.5, inst="H2"), dispense("a", 0, inst="H1")])
    assert [a.alert_id for a in reversed_.alerts] == [a.alert_id for a in in_order.alerts]
    assert len(in_order.alerts) == 1


def test_an_earlier_dispensing_later_than_the_lateness_is_dead_lettered() -> None:
    result = run([dispense("b", 2, inst="H2"), dispense("a", 0, inst="H1")])
    assert result.alerts == []
    assert result.rejection is not None and result.rejection.reason == "late"
