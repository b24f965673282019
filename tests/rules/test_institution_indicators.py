"""institution_indicators: an institution's month, closed by event time, as one record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from claimstream.detection.config import DetectionConfig
from claimstream.model.events import Event
from claimstream.model.indicators import InstitutionMonth
from claimstream.testing import SHANGHAI, detector, run, with_rule
from tests.rules._catalogue import claim, hours_until, item

#: the first instant of April, local time: March's end
APRIL = hours_until(datetime(2026, 4, 1, tzinfo=SHANGHAI))
#: allowed lateness of the default configuration, in hours
L = 1.0


def outpatient(event_id: str, hours: float, total: float, **fields: Any) -> Event:
    return claim(event_id, hours, total=total, **fields)


def inpatient(event_id: str, hours: float, total: float, drg: str, standard: float) -> Event:
    return claim(
        event_id,
        hours,
        total=total,
        visit_type="inpatient",
        drg_code=drg,
        drg_standard_cost=standard,
    )


def records(events: list[Event], config: DetectionConfig | None = None) -> list[InstitutionMonth]:
    return run(events, config).records


def march() -> list[Event]:
    return [
        outpatient("o1", 10, 100.0, items=[item("D1", "drug", price=60.0), item("X1", price=40.0)]),
        outpatient("o2", 20, 300.0, items=[item("M1", "material", price=100.0)]),
        inpatient("s1", 30, 12_000.0, "FM11", 10_000.0),
        inpatient("s2", 40, 9_000.0, "FM15", 10_000.0),
    ]


def test_a_closed_month_carries_the_indicators_by_their_formulas() -> None:
    [record] = records([*march(), outpatient("next", APRIL + L, 50.0)])
    figures = record.figures
    assert (record.institution_id, record.month) == ("H1", "2026-03")
    assert (figures.visits, figures.stays, figures.claims, figures.drg_stays) == (2, 2, 4, 2)
    assert figures.total_amount == 21_400.0
    assert figures.indicators == {
        "cost_per_visit": 200.0,
        "cost_per_stay": 10_500.0,
        "drug_share": 0.3,  # 60 of 200 yuan of items
        "exam_lab_share": 0.2,
        "materials_share": 0.5,
        "drg_cost_index": 1.05,  # 21 000 / 20 000
        "complication_rate": 0.5,  # FM11 ends in 1: with complications; FM15 not
    }


def test_the_month_does_not_close_before_its_end_plus_the_lateness() -> None:
    assert records([*march(), outpatient("next", APRIL + L - 0.01, 50.0)]) == []


def test_a_month_without_a_stay_has_no_stay_indicators() -> None:
    [record] = records([outpatient("o1", 10, 100.0), outpatient("next", APRIL + L, 50.0)])
    assert set(record.figures.indicators) == {"cost_per_visit"}


def test_departments_get_their_own_figures() -> None:
    events = [
        outpatient("o1", 10, 100.0, department_id="DEP-A"),
        outpatient("o2", 11, 300.0, department_id="DEP-B"),
        outpatient("o3", 12, 500.0, department_id="DEP-B"),
        outpatient("next", APRIL + L, 50.0),
    ]
    [record] = records(events)
    assert record.departments["DEP-A"].indicators["cost_per_visit"] == 100.0
    assert record.departments["DEP-B"].indicators["cost_per_visit"] == 400.0
    assert record.figures.indicators["cost_per_visit"] == 300.0


def test_the_peer_group_is_the_registrys_level_and_region() -> None:
    events = [outpatient("o1", 10, 100.0, inst="H001"), outpatient("n", APRIL + L, 1, inst="H001")]
    [record] = records(events)
    assert record.peer_group == "tertiary:330100"


def test_without_the_registry_the_claims_declared_level_is_the_peer_group() -> None:
    events = [
        outpatient("o1", 10, 100.0, institution_level="三级甲等"),
        outpatient("next", APRIL + L, 50.0, institution_level="三级甲等"),
    ]
    assert records(events)[0].peer_group == "tertiary"


def test_an_institution_nobody_grades_is_in_the_unknown_group() -> None:
    assert records([*march(), outpatient("next", APRIL + L, 50.0)])[0].peer_group == "unknown"


def test_out_of_order_and_redelivered_claims_change_nothing() -> None:
    close = [outpatient("next", APRIL + L, 50.0)]
    # within the allowed lateness of each other: 20 minutes apart
    within = [
        outpatient("o1", 10.0, 100.0, items=[item("D1", "drug", price=60.0)]),
        outpatient("o2", 10.3, 300.0, items=[item("M1", "material", price=100.0)]),
        inpatient("s1", 10.6, 12_000.0, "FM11", 10_000.0),
        inpatient("s2", 10.9, 9_000.0, "FM15", 10_000.0),
    ]
    shuffled = [within[2], within[0], within[3], within[1], within[0], within[2]]
    assert records(shuffled + close) == records(within + close)


def test_a_claim_of_a_closed_month_never_reopens_it() -> None:
    events = [*march(), outpatient("next", APRIL + L, 50.0), outpatient("late", APRIL - 0.5, 9e6)]
    assert len(records(events)) == 1


def test_a_quiet_institutions_month_closes_at_the_idle_sweep() -> None:
    det = detector(DetectionConfig.default())
    for event in march():
        det.process(event)
    # another institution's claims carry the stream past March's end + lateness + idle grace
    det.process(outpatient("other", APRIL + L + 25, 50.0, inst="H9"))
    swept = det.sweep()
    assert [(r.institution_id, r.month) for r in swept.records] == [("H1", "2026-03")]


def test_disabled_it_publishes_nothing() -> None:
    events = [*march(), outpatient("next", APRIL + L, 50.0)]
    assert records(events, with_rule("institution_indicators", enabled=False)) == []


@pytest.mark.parametrize("department_figures", [True, False])
def test_department_figures_can_be_left_out(department_figures: bool) -> None:
    config = with_rule("institution_indicators", department_figures=department_figures)
    events = [outpatient("o1", 10, 100.0, department_id="DEP-A"), outpatient("n", APRIL + L, 1.0)]
    assert bool(records(events, config)[0].departments) is department_figures
