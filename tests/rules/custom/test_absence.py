"""absence: an A event not followed by a B event of the same key within a time, found once the
key's watermark (or, for an idle key, the stream's) has passed the deadline for good."""

from __future__ import annotations

import itertools

import orjson
import pytest

from claimstream.detection.config import DetectionConfig
from claimstream.detection.detector import Detector
from claimstream.model.events import Event
from claimstream.model.outputs import Alert
from claimstream.model.timefmt import HOUR, iso
from claimstream.testing import DAY_H, FIXED_NOW, T0, admission, detector, discharge, dispense
from tests.rules._catalogue import alerts, duplicated, rule_size
from tests.rules.custom._custom import RULE, config

#: a chronic dispensing not followed by a refill of the same drug within 90 days
MISSED_REFILL = {
    "key": "patient",
    "event_types": ["dispense"],
    "filter_a": "event.chronic",
    "filter_b": "true",
    "join": "a.drug_code == b.drug_code",
    "within_days": 90,
}
DEADLINE_H = 90 * DAY_H
#: the default allowed lateness (1 h) and idle grace (24 h)
LATENESS_H = 1.0
GRACE_H = 24.0


def other_drug(event_id: str, hours: float, **fields: object) -> Event:
    """A dispensing that refills nothing the tests hold and times nothing (not chronic)."""
    return dispense(event_id, hours, drug="AMOX", chronic=False, days=5, **fields)


def missed(events: list[Event], settings: DetectionConfig | None = None) -> list[Alert]:
    return alerts(RULE, events, settings or config("absence", **MISSED_REFILL))


@pytest.mark.parametrize(("refill", "alerted"), [(DEADLINE_H - 1 / 60, False), (DEADLINE_H, True)])
def test_a_refill_within_the_time_prevents_the_alert_and_one_exactly_that_late_does_not(
    refill: float, alerted: bool
) -> None:
    events = [dispense("d1", 0), dispense("d2", refill), other_drug("x", DEADLINE_H + 2)]
    assert [a.event_ids for a in missed(events)] == ([("d1",)] if alerted else [])


@pytest.mark.parametrize(
    ("later", "alerted"),
    [(DEADLINE_H + LATENESS_H - 1 / 60, False), (DEADLINE_H + LATENESS_H, True)],
)
def test_the_finding_is_made_once_the_key_s_watermark_less_the_lateness_reaches_the_deadline(
    later: float, alerted: bool
) -> None:
    # before that, a refill dated before the deadline could still arrive and be accepted
    assert bool(missed([dispense("d1", 0), other_drug("x", later)])) is alerted


def test_the_alert_names_the_a_event_and_is_dated_at_the_deadline() -> None:
    (alert,) = missed([dispense("d1", 0), other_drug("x", DEADLINE_H + 2)])
    deadline = T0.timestamp() + DEADLINE_H * HOUR
    assert alert.event_ids == ("d1",)
    assert alert.occurred_at == iso(deadline)
    assert (alert.details["template"], alert.details["deadline"]) == ("absence", iso(deadline))


def test_a_b_event_of_another_drug_does_not_count_as_the_refill() -> None:
    events = [dispense("d1", 0), dispense("d2", 30 * DAY_H, drug="MET", chronic=False)]
    assert [a.event_ids for a in missed([*events, other_drug("x", DEADLINE_H + 2)])] == [("d1",)]


def test_an_event_the_filter_a_refuses_starts_no_timer() -> None:
    assert missed([other_drug("d1", 0), other_drug("x", DEADLINE_H + 2)]) == []


def test_the_refill_is_itself_an_a_event_with_its_own_deadline() -> None:
    events = [dispense("d1", 0), dispense("d2", 30 * DAY_H)]
    assert missed([*events, other_drug("x", DEADLINE_H + 2)]) == []
    found = missed([*events, other_drug("x", 30 * DAY_H + DEADLINE_H + 2)])
    assert [a.event_ids for a in found] == [("d2",)]


def test_an_idle_key_is_found_by_the_sweep_once_the_stream_has_passed_the_deadline() -> None:
    det = detector(config("absence", **MISSED_REFILL))
    det.process(dispense("d1", 0))
    det.process(other_drug("x", DEADLINE_H + LATENESS_H + GRACE_H - 1 / 60, patient_id="P2"))
    assert det.sweep().alerts == []  # a lagging producer may still bring P1's refill
    det.process(other_drug("y", DEADLINE_H + LATENESS_H + GRACE_H + 48, patient_id="P2"))
    (alert,) = det.sweep().alerts
    assert (alert.subject.id, alert.event_ids) == ("P1", ("d1",))


def test_a_timer_is_found_once() -> None:
    det = detector(config("absence", **MISSED_REFILL))
    found = det.process(dispense("d1", 0)).alerts
    for i in range(3):
        found += det.process(other_drug(f"x{i}", DEADLINE_H + 2 + i)).alerts
    found += det.sweep().alerts + det.finish().alerts
    # only the absence rule's: the three AMOX dispensings an hour apart are repeat dispensings
    # at the same institution since repeat_dispensing.same_institution (default on)
    assert len([a for a in found if a.rule == RULE]) == 1


def test_the_end_of_a_replay_sweeps_the_timers_that_have_fallen_due() -> None:
    det = detector(config("absence", **MISSED_REFILL))
    det.process(dispense("d1", 0))
    det.process(other_drug("x", DEADLINE_H + LATENESS_H + GRACE_H + 48, patient_id="P2"))
    assert [a.event_ids for a in det.finish().alerts] == [("d1",)]


