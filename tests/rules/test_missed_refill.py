"""missed_refill: a chronic supply that ended `grace_days` ago with no refill of its drug class:
a notice (info, no command) for the patient's doctor, made by an event-time timer."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest

from claimstream.detection.config import DetectionConfig
from claimstream.detection.detector import Detector
from claimstream.model.config import ConfigError
from claimstream.model.events import Event
from claimstream.model.outputs import Alert
from claimstream.testing import DAY_H, FIXED_NOW, detector, dispense, with_rule
from tests.rules._catalogue import rule_size

RULE = "missed_refill"
ON = with_rule(RULE, enabled="true")
AMLODIPINE = {"drug": "XC08CA01", "atc_code": "C08CA01"}  # antihypertensive (C08)
LOSARTAN = {"drug": "XC09CA01", "atc_code": "C09CA01"}  # antihypertensive (C09)
METFORMIN = {"drug": "XA10BA02", "atc_code": "A10BA02"}  # antidiabetic
#: a 30-day supply plus 90 days' grace
DUE_H = (30 + 90) * DAY_H
#: the default allowed lateness (1 h) and idle grace (24 h)
LATENESS_H, GRACE_H = 1.0, 24.0


def pills(event_id: str, hours: float, drug: dict[str, str] = AMLODIPINE, **fields: Any) -> Event:
    return dispense(event_id, hours, days=30, doctor_id="D7", **{**drug, **fields})


def acute(event_id: str, hours: float, **fields: Any) -> Event:
    """A dispensing that refills nothing and starts no timer: it only moves the watermark."""
    return dispense(event_id, hours, drug="AMOX", chronic=False, days=5, **fields)


def notices(events: list[Event], config: DetectionConfig = ON) -> list[Alert]:
    """The rule's alerts, the stream ended by a sweep (what a replay does at its end)."""
    det = detector(config)
    found: list[Alert] = []
    for event in events:
        step = det.process(event)
        assert step.rejection is None, step.rejection
        found += step.alerts
    found += det.finish().alerts
    return [a for a in found if a.rule == RULE]


def test_seed_case_a_patient_who_has_not_collected_his_antihypertensive() -> None:
    (notice,) = notices([pills("d1", 0), acute("x", DUE_H + 2)])
    assert notice.severity == "info"
    assert (notice.subject.kind, notice.subject.id) == ("patient", "P1")
    assert notice.event_ids == ("d1",)
    assert notice.doctor_id == "D7" and notice.details["notify_doctor_id"] == "D7"
    assert notice.details["group"] == "class:antihypertensive"
    assert notice.details["supply_ended_at"] == "2026-03-31T08:00:00+08:00"
    assert notice.occurred_at == notice.details["deadline"] == "2026-06-29T08:00:00+08:00"
    assert notice.amount is None
    assert "D7" in notice.message and "antihypertensive" in notice.message


def test_the_notice_issues_no_command() -> None:
    det = detector(ON)
    det.process(pills("d1", 0))
    step = det.process(acute("x", DUE_H + 2))
    assert [a.rule for a in step.alerts] == [RULE] and step.commands == []  # nothing else


def test_off_by_default() -> None:
    assert notices([pills("d1", 0), acute("x", DUE_H + 2)], DetectionConfig.default()) == []


@pytest.mark.parametrize(("refill", "notified"), [(DUE_H - 1 / 60, False), (DUE_H, True)])
def test_a_refill_before_the_end_of_supply_plus_90_days_prevents_the_notice(
    refill: float, notified: bool
) -> None:
    found = notices([pills("d1", 0), pills("d2", refill), acute("x", DUE_H + 2)])
    assert [a.event_ids for a in found] == ([("d1",)] if notified else [])


def mine(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if a.rule == RULE]


@pytest.mark.parametrize(("days", "due_days"), [(7, 97), (30, 120), (90, 180)])
def test_the_deadline_follows_the_days_supply(days: int, due_days: float) -> None:
    det = detector(ON)
    det.process(dispense("d1", 0, days=days, **AMLODIPINE))
    # the notice is made once the watermark less the lateness reaches the deadline
    assert mine(det.process(acute("x", due_days * DAY_H + LATENESS_H - 1 / 60)).alerts) == []
    (notice,) = mine(det.process(acute("y", due_days * DAY_H + LATENESS_H)).alerts)
    assert notice.event_ids == ("d1",)


