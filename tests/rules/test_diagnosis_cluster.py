"""diagnosis_cluster: at least 10 distinct patients with one diagnosis at one institution
within 30 days, on inpatient claims that carry no lab or exam item."""

from __future__ import annotations

from typing import Any

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

RULE = "diagnosis_cluster"
NURSING = item("SVC-BED", "service")


def admissions(
    count: int, *, step: float = 24.0, start: float = 0.0, prefix: str = "c", **fields: Any
) -> list:
    fields.setdefault("items", [NURSING])
    fields.setdefault("visit_type", "inpatient")
    fields.setdefault("diagnosis_code", "K29.700")
    return [
        claim(f"{prefix}{i:02d}", start + i * step, patient_id=f"{prefix}P{i}", **fields)
        for i in range(count)
    ]


def by_time(events: list) -> list:
    return sorted(events, key=lambda e: e.ts)


@pytest.mark.parametrize(("count", "alerted"), [(9, 0), (10, 1), (25, 1)])
def test_ten_patients_make_one_alert_per_episode(count: int, alerted: int) -> None:
    assert len(alerts(RULE, admissions(count, step=1.0))) == alerted


@pytest.mark.parametrize(
    ("step", "alerted"), [(30 * DAY_H / 9 - 0.01, True), (30 * DAY_H / 9, False)]
)
def test_the_window_is_a_trailing_thirty_days(step: float, alerted: bool) -> None:
    assert bool(alerts(RULE, admissions(10, step=step))) is alerted


def test_patients_are_counted_once() -> None:
    events = [
        *admissions(9),
        claim(
            "again",
            300,
            patient_id="cP0",
            visit_type="inpatient",
            diagnosis_code="K29.700",
            items=[NURSING],
        ),
    ]
    assert alerts(RULE, events) == []


@pytest.mark.parametrize(
    "fields",
    [
        {"items": [NURSING, item("LAB-CBC", "lab")]},
        {"items": [item("CT-ABD", "exam")]},
        {"visit_type": "outpatient"},
        {"diagnosis_code": None},
    ],
)
def test_claims_with_evidence_or_out_of_scope_do_not_count(fields: dict[str, Any]) -> None:
    events = admissions(9) + admissions(1, start=240, prefix="x", **fields)
    assert alerts(RULE, events) == []


def test_the_alert_is_about_the_institution() -> None:
    (alert,) = alerts(RULE, admissions(10))
    assert (alert.subject.kind, alert.subject.id) == ("institution", "H1")
    assert alert.severity == "high"
    assert alert.details["diagnosis"] == "K29.700" and alert.details["patients"] == 10
    assert alert.details["total_amount"] == 1000.0
    assert len(alert.event_ids) == 10 and alert.event_ids[-1] == "c09"
    assert "K29.700" in alert.message and "without any lab or exam" in alert.message


def test_diagnoses_and_institutions_are_kept_apart_unless_matched_by_category() -> None:
    mixed = by_time(admissions(5) + admissions(5, start=1, prefix="d", diagnosis_code="K29.500"))
    assert alerts(RULE, mixed) == []
    by_category = with_rule(RULE, match_category="true")
    assert alerts(RULE, mixed, by_category)[0].details["diagnosis"] == "K29"
    elsewhere = by_time(admissions(5) + admissions(5, start=1, prefix="d", inst="H2"))
    assert alerts(RULE, elsewhere) == []


def test_settings_are_configurable_and_validated() -> None:
    config = with_rule(RULE, min_patients="3", visit_types="inpatient,outpatient")
    assert alerts(RULE, admissions(3, visit_type="outpatient"), config)
    with pytest.raises(ValueError, match="visit_types"):
        with_rule(RULE, visit_types="inpatient,daycare")


def test_out_of_order_within_lateness_gives_the_same_alert() -> None:
    four = with_rule(RULE, min_patients=4)
    assert len(same_alerts_in_every_order(RULE, admissions(4, step=0.2), four)) == 1
    events = admissions(10, step=0.05)
    shuffled = [*events[1::2], *events[::2]]  # the last in time still arrives last
    assert [a.alert_id for a in alerts(RULE, shuffled)] == [
        a.alert_id for a in alerts(RULE, events)
    ]


def test_duplicates_change_nothing() -> None:
    assert alerts(RULE, duplicated(admissions(9))) == []
    assert len(alerts(RULE, duplicated(admissions(10)))) == 1


def test_state_is_bounded_by_the_window() -> None:
    later = claim("x", 120 * DAY_H, inst="H9")
    assert drains(RULE, admissions(10), later) == (10, 0)


def test_the_amount_is_what_the_episodes_claims_billed() -> None:
    (alert,) = alerts(RULE, admissions(10, step=1.0, total=1_234.5))
    assert alert.amount == 12_345.0
    assert alert.behaviour == "虚假住院"
    assert alert.legal_basis.endswith("第十五条、第四十条第一项")
