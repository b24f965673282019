"""duplicate_exam: the same exam/lab code for a patient within 90 days at another institution."""

from __future__ import annotations

import pytest

from claimstream.testing import DAY_H, alerts_of, detector, with_rule
from tests.rules._catalogue import (
    alerts,
    claim,
    drains,
    duplicated,
    item,
    same_alerts_in_every_order,
    written_before,
)

RULE = "duplicate_exam"
GLUCOSE = item("LAB-GLU", "lab")
CT = item("CT-CHEST", "exam")


def twice(gap_hours: float, *, second_inst: str = "H2", items: list | None = None) -> list:
    return [
        claim("c1", 0, inst="H1", items=items or [GLUCOSE]),
        claim("c2", gap_hours, inst=second_inst, items=items or [GLUCOSE]),
    ]


@pytest.mark.parametrize(
    ("gap_hours", "alerted"),
    [(2.0, True), (90 * DAY_H - 1 / 60, True), (90 * DAY_H, False), (91 * DAY_H, False)],
)
def test_a_repeat_elsewhere_within_ninety_days(gap_hours: float, alerted: bool) -> None:
    assert bool(alerts(RULE, twice(gap_hours))) is alerted


def test_a_repeat_at_the_same_institution_is_not_flagged() -> None:
    assert alerts(RULE, twice(24, second_inst="H1")) == []


def test_only_exam_and_lab_items_count() -> None:
    assert alerts(RULE, twice(24, items=[item("SVC-1", "service"), item("D-1", "drug")])) == []
    assert len(alerts(RULE, twice(24, items=[CT]))) == 1


def test_one_alert_per_repeated_code() -> None:
    found = alerts(RULE, twice(24, items=[GLUCOSE, CT, item("SVC-1", "service")]))
    assert sorted(a.details["item_code"] for a in found) == ["CT-CHEST", "LAB-GLU"]
    assert len({a.alert_id for a in found}) == 2


def test_the_alert_names_both_institutions() -> None:
    (alert,) = alerts(RULE, twice(36))
    assert alert.severity == "warning"
    assert (alert.subject.kind, alert.subject.id) == ("patient", "P1")
    assert alert.event_ids == ("c1", "c2")
    assert alert.details["previous_institution_id"] == "H1"
    assert alert.institution_id == "H2"
    assert alert.details["days_since_previous"] == 1.5
    assert "H1" in alert.message and "H2" in alert.message


def test_window_is_configurable() -> None:
    config = with_rule(RULE, window_days="30")
    assert alerts(RULE, twice(40 * DAY_H), config) == []
    assert alerts(RULE, twice(40 * DAY_H))


def test_out_of_order_within_lateness_gives_the_same_alerts() -> None:
    events = [
        claim("c1", 0, inst="H1", items=[GLUCOSE]),
        claim("c2", 0.3, inst="H2", items=[GLUCOSE, CT]),
        claim("c3", 0.6, inst="H3", items=[GLUCOSE, CT]),
    ]
    assert len(same_alerts_in_every_order(RULE, events)) == 3


def test_duplicates_change_nothing() -> None:
    assert alerts(RULE, duplicated([claim("c1", 0, items=[GLUCOSE])])) == []
    assert len(alerts(RULE, duplicated(twice(24)))) == 1


def test_state_is_bounded_by_the_window() -> None:
    soon = claim("x", 60 * DAY_H, patient_id="P2", items=[GLUCOSE])
    assert drains(RULE, twice(24), soon) == (2, 2)
    later = claim("x", 200 * DAY_H, patient_id="P2", items=[GLUCOSE])
    assert drains(RULE, twice(24), later) == (2, 0)


def test_the_amount_is_the_price_of_the_duplicate_exam_on_the_later_claim() -> None:
    events = [
        claim("c1", 0, inst="H1", items=[item("CT-CHEST", price=300)]),
        claim(
            "c2",
            24,
            inst="H2",
            items=[item("LAB-X", "lab", price=20), item("CT-CHEST", price=320, quantity=1.5)],
        ),
    ]
    (alert,) = alerts(RULE, events)
    assert alert.amount == 480.0
    assert alert.lines == ((1, "CT-CHEST", 480.0),)
    assert alert.behaviour == "重复检查"
    assert "《医疗机构检查检验结果互认管理办法》" in alert.legal_basis


def test_a_claim_arriving_out_of_order_gives_the_same_amount_and_lines() -> None:
    later = claim("c2", 1, inst="H2", items=[item("LAB-GLU", "lab", price=15)])
    earlier = claim("c1", 0, inst="H1", items=[GLUCOSE])
    (alert,) = alerts(RULE, [later, earlier])
    assert (alert.amount, alert.lines) == (15.0, ((0, "LAB-GLU", 15.0),))


def test_a_claim_held_from_before_lines_existed_alerts_without_lines() -> None:
    det = detector()
    det.process(claim("c2", 1, inst="H2", items=[GLUCOSE]))
    written_before(det, RULE, 8)  # the layout before LINES
    (alert,) = alerts_of(RULE, det.process(claim("c1", 0, inst="H1", items=[GLUCOSE])))
    assert (alert.amount, alert.lines) == (None, ())