@pytest.mark.parametrize(("grace", "due_days"), [(30.0, 60), (90.0, 120)])
def test_grace_days_is_a_setting(grace: float, due_days: float) -> None:
    config = DetectionConfig.default().with_rule_changes(
        RULE, {"enabled": "true", "grace_days": str(grace)}
    )
    det = detector(config)
    det.process(pills("d1", 0))
    assert mine(det.process(acute("x", due_days * DAY_H + LATENESS_H - 1 / 60)).alerts) == []
    assert len(mine(det.process(acute("y", due_days * DAY_H + LATENESS_H)).alerts)) == 1


def test_another_drug_of_the_same_class_is_a_refill() -> None:
    events = [pills("d1", 0), pills("d2", 28 * DAY_H, LOSARTAN)]
    found = notices([*events, acute("x", 28 * DAY_H + DUE_H + 2)])
    assert [a.event_ids for a in found] == [("d2",)]  # the losartan, not the amlodipine


def test_a_drug_of_another_class_is_no_refill() -> None:
    found = notices([pills("d1", 0), pills("m1", 28 * DAY_H, METFORMIN), acute("x", DUE_H + 2)])
    assert [a.event_ids for a in found] == [("d1",)]


def test_a_chronic_drug_of_no_refill_class_is_refilled_only_by_itself() -> None:
    insulin = {"drug": "INS", "atc_code": "A10AE04"}  # antidiabetic: a class
    other = {"drug": "XN03AX09", "atc_code": "N03AX09", "chronic": True}  # an antiepileptic
    found = notices(
        [
            pills("e1", 0, other),
            pills("e2", 20 * DAY_H, {"drug": "XN03AG01", "atc_code": "N03AG01"}),
            pills("i1", 20 * DAY_H + 1, insulin),
            acute("x", DUE_H + 2),
        ]
    )
    assert [(a.event_ids, a.details["group"]) for a in found] == [(("e1",), "drug:XN03AX09")]


def test_refill_classes_are_a_setting() -> None:
    config = DetectionConfig.default().with_rule_changes(
        RULE, {"enabled": "true", "refill_classes": "antidiabetic"}
    )
    events = [pills("d1", 0), pills("d2", 28 * DAY_H, LOSARTAN), acute("x", DUE_H + 2)]
    found = notices(events, config)  # the drug itself now: losartan refills no amlodipine
    assert [a.event_ids for a in found] == [("d1",)]


def test_a_non_chronic_dispensing_starts_no_timer_but_refills() -> None:
    not_chronic = {"drug": "XJ01CA04", "atc_code": "J01CA04", "chronic": False}
    assert notices([pills("a1", 0, not_chronic), acute("x", DUE_H + 2)]) == []
    unflagged = {"drug": "XC08CA01", "atc_code": "C08CA01", "chronic": False}
    found = notices([pills("d1", 0), pills("d2", 20 * DAY_H, unflagged), acute("x", DUE_H + 2)])
    assert found == []  # amlodipine is chronic by its class, whatever the flag says


def test_an_idle_patient_is_told_at_the_sweep_once_the_stream_has_passed_the_deadline() -> None:
    det = detector(ON)
    det.process(pills("d1", 0))
    det.process(acute("x", DUE_H + LATENESS_H + GRACE_H - 1 / 60, patient_id="P2"))
    assert det.sweep().alerts == []
    det.process(acute("y", DUE_H + LATENESS_H + GRACE_H + 48, patient_id="P2"))
    (notice,) = det.sweep().alerts
    assert (notice.rule, notice.subject.id, notice.event_ids) == (RULE, "P1", ("d1",))


def test_out_of_order_within_lateness_gives_the_same_notices() -> None:
    events = [pills("d1", 0), pills("d2", 0.3, LOSARTAN), pills("m1", 0.6, METFORMIN)]
    end = acute("x", DUE_H + 2)
    expected = sorted(a.alert_id for a in notices([*events, end]))
    assert len(expected) == 2  # the losartan (refilling the amlodipine) and the metformin
    for order in itertools.permutations(events):
        assert sorted(a.alert_id for a in notices([*order, end])) == expected


def test_a_refill_that_arrived_before_its_dispensing_resolves_it() -> None:
    found = notices([pills("d2", 0.5), pills("d1", 0), acute("x", 0.5 + DUE_H + 2)])
    assert [a.event_ids for a in found] == [("d2",)]


def test_redelivery_changes_nothing() -> None:
    events = [pills("d1", 0), pills("d1", 0), acute("x", DUE_H + 2), acute("x", DUE_H + 2)]
    assert len(notices(events)) == 1


