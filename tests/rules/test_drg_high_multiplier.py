"""drg_high_multiplier: inpatient total over 3x (tertiary) or 2x (other) the DRG standard cost."""

from __future__ import annotations

from typing import Any

import pytest

from claimstream.model.config import ConfigError
from claimstream.testing import DAY_H, with_rule
from tests.rules._catalogue import alerts, claim, drains, duplicated, same_alerts_in_every_order

RULE = "drg_high_multiplier"


def case(ratio: float, event_id: str = "c1", hours: float = 0, **fields: Any) -> Any:
    fields.setdefault("visit_type", "inpatient")
    fields.setdefault("drg_code", "ES23")
    return claim(event_id, hours, total=10_000 * ratio, drg_standard_cost=10_000, **fields)


@pytest.mark.parametrize(
    ("level", "ratio", "alerted"),
    [
        ("tertiary", 3.0, False),
        ("tertiary", 3.01, True),
        ("secondary", 2.0, False),
        ("secondary", 2.01, True),
        ("三级", 2.5, False),
        ("三甲", 3.5, True),
        ("3", 2.5, False),
        ("二级", 2.5, True),
    ],
)
def test_multiplier_by_declared_level(level: str, ratio: float, alerted: bool) -> None:
    assert bool(alerts(RULE, [case(ratio, institution_level=level)])) is alerted


@pytest.mark.parametrize(("inst", "alerted"), [("H001", False), ("H003", True), ("H999", True)])
def test_level_from_the_reference_registry_when_the_claim_has_none(
    inst: str, alerted: bool
) -> None:
    assert bool(alerts(RULE, [case(2.5, inst=inst)])) is alerted


def test_only_inpatient_claims_with_a_standard_cost() -> None:
    assert alerts(RULE, [case(5, visit_type="outpatient")]) == []
    assert alerts(RULE, [claim("c", 0, visit_type="inpatient", total=1e6)]) == []


def test_the_alert_is_about_the_institution() -> None:
    (alert,) = alerts(RULE, [case(4, inst="H003")])
    assert (alert.subject.kind, alert.subject.id) == ("institution", "H003")
    assert alert.patient_id == "P1"
    assert alert.details["ratio"] == 4.0
    assert alert.details["multiplier"] == 2.0
    assert alert.details["institution_level"] == "secondary"
    assert "ES23" in alert.message and "4.00 times" in alert.message


def test_multipliers_are_configurable() -> None:
    config = with_rule(RULE, tertiary_multiplier="5")
    assert alerts(RULE, [case(4, institution_level="tertiary")], config) == []


def test_order_and_duplicates_change_nothing() -> None:
    events = [case(4, "c1", 0), case(5, "c2", 0.5, patient_id="P2")]
    assert len(same_alerts_in_every_order(RULE, events)) == 2
    assert len(alerts(RULE, duplicated(events))) == 2


def test_holds_no_state() -> None:
    assert drains(RULE, [case(4)], case(4, "x", 10 * DAY_H, patient_id="P2")) == (0, 0)


@pytest.mark.parametrize(("ratio", "amount"), [(3.01, 20_100.0), (5.0, 40_000.0)])
def test_the_amount_is_the_excess_over_the_drg_standard(ratio: float, amount: float) -> None:
    (alert,) = alerts(RULE, [case(ratio, institution_level="tertiary")])
    assert alert.amount == amount
    assert alert.behaviour == "过度诊疗"
    assert alert.legal_basis.endswith("（费用极高病例）")


@pytest.mark.parametrize(
    ("ratio", "alerted"), [(0.29, True), (0.2999, True), (0.3, False), (0.31, False), (1.0, False)]
)
def test_a_case_below_three_tenths_of_the_standard_is_a_low_multiplier_case(
    ratio: float, alerted: bool
) -> None:
    assert bool(alerts(RULE, [case(ratio)])) is alerted


def test_a_low_multiplier_alert_says_so_and_its_amount_is_the_whole_stay() -> None:
    (alert,) = alerts(RULE, [case(0.25, inst="H003")])
    assert alert.details["kind"] == "low"
    assert alert.details["multiplier"] == 0.3
    assert alert.amount == 2500.0
    assert "below the 0.3x line" in alert.message


def test_a_high_multiplier_alert_says_high() -> None:
    (alert,) = alerts(RULE, [case(4, inst="H003")])
    assert alert.details["kind"] == "high"


def test_low_multiplier_cases_can_be_turned_off() -> None:
    assert alerts(RULE, [case(0.1)], with_rule(RULE, flag_low="false")) == []
    assert alerts(RULE, [case(4)], with_rule(RULE, flag_low="false"))


@pytest.mark.parametrize(("low", "ratio", "alerted"), [(0.5, 0.49, True), (0.5, 0.5, False)])
def test_the_low_line_is_configurable(low: float, ratio: float, alerted: bool) -> None:
    assert bool(alerts(RULE, [case(ratio)], with_rule(RULE, low_multiplier=low))) is alerted


@pytest.mark.parametrize("low", ["0", "-0.1", "2.0", "5"])
def test_a_low_line_that_is_not_below_the_high_lines_is_refused(low: str) -> None:
    with pytest.raises(ConfigError, match="low_multiplier"):
        with_rule(RULE, low_multiplier=low)
