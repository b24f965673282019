"""sequence: an A event followed by a B event of the same key within a time, one alert per pair."""

from __future__ import annotations

import pytest

from claimstream.model.config import ConfigError
from claimstream.testing import DAY_H, admission, detector, dispense
from tests.rules._catalogue import (
    alerts,
    claim,
    duplicated,
    rule_size,
    same_alerts_in_every_order,
)
from tests.rules.custom._custom import RULE, config

#: an admission followed by an outpatient claim within 24 h (the outpatient bill of an
#: inpatient: 挂床/分解)
ADMITTED_THEN_OUTPATIENT = {
    "key": "patient",
    "event_types": ["admission"],
    "event_types_b": ["claim"],
    "filter_a": "true",
    "filter_b": 'event.visit_type == "outpatient"',
    "within_hours": 24,
}
#: the same drug dispensed again within 10 days, at another institution
SAME_DRUG_ELSEWHERE = {
    "key": "patient",
    "event_types": ["dispense"],
    "filter_a": "true",
    "filter_b": "true",
    "join": "a.drug_code == b.drug_code && a.institution_id != b.institution_id",
    "within_days": 10,
}


@pytest.mark.parametrize(("later", "alerted"), [(24 - 1 / 60, True), (24.0, False)])
def test_a_b_event_within_the_time_alerts_and_one_exactly_that_late_does_not(
    later: float, alerted: bool
) -> None:
    events = [admission("a1", 0, stay="S1"), claim("c1", later, visit_type="outpatient")]
    found = alerts(RULE, events, config("sequence", **ADMITTED_THEN_OUTPATIENT))
    assert bool(found) is alerted


def test_a_b_event_before_the_a_event_does_not_alert() -> None:
    events = [claim("c1", 0, visit_type="outpatient"), admission("a1", 1, stay="S1")]
    assert alerts(RULE, events, config("sequence", **ADMITTED_THEN_OUTPATIENT)) == []


def test_filter_b_decides_which_events_are_b_events() -> None:
    events = [admission("a1", 0, stay="S1"), claim("c1", 2, visit_type="inpatient")]
    assert alerts(RULE, events, config("sequence", **ADMITTED_THEN_OUTPATIENT)) == []


def test_filter_a_decides_which_events_are_a_events() -> None:
    settings = {**ADMITTED_THEN_OUTPATIENT, "filter_a": "event.emergency"}
    events = [admission("a1", 0, stay="S1"), claim("c1", 2, visit_type="outpatient")]
    assert alerts(RULE, events, config("sequence", **settings)) == []


def test_the_alert_names_the_pair_and_dates_it_at_the_b_event() -> None:
    events = [admission("a1", 0, stay="S1"), claim("c1", 2, visit_type="outpatient")]
    (alert,) = alerts(RULE, events, config("sequence", **ADMITTED_THEN_OUTPATIENT))
    assert alert.event_ids == ("a1", "c1")
    assert alert.occurred_at == events[1].occurred_at
    assert (alert.details["template"], alert.details["gap_hours"]) == ("sequence", 2.0)


def test_the_join_must_hold_for_the_pair() -> None:
    events = [dispense("d1", 0, inst="H1"), dispense("d2", 5, inst="H2", drug="MET")]
    assert alerts(RULE, events, config("sequence", **SAME_DRUG_ELSEWHERE)) == []


def test_a_pair_the_join_accepts_alerts() -> None:
    events = [dispense("d1", 0, inst="H1"), dispense("d2", 5, inst="H2")]
    (alert,) = alerts(RULE, events, config("sequence", **SAME_DRUG_ELSEWHERE))
    assert alert.event_ids == ("d1", "d2")


def test_the_join_evaluated_by_cel_agrees_with_its_python_shortcut() -> None:
    # `a.f == b.g` is compared in Python; wrapped in `(... && true)`, CEL evaluates it
    events = [dispense("d1", 0), dispense("d2", 5), dispense("d3", 6, drug="MET")]
    fast = {**SAME_DRUG_ELSEWHERE, "join": "a.drug_code == b.drug_code"}
    slow = {**SAME_DRUG_ELSEWHERE, "join": "(a.drug_code == b.drug_code && true)"}
    ids = [a.event_ids for a in alerts(RULE, events, config("sequence", **fast))]
    assert ids == [("d1", "d2")]
    assert [a.event_ids for a in alerts(RULE, events, config("sequence", **slow))] == ids


def test_an_event_matching_both_filters_is_never_its_own_pair() -> None:
    events = [dispense("d1", 0, inst="H1")]
    settings = {**SAME_DRUG_ELSEWHERE, "join": "true"}
    assert alerts(RULE, events, config("sequence", **settings)) == []