def test_a_notice_is_made_once() -> None:
    det = detector(ON)
    found = det.process(pills("d1", 0)).alerts
    for i in range(3):
        found += det.process(acute(f"x{i}", DUE_H + 2 + i * 30)).alerts
    found += det.sweep().alerts + det.finish().alerts
    assert len([a for a in found if a.rule == RULE]) == 1


def _through_json(det: Detector) -> None:
    """As if the worker restarted: every key's state read back from its changelog, and a new
    engine built from the same configuration."""
    for key, state in det.states.items():
        det.states[key] = orjson.loads(orjson.dumps(state))
    det.engine = Detector(ON, clock=lambda: FIXED_NOW).engine


def test_a_timer_survives_a_restart_and_fires_on_the_patient_s_next_dispensing() -> None:
    (before,) = notices([pills("d1", 0), acute("x", DUE_H + 2)])
    det = detector(ON)
    det.process(pills("d1", 0))
    _through_json(det)
    (notice,) = mine(det.process(acute("x", DUE_H + 2)).alerts)
    assert notice.alert_id == before.alert_id


def test_a_timer_survives_a_restart_and_fires_at_the_sweep() -> None:
    det = detector(ON)
    det.process(pills("d1", 0))
    det.process(acute("x", DUE_H + LATENESS_H + GRACE_H + 48, patient_id="P2"))
    _through_json(det)
    assert [a.event_ids for a in mine(det.sweep().alerts)] == [("d1",)]


def test_a_refill_held_through_a_restart_still_resolves_a_late_dispensing() -> None:
    det = detector(ON)
    det.process(pills("d2", 0.5))
    _through_json(det)
    det.process(pills("d1", 0))
    found = mine(det.process(acute("x", 0.5 + DUE_H + 2)).alerts)
    assert [a.event_ids for a in found] == [("d2",)]


def test_a_refill_after_a_restart_resolves_the_timer_held_from_before() -> None:
    det = detector(ON)
    det.process(pills("d1", 0))
    _through_json(det)
    det.process(pills("d2", 25 * DAY_H))
    assert mine(det.process(acute("x", DUE_H + 2)).alerts) == []


def test_pending_timers_are_kept_and_everything_else_drains() -> None:
    det = detector(ON)
    for event in [pills("d1", 0), pills("d2", 0.2, LOSARTAN), acute("a", 0.4)]:
        det.process(event)
    det.process(acute("b", 50 * DAY_H))  # the lateness is long past: only the timer stays
    det.sweep()
    assert rule_size(det, RULE) == 2  # d2's timer (d2 refilled d1), b held for the lateness
    det.process(acute("x", DUE_H + LATENESS_H + GRACE_H + 48, patient_id="P2"))
    det.sweep()
    assert rule_size(det, RULE, skip="P2") == 0


@pytest.mark.parametrize(
    ("setting", "value"), [("grace_days", "0"), ("max_tracked_supply_days", "0")]
)
def test_an_impossible_setting_is_refused(setting: str, value: str) -> None:
    with pytest.raises(ConfigError, match=setting):
        with_rule(RULE, **{setting: value})


def test_the_notice_cites_the_regulation_without_an_article_and_the_guidance() -> None:
    (notice,) = notices([pills("d1", 0), acute("x", DUE_H + 2)])
    assert notice.legal_basis.startswith("《医疗保障基金使用监督管理条例》；")
    assert "家庭医生签约服务" in notice.legal_basis
    assert notice.behaviour == "慢病未按时取药"


@pytest.mark.parametrize(("after_days", "told"), [(365 + 90 - 0.01, False), (365 + 90, True)])
def test_a_supply_longer_than_max_tracked_supply_days_is_timed_from_that_cap(
    after_days: float, told: bool
) -> None:
    det = detector(ON)
    det.process(dispense("d1", 0, days=400, **AMLODIPINE))
    step = det.process(acute("x", after_days * DAY_H + LATENESS_H))
    assert bool(mine(step.alerts)) is told


def test_an_empty_text_clears_the_refill_classes() -> None:
    config = DetectionConfig.default().with_rule_changes(
        RULE, {"enabled": "true", "refill_classes": ""}
    )
    events = [pills("d1", 0), pills("d2", 28 * DAY_H, LOSARTAN), acute("x", DUE_H + 2)]
    assert [a.event_ids for a in notices(events, config)] == [("d1",)]