def test_out_of_order_within_lateness_gives_the_same_alerts() -> None:
    events = [
        dispense("d1", 0),
        dispense("d2", 0.3, drug="MET"),
        dispense("d3", 0.6),  # refills d1; its own timer fires
        other_drug("o", 0.9),
    ]
    later = other_drug("x", DEADLINE_H + 3)
    expected = sorted(a.alert_id for a in missed([*events, later]))
    assert len(expected) == 2  # d2 (no MET refill) and d3
    for order in itertools.permutations(events):
        assert sorted(a.alert_id for a in missed([*order, later])) == expected


def test_a_refill_that_arrived_before_its_a_event_resolves_it() -> None:
    events = [dispense("d2", 0.5), dispense("d1", 0), other_drug("x", 0.5 + DEADLINE_H + 2)]
    assert [a.event_ids for a in missed(events)] == [("d2",)]


def test_redelivery_changes_nothing() -> None:
    events = duplicated([dispense("d1", 0), dispense("d2", 1, drug="MET")])
    found = missed([*events, other_drug("x", DEADLINE_H + 3)])
    assert sorted(a.event_ids for a in found) == [("d1",), ("d2",)]


def _through_json(det: Detector) -> None:
    """As if the worker restarted: every key's state read back from its changelog."""
    for key, state in det.states.items():
        det.states[key] = orjson.loads(orjson.dumps(state))


def test_a_timer_survives_a_restart_and_fires_on_the_key_s_next_event() -> None:
    before = missed([dispense("d1", 0), other_drug("x", DEADLINE_H + 2)])
    det = detector(config("absence", **MISSED_REFILL))
    det.process(dispense("d1", 0))
    _through_json(det)
    det.engine = Detector(config("absence", **MISSED_REFILL), clock=lambda: FIXED_NOW).engine
    (alert,) = det.process(other_drug("x", DEADLINE_H + 2)).alerts
    assert alert.alert_id == before[0].alert_id


def test_a_timer_survives_a_restart_and_fires_at_the_sweep() -> None:
    det = detector(config("absence", **MISSED_REFILL))
    det.process(dispense("d1", 0))
    det.process(other_drug("x", DEADLINE_H + LATENESS_H + GRACE_H + 48, patient_id="P2"))
    _through_json(det)
    assert [a.event_ids for a in det.sweep().alerts] == [("d1",)]


def test_a_refill_held_through_a_restart_still_resolves_a_late_a_event() -> None:
    det = detector(config("absence", **MISSED_REFILL))
    det.process(dispense("d2", 0.5))
    _through_json(det)
    det.process(dispense("d1", 0))
    found = det.process(other_drug("x", 0.5 + DEADLINE_H + 2)).alerts
    assert [a.event_ids for a in found] == [("d2",)]


def test_the_state_is_empty_once_the_timers_have_fired() -> None:
    det = detector(config("absence", **MISSED_REFILL))
    for event in [dispense("d1", 0), dispense("d2", 5), dispense("d3", 6, drug="MET")]:
        det.process(event)
    assert rule_size(det, RULE) == 5  # two pending timers (d2, d3), three B events held
    det.process(other_drug("x", 6 + DEADLINE_H + LATENESS_H + GRACE_H + 48, patient_id="P2"))
    det.sweep()
    assert rule_size(det, RULE, skip="P2") == 0


def test_pending_timers_are_kept_until_they_fire_not_dropped_by_expiry() -> None:
    det = detector(config("absence", **MISSED_REFILL))
    det.process(dispense("d1", 0))
    det.process(other_drug("x", 50 * DAY_H))
    det.process(other_drug("y", 60 * DAY_H))
    det.sweep()  # expires the B events held but the last, not the timer
    assert rule_size(det, RULE) == 2
    assert [a.event_ids for a in det.process(other_drug("z", DEADLINE_H + 2)).alerts] == [("d1",)]


def test_a_shadow_rule_s_finding_is_a_shadow_alert() -> None:
    det = detector(config("absence", **MISSED_REFILL, mode="shadow"))
    det.process(dispense("d1", 0))
    result = det.process(other_drug("x", DEADLINE_H + 2))
    assert (result.alerts, [a.event_ids for a in result.shadow_alerts]) == ([], [("d1",)])


def test_the_message_expression_sees_the_deadline() -> None:
    settings = config("absence", **MISSED_REFILL, message='"due " + finding.deadline')
    (alert,) = missed([dispense("d1", 0), other_drug("x", DEADLINE_H + 2)], settings)
    assert alert.message == f"due {iso(T0.timestamp() + DEADLINE_H * HOUR)}"


def test_a_b_event_of_another_type_is_judged_by_filter_b_over_its_own_fields() -> None:
    settings = config(
        "absence",
        key="patient",
        event_types=["admission"],
        event_types_b=["discharge"],
        filter_a="true",
        filter_b='event.admission_id != ""',
        join="a.admission_id == b.admission_id",
        within_days=60,
    )
    events = [admission("a1", 0, stay="S1"), discharge("s1", 24, stay="S1")]
    late = admission("a2", 61 * DAY_H + 2, stay="S2")
    assert missed([*events, late], settings) == []
    events = [admission("a1", 0, stay="S1"), discharge("s1", 24, stay="S9")]
    assert [a.event_ids for a in missed([*events, late], settings)] == [("a1",)]