def test_each_pair_is_one_alert() -> None:
    events = [dispense("d1", 0, inst="H1"), dispense("d2", 1, inst="H2"), dispense("d3", 2)]
    found = alerts(RULE, events, config("sequence", **SAME_DRUG_ELSEWHERE))
    assert sorted(a.event_ids for a in found) == [("d1", "d2"), ("d2", "d3")]


def test_two_events_at_the_same_time_pair_once_in_event_id_order() -> None:
    events = [dispense("d2", 0, inst="H2"), dispense("d1", 0, inst="H1")]
    settings = {**SAME_DRUG_ELSEWHERE, "join": "true"}
    (alert,) = alerts(RULE, events, config("sequence", **settings))
    assert alert.event_ids == ("d1", "d2")


def test_out_of_order_within_lateness_gives_the_same_alerts() -> None:
    events = [
        dispense("d1", 0, inst="H1"),
        dispense("d2", 0.2, inst="H2"),
        dispense("d3", 0.4, inst="H1"),
        dispense("d4", 0.6, inst="H2", drug="MET"),
    ]
    found = same_alerts_in_every_order(RULE, events, config("sequence", **SAME_DRUG_ELSEWHERE))
    assert len(found) == 2


def test_a_late_a_event_pairs_with_a_b_event_held_before_it() -> None:
    events = [claim("c1", 2, visit_type="outpatient"), admission("a1", 1.5, stay="S1")]
    (alert,) = alerts(RULE, events, config("sequence", **ADMITTED_THEN_OUTPATIENT))
    assert alert.event_ids == ("a1", "c1")


def test_redelivery_changes_nothing() -> None:
    events = duplicated([dispense("d1", 0, inst="H1"), dispense("d2", 1, inst="H2")])
    assert len(alerts(RULE, events, config("sequence", **SAME_DRUG_ELSEWHERE))) == 1


def test_alert_ids_are_the_same_in_every_run() -> None:
    events = [dispense("d1", 0, inst="H1"), dispense("d2", 1, inst="H2")]
    settings = config("sequence", **SAME_DRUG_ELSEWHERE)
    assert alerts(RULE, events, settings)[0].alert_id == alerts(RULE, events, settings)[0].alert_id


def test_the_state_is_dropped_once_no_pair_can_form() -> None:
    det = detector(config("sequence", **SAME_DRUG_ELSEWHERE))
    for event in [dispense("d1", 0, inst="H1"), dispense("d2", 1, inst="H2")]:
        det.process(event)
    before = rule_size(det, RULE)
    det.process(dispense("x", 30 * DAY_H, patient_id="P2"))
    det.sweep()
    assert (before, rule_size(det, RULE, skip="P2")) == (4, 0)


def test_the_join_may_read_only_scalar_fields() -> None:
    settings = {
        **ADMITTED_THEN_OUTPATIENT,
        "join": "size(b.items) > 0",
    }
    with pytest.raises(ConfigError, match=r"custom_rules.custom_rule.join: .*b\.items"):
        config("sequence", **settings)


def test_a_join_that_is_not_a_bool_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"custom_rules.custom_rule.join: must be a bool"):
        config("sequence", **{**SAME_DRUG_ELSEWHERE, "join": "a.drug_code"})


def test_an_unknown_b_field_in_the_join_is_refused_with_the_names_there_are() -> None:
    settings = {**ADMITTED_THEN_OUTPATIENT, "join": "a.admission_id == b.admission_id"}
    with pytest.raises(ConfigError, match=r"undeclared reference to 'b.admission_id'"):
        config("sequence", **settings)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"filter_a": None}, "filter_a is required"),
        ({"within_hours": None}, "give exactly one of within_days and within_hours"),
        ({"within_days": 2}, "give exactly one of within_days and within_hours"),
        ({"window_days": 2}, "window_days has no meaning in the sequence template"),
        ({"filter": "true && true"}, "use filter_a and filter_b"),
        ({"event_types_b": ["visit"]}, "event_types_b: unknown event type 'visit'"),
    ],
)
def test_a_malformed_sequence_is_refused_naming_the_setting(
    change: dict[str, object], message: str
) -> None:
    settings = {k: v for k, v in {**ADMITTED_THEN_OUTPATIENT, **change}.items() if v is not None}
    with pytest.raises(ConfigError, match=message):
        config("sequence", **settings)


def test_a_window_template_refuses_the_pair_settings() -> None:
    with pytest.raises(ConfigError, match="join has no meaning in the duplicate template"):
        config(
            "duplicate",
            event_types=["dispense"],
            value="event.drug_code",
            window_days=3,
            join="true",
        )
