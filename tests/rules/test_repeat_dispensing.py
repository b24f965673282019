"""repeat_dispensing: same drug, another institution, while an earlier supply still runs."""

from __future__ import annotations

import pytest

from claimstream.detection.config import DetectionConfig
from claimstream.model.config import ConfigError
from claimstream.testing import DAY_H, alerts_of, detector, dispense, run, with_rule
from tests.rules._catalogue import written_before

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


def test_the_amount_is_the_cost_of_the_repeated_dispensing() -> None:
    result = run(
        [
            dispense("a", 0, inst="H1", quantity=4, unit_price=80.0),
            dispense("b", 2 * DAY_H, inst="H2", quantity=3, unit_price=75.5),
        ]
    )
    (alert,) = alerts_of(RULE, result)
    assert alert.amount == 226.5  # 3 x 75.50, the refill, not the first supply
    assert alert.lines == ()


def test_a_dispensing_without_a_price_gives_a_null_amount() -> None:
    result = run([dispense("a", 0, inst="H1"), dispense("b", 2 * DAY_H, inst="H2")])
    (alert,) = alerts_of(RULE, result)
    assert alert.amount is None


def test_the_alert_cites_article_15_and_names_the_behaviour() -> None:
    (alert,) = alerts_of(RULE, run([dispense("a", 0, inst="H1"), dispense("b", 48, inst="H2")]))
    assert alert.legal_basis == "《医疗保障基金使用监督管理条例》第十五条、第三十八条第二项"
    assert alert.behaviour == "重复开药"


def test_an_out_of_order_refill_gives_the_same_amount() -> None:
    first = dispense("a", 0, inst="H1", unit_price=10.0)
    refill = dispense("b", 0.5, inst="H2", quantity=2, unit_price=12.0)
    assert [a.amount for a in alerts_of(RULE, run([refill, first]))] == [24.0]


def test_a_changed_legal_basis_is_what_the_alert_cites() -> None:
    config = with_rule(RULE, legal_basis="《某省医保基金监管办法》第九条", behaviour="重复配药")
    events = [dispense("a", 0, inst="H1"), dispense("b", 48, inst="H2")]
    (alert,) = alerts_of(RULE, run(events, config))
    assert (alert.legal_basis, alert.behaviour) == ("《某省医保基金监管办法》第九条", "重复配药")


def test_a_refill_held_from_before_amounts_existed_alerts_with_a_null_amount() -> None:
    det = detector()
    det.process(dispense("b", 0.5, inst="H2", unit_price=12.0))
    written_before(det, RULE, 10)  # the layout before AMOUNT
    step = det.process(dispense("a", 0, inst="H1", unit_price=10.0))  # b is now a repeat
    (alert,) = alerts_of(RULE, step)
    assert alert.event_ids == ("a", "b")
    assert alert.amount is None


def test_an_early_refill_at_the_same_institution_counts_by_default() -> None:
    # Upgrade note: before `same_institution` (default on) this raised nothing.
    (alert,) = alerts_of(RULE, run([dispense("a", 0, inst="H1"), dispense("b", 48, inst="H1")]))
    assert alert.event_ids == ("a", "b")
    assert alert.details["same_institution"] is True
    assert alert.details["institutions"] == ["H1"]


def test_the_same_institution_is_not_counted_when_turned_off() -> None:
    config = with_rule(RULE, same_institution="false")
    events = [dispense("a", 0, inst="H1"), dispense("b", 48, inst="H1")]
    assert not alerts_of(RULE, run(events, config))


@pytest.mark.parametrize(
    ("tolerance", "refill_days", "alerted"),
    [(0.2, 23.9, True), (0.2, 24.0, False), (0.5, 14.9, True), (0.5, 15.0, False)],
)
def test_the_same_institution_has_its_own_tolerance(
    tolerance: float, refill_days: float, alerted: bool
) -> None:
    # early_refill_tolerance (another institution) is left at 0.2 and does not apply here
    config = with_rule(RULE, same_institution_tolerance=tolerance)
    events = [dispense("a", 0, inst="H1"), dispense("b", refill_days * DAY_H, inst="H1")]
    assert bool(alerts_of(RULE, run(events, config))) is alerted


def test_the_same_institution_tolerance_leaves_other_institutions_alone() -> None:
    config = with_rule(RULE, same_institution_tolerance=0.9)  # 3 days of a 30-day supply
    same = [dispense("a", 0, inst="H1"), dispense("b", 10 * DAY_H, inst="H1")]
    other = [dispense("a", 0, inst="H1"), dispense("b", 10 * DAY_H, inst="H2")]
    assert not alerts_of(RULE, run(same, config))
    assert alerts_of(RULE, run(other, config))


def insulin(event_id: str, days: float, inst: str) -> object:
    return dispense(event_id, days * DAY_H, inst=inst, atc_code="A10AE04")


@pytest.mark.parametrize(
    ("refill_days", "inst", "alerted"),
    [(20.9, "H2", True), (21.0, "H2", False), (20.9, "H1", True), (21.0, "H1", False)],
)
def test_a_drug_class_has_its_own_tolerance_wherever_the_refill_is(
    refill_days: float, inst: str, alerted: bool
) -> None:
    config = with_rule(RULE, class_tolerances="chronic:0.3")  # insulin is chronic (ATC A10)
    events = [insulin("a", 0, "H1"), insulin("b", refill_days, inst)]
    assert bool(alerts_of(RULE, run(events, config))) is alerted  # type: ignore[arg-type]


def test_a_drug_of_no_listed_class_keeps_the_general_tolerance() -> None:
    config = with_rule(RULE, class_tolerances="quinolone:0.9")
    events = [insulin("a", 0, "H1"), insulin("b", 23.9, "H2")]
    assert alerts_of(RULE, run(events, config))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tolerances", "alerted"), [("chronic:0.1,aspirin:0.5", False), ("chronic:0.1", True)]
)
def test_the_largest_tolerance_of_the_drugs_classes_applies(tolerances: str, alerted: bool) -> None:
    # aspirin (ATC B01AC06) is of two classes: chronic (B01AC) and aspirin
    config = with_rule(RULE, class_tolerances=tolerances)
    events = [
        dispense("a", 0, inst="H1", atc_code="B01AC06"),
        dispense("b", 16 * DAY_H, inst="H2", atc_code="B01AC06"),
    ]
    assert bool(alerts_of(RULE, run(events, config))) is alerted  # 0.5: 15 days is the line


@pytest.mark.parametrize("entry", ["chronic", "chronic:1.0", "chronic:-0.1", ":0.2", "chronic:x"])
def test_a_malformed_class_tolerance_is_refused(entry: str) -> None:
    with pytest.raises(ConfigError, match="class_tolerances"):
        with_rule(RULE, class_tolerances=entry)


def test_a_same_institution_refill_out_of_order_gives_the_same_alert() -> None:
    in_order = run([dispense("a", 0, inst="H1"), dispense("b", 0.5, inst="H1")])
    reversed_ = run([dispense("b", 0.5, inst="H1"), dispense("a", 0, inst="H1")])
    assert [a.alert_id for a in reversed_.alerts] == [a.alert_id for a in in_order.alerts]
    assert len(in_order.alerts) == 1


def test_an_empty_text_clears_the_class_tolerances() -> None:
    config = (
        DetectionConfig.default()
        .with_rule_changes(RULE, {"class_tolerances": "chronic:0.5"})
        .with_rule_changes(RULE, {"class_tolerances": ""})
    )
    events = [insulin("a", 0, "H1"), insulin("b", 23.9, "H2")]
    assert alerts_of(RULE, run(events, config))  # type: ignore[arg-type]
