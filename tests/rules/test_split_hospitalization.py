"""split_hospitalization: readmitted for the same ICD-10 category within 7 days of discharge."""

from __future__ import annotations

import pytest

from claimstream.testing import DAY_H, admission, discharge, with_rule
from tests.rules._catalogue import (
    alerts,
    commands,
    drains,
    duplicated,
    same_alerts_in_every_order,
)

RULE = "split_hospitalization"


def stays(gap_hours: float, *, second: str = "I21.901", inst: str = "H2") -> list:
    return [
        admission("a1", 0, stay="S1", inst="H1", diagnosis_code="I21.000"),
        discharge("d1", 48, stay="S1", inst="H1", diagnosis_code="I21.000"),
        admission("a2", 48 + gap_hours, stay="S2", inst=inst, diagnosis_code=second),
    ]


@pytest.mark.parametrize(
    ("gap_hours", "alerted"),
    [(30.0, True), (7 * DAY_H - 1 / 60, True), (7 * DAY_H, False), (7 * DAY_H + 1, False)],
)
def test_readmission_for_the_same_category_under_seven_days(
    gap_hours: float, alerted: bool
) -> None:
    assert bool(alerts(RULE, stays(gap_hours))) is alerted


@pytest.mark.parametrize(
    ("second", "alerted"),
    [("I21.901", True), ("i21", True), ("I22.0", False), ("J18.9", False)],
)
def test_matching_is_on_the_three_character_category(second: str, alerted: bool) -> None:
    assert bool(alerts(RULE, stays(30, second=second))) is alerted


def test_the_alert_and_the_freeze_of_the_readmitting_institution_for_the_day() -> None:
    (alert,) = alerts(RULE, stays(30))  # readmitted 2026-03-04 14:00 +08:00
    assert alert.severity == "high"
    assert (alert.subject.kind, alert.subject.id) == ("patient", "P1")
    assert alert.event_ids == ("d1", "a2")
    assert alert.details["diagnosis_category"] == "I21"
    assert alert.details["gap_days"] == 1.25
    assert alert.details["same_institution"] is False
    assert "H2" in alert.message and "I21" in alert.message
    (command,) = commands(RULE, stays(30))
    assert command.action == "FREEZE"
    assert (command.scope.kind, command.scope.id) == ("institution", "H2")
    assert command.effective_from == "2026-03-04T14:00:00+08:00"
    assert command.expires_at == "2026-03-05T00:00:00+08:00"
    assert command.alert_ids == (alert.alert_id,)


def test_the_same_institution_counts_and_the_window_is_configurable() -> None:
    assert alerts(RULE, stays(30, inst="H1"))[0].details["same_institution"] is True
    config = with_rule(RULE, max_gap_days="14")
    assert alerts(RULE, stays(10 * DAY_H), config)
    assert not alerts(RULE, stays(10 * DAY_H))


def test_a_discharge_of_the_same_stay_is_no_earlier_stay() -> None:
    events = [
        admission("a1", 0, stay="S1", diagnosis_code="I21.0"),
        discharge("d1", 0.5, stay="S1", diagnosis_code="I21.0"),
    ]
    assert alerts(RULE, events) == []


def test_out_of_order_within_lateness_gives_the_same_alert() -> None:
    events = [
        discharge("d1", 10, stay="S1", inst="H1", diagnosis_code="I21.0"),
        admission("a2", 10.5, stay="S2", inst="H2", diagnosis_code="I21.9"),
        admission("a3", 10.75, stay="S3", inst="H3", diagnosis_code="I21.4"),
    ]
    assert len(same_alerts_in_every_order(RULE, events)) == 2


def test_duplicates_change_nothing() -> None:
    assert len(alerts(RULE, duplicated(stays(30)))) == 1
    assert len(commands(RULE, duplicated(stays(30)))) == 1


def test_state_is_bounded_by_the_gap() -> None:
    soon = admission("x", 7 * DAY_H, stay="SX", patient_id="P2")
    assert drains(RULE, stays(30), soon) == (3, 1)  # the discharge can still be matched
    later = admission("x", 30 * DAY_H, stay="SX", patient_id="P2")
    assert drains(RULE, stays(30), later) == (3, 0)


def test_stays_carry_no_price_so_the_amount_is_null_and_article_15_is_cited() -> None:
    (alert,) = alerts(RULE, stays(30.0))
    assert alert.amount is None
    assert alert.behaviour == "分解住院"
    assert alert.legal_basis == "《医疗保障基金使用监督管理条例》第十五条、第三十八条第一项"


@pytest.mark.parametrize(
    ("second", "alerted"),
    [("I21.000", True), ("i21000", True), (" I21.000 ", True), ("I21.001", False), ("I21", False)],
)
def test_without_match_category_the_whole_code_must_match(second: str, alerted: bool) -> None:
    config = with_rule(RULE, match_category="false")
    assert bool(alerts(RULE, stays(30, second=second), config)) is alerted


def test_without_match_category_the_alert_names_the_whole_code() -> None:
    (alert,) = alerts(RULE, stays(30, second="I21.000"), with_rule(RULE, match_category="false"))
    assert alert.details["diagnosis_category"] == "I21000"
    assert alert.details["match_category"] is False


@pytest.mark.parametrize(("planned", "alerted"), [(True, False), (False, True)])
def test_an_admission_flagged_planned_is_exempt(planned: bool, alerted: bool) -> None:
    events = stays(30)
    events[-1] = admission("a2", 78, stay="S2", inst="H2", diagnosis_code="I21.9", planned=planned)
    assert bool(alerts(RULE, events)) is alerted


def test_the_planned_flag_is_ignored_when_the_region_does_not_trust_it() -> None:
    events = stays(30)
    events[-1] = admission("a2", 78, stay="S2", inst="H2", diagnosis_code="I21.9", planned=True)
    assert alerts(RULE, events, with_rule(RULE, exempt_planned="false"))


def chemotherapy_cycles(gap_days: float) -> list:
    """Two chemotherapy stays `gap_days` apart (weekly regimens are under 7 days)."""
    return [
        admission("a1", 0, stay="S1", diagnosis_code="Z51.1"),
        discharge("d1", 24, stay="S1", diagnosis_code="Z51.1"),
        admission("a2", 24 + gap_days * DAY_H, stay="S2", diagnosis_code="Z51.1"),
    ]


@pytest.mark.parametrize(
    ("planned_diagnoses", "alerted"), [("Z51.0,Z51.1,Z51.2", False), ("Z51.0", True)]
)
def test_chemotherapy_cycles_are_exempt_by_diagnosis(planned_diagnoses: str, alerted: bool) -> None:
    config = with_rule(RULE, planned_diagnoses=planned_diagnoses)
    assert bool(alerts(RULE, chemotherapy_cycles(5), config)) is alerted
