"""special_exam_repeat: one doctor orders at least 3 special exams for a patient in 7 days."""

from __future__ import annotations

import pytest

from claimstream.testing import DAY_H, with_rule
from tests.rules._catalogue import (
    alerts,
    claim,
    drains,
    duplicated,
    item,
    same_alerts_in_every_order,
)

RULE = "special_exam_repeat"
CT = item("CT-HEAD", special=True)


def exams(times: list[float], *, doctor: str = "D1", code_item: dict | None = None) -> list:
    return [
        claim(f"c{i}", t, doctor_id=doctor, items=[code_item or CT]) for i, t in enumerate(times)
    ]


@pytest.mark.parametrize(("count", "alerted"), [(2, 0), (3, 1), (6, 1)])
def test_three_special_exams_make_one_alert_per_episode(count: int, alerted: int) -> None:
    assert len(alerts(RULE, exams([i * DAY_H for i in range(count)]))) == alerted


@pytest.mark.parametrize(("third", "alerted"), [(7 * DAY_H - 1 / 60, True), (7 * DAY_H, False)])
def test_the_window_is_a_trailing_seven_days(third: float, alerted: bool) -> None:
    assert bool(alerts(RULE, exams([0, 24, third]))) is alerted


def test_the_alert_names_the_doctor_as_subject() -> None:
    (alert,) = alerts(RULE, exams([0, 24, 48]))
    assert (alert.subject.kind, alert.subject.id) == ("doctor", "D1")
    assert alert.patient_id == "P1" and alert.doctor_id == "D1"
    assert alert.event_ids == ("c0", "c1", "c2")
    assert alert.details["exams"] == 3 and alert.details["exam_codes"] == ["CT-HEAD"]
    assert alert.severity == "warning"
    assert "D1" in alert.message and "P1" in alert.message


def test_each_special_item_counts_and_the_reference_list_marks_exams() -> None:
    one_claim = [claim("c", 0, doctor_id="D1", items=[CT, CT, item("MRI", special=True)])]
    assert len(alerts(RULE, one_claim)) == 1
    listed = item("210300001")  # CT plain scan in special_exams.csv, no special_exam flag
    assert len(alerts(RULE, exams([0, 1, 2], code_item=listed))) == 1
    plain = item("XRAY-CHEST")
    assert alerts(RULE, exams([0, 1, 2], code_item=plain)) == []


def test_other_doctors_and_unknown_doctors_do_not_add_up() -> None:
    mixed = [*exams([0, 1], doctor="D1"), claim("x", 2, doctor_id="D2", items=[CT])]
    assert alerts(RULE, mixed) == []
    assert alerts(RULE, [claim(f"n{i}", i, items=[CT]) for i in range(3)]) == []


def test_threshold_is_configurable() -> None:
    config = with_rule(RULE, min_exams="2", window_days="2")
    assert len(alerts(RULE, exams([0, 47]), config)) == 1
    assert alerts(RULE, exams([0, 48]), config) == []


def test_out_of_order_within_lateness_gives_the_same_alert() -> None:
    assert len(same_alerts_in_every_order(RULE, exams([0, 0.25, 0.5]))) == 1


def test_a_late_exam_before_the_alerted_one_sends_no_second_alert() -> None:
    """The documented limit: the episode's alert stands, under the later trigger's id."""
    events = exams([0, 0.25, 0.5, 0.75])
    late_third = [events[0], events[1], events[3], events[2]]
    (alert,) = alerts(RULE, late_third)
    assert alert.event_ids[-1] == "c3"
    assert [a.event_ids[-1] for a in alerts(RULE, events)] == ["c2"]


def test_duplicates_change_nothing() -> None:
    assert alerts(RULE, duplicated(exams([0, 24]))) == []
    assert len(alerts(RULE, duplicated(exams([0, 24, 48])))) == 1


def test_state_is_bounded_by_the_window() -> None:
    later = claim("x", 60 * DAY_H, patient_id="P2", doctor_id="D1", items=[CT])
    assert drains(RULE, exams([0, 24, 48]), later) == (3, 0)


def test_the_amount_is_the_special_exams_of_the_claim_that_made_it_a_repeat() -> None:
    mri = item("MRI-KNEE", special=True, price=650)
    third = claim("c2", 48, doctor_id="D1", items=[item("LAB-1", "lab", price=30), mri, CT])
    (alert,) = alerts(RULE, [*exams([0, 24]), third])
    assert alert.amount == 750.0  # 650 + 100, not the lab test
    assert alert.lines == ((1, "MRI-KNEE", 650.0), (2, "CT-HEAD", 100.0))
    assert alert.behaviour == "过度检查"


def test_out_of_order_the_lines_are_those_of_the_triggering_claim() -> None:
    mri = item("MRI-KNEE", special=True, price=650)
    first, second = exams([0, 0.2])
    third = claim("c2", 0.4, doctor_id="D1", items=[mri])
    (alert,) = alerts(RULE, [third, first, second])  # the last to arrive is not the trigger
    assert alert.event_ids[-1] == "c2"
    assert (alert.amount, alert.lines) == (650.0, ((0, "MRI-KNEE", 650.0),))
