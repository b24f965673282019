"""doctor_not_registered: a doctor billing where he holds no valid registration, or suspended."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from claimstream.detection.config import DetectionConfig
from claimstream.reference.loader import ReferenceData
from claimstream.reference.suspensions import Suspensions
from claimstream.rules.base import RuleContext
from claimstream.rules.doctor_not_registered import DoctorNotRegistered
from claimstream.testing import SHANGHAI, consultation, dispense
from tests.rules._catalogue import (
    alerts,
    claim,
    duplicated,
    hours_until,
    same_alerts_in_every_order,
)
from tests.rules._credentials import config, registry

RULE = "doctor_not_registered"


@pytest.fixture
def cfg(tmp_path: Path) -> DetectionConfig:
    return config(tmp_path / "registry", RULE)


def local(*parts: int) -> float:
    """Hours after T0 of a local (Asia/Shanghai) wall-clock time."""
    return hours_until(datetime(*parts, tzinfo=SHANGHAI))  # type: ignore[misc]


def reasons(events: list, cfg: DetectionConfig) -> list[str]:
    return [a.details["reason"] for a in alerts(RULE, events, cfg)]


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        ((2026, 3, 2, 12, 0, 0), []),  # the day before expiry... is its last day: valid
        ((2026, 3, 2, 23, 59, 59), []),
        ((2026, 3, 3, 0, 0, 0), ["expired"]),  # local midnight: the day after
        ((2026, 3, 4, 9, 0, 0), ["expired"]),
    ],
)
def test_a_registration_is_valid_through_its_last_local_day(
    when: tuple[int, ...], expected: list[str], cfg: DetectionConfig
) -> None:
    assert reasons([dispense("d", local(*when), doctor_id="D1")], cfg) == expected


@pytest.mark.parametrize(
    ("when", "expected"),
    [((2026, 3, 4, 23, 59, 59), ["not_yet_valid"]), ((2026, 3, 5, 0, 0, 0), [])],
)
def test_a_registration_is_valid_from_its_first_local_day(
    when: tuple[int, ...], expected: list[str], cfg: DetectionConfig
) -> None:
    assert reasons([dispense("d", local(*when), doctor_id="D2")], cfg) == expected


def test_a_day_between_two_registrations_is_lapsed(cfg: DetectionConfig) -> None:
    assert reasons([dispense("d", local(2026, 3, 9, 10, 0, 0), doctor_id="D5")], cfg) == ["lapsed"]


def test_a_doctor_the_registry_does_not_list_is_unknown(cfg: DetectionConfig) -> None:
    (alert,) = alerts(RULE, [claim("c", 0, doctor_id="D9", total=321.5)], cfg)
    assert alert.details["reason"] == "unknown_doctor"
    assert (alert.subject.kind, alert.subject.id) == ("doctor", "D9")
    assert alert.amount == 321.5


def test_a_doctor_billing_at_an_institution_where_he_is_not_registered(
    cfg: DetectionConfig,
) -> None:
    assert reasons([consultation("c", 0, doctor_id="D2", institution_id="H2")], cfg) == [
        "not_registered_here"
    ]


def test_a_doctor_registered_at_two_institutions_bills_at_both(cfg: DetectionConfig) -> None:
    events = [dispense("d1", 0, doctor_id="D1"), dispense("d2", 0.5, inst="Y1", doctor_id="D1")]
    assert reasons(events, cfg) == []


@pytest.mark.parametrize(("doctor", "reason"), [("D3", "suspended"), ("D4", "revoked")])
def test_a_registration_that_is_not_active_does_not_allow_billing(
    doctor: str, reason: str, cfg: DetectionConfig
) -> None:
    assert reasons([dispense("d", 0, doctor_id=doctor)], cfg) == [reason]


def test_an_event_without_a_doctor_is_not_judged(cfg: DetectionConfig) -> None:
    assert reasons([dispense("d", 0)], cfg) == []


def test_it_is_off_by_default_against_the_packaged_illustrative_registry() -> None:
    assert alerts(RULE, [dispense("d", 0, doctor_id="D9")]) == []


def test_each_event_is_one_alert_whatever_the_order(cfg: DetectionConfig) -> None:
    events = [dispense(f"d{i}", i * 0.2, doctor_id="D9") for i in range(3)]
    assert len(same_alerts_in_every_order(RULE, events, cfg)) == 3


def test_a_redelivered_event_changes_nothing(cfg: DetectionConfig) -> None:
    assert len(alerts(RULE, duplicated([dispense("d", 0, doctor_id="D9")]), cfg)) == 1


# --- suspensions: the sanctions ladder's SUSPEND of a doctor, fed as data ----------------------


def suspend(doctor: str, effective_from: str, command_id: str = "cmd-s1") -> dict[str, object]:
    return {
        "command_id": command_id,
        "action": "SUSPEND",
        "scope": {"kind": "doctor", "id": doctor},
        "effective_from": effective_from,
        "expires_at": None,
    }


def unfreeze(doctor: str, effective_from: str) -> dict[str, object]:
    return {**suspend(doctor, effective_from, "cmd-u1"), "action": "UNFREEZE"}


def rule_with(tmp_path: Path, suspensions: Suspensions) -> DoctorNotRegistered:
    reference = ReferenceData.load(str(registry(tmp_path / "registry")))
    settings = DetectionConfig.default().rules[RULE].__class__(enabled=True)
    return DoctorNotRegistered(settings, RuleContext(SHANGHAI, reference, 3600.0, suspensions))


def test_a_suspended_doctors_next_claim_is_refused_though_his_registration_is_valid(
    tmp_path: Path,
) -> None:
    rule = rule_with(
        tmp_path, Suspensions.from_commands([suspend("D6", "2026-03-01T09:00:00+08:00")])
    )
    before = claim("c1", 0.5, doctor_id="D6")  # 08:30, before the suspension
    after = claim("c2", 1.5, doctor_id="D6", total=88.0)  # 09:30
    assert rule.on_event({}, before) == []
    (finding,) = rule.on_event({}, after)
    assert finding.details["reason"] == "billing_suspended"
    assert finding.details["suspension_command_id"] == "cmd-s1"
    assert finding.amount == 88.0


def test_an_unfreeze_lifts_the_suspension_from_its_moment(tmp_path: Path) -> None:
    commands = [
        suspend("D6", "2026-03-01T09:00:00+08:00"),
        unfreeze("D6", "2026-03-01T12:00:00+08:00"),
    ]
    rule = rule_with(tmp_path, Suspensions.from_commands(commands))
    assert len(rule.on_event({}, claim("c1", 3.5, doctor_id="D6"))) == 1  # 11:30
    assert rule.on_event({}, claim("c2", 4.5, doctor_id="D6")) == []  # 12:30


def test_an_unfreeze_does_not_lift_a_later_suspension(tmp_path: Path) -> None:
    commands = [
        unfreeze("D6", "2026-03-01T08:00:00+08:00"),
        suspend("D6", "2026-03-01T09:00:00+08:00"),
    ]
    rule = rule_with(tmp_path, Suspensions.from_commands(commands))
    assert len(rule.on_event({}, claim("c", 2, doctor_id="D6"))) == 1


def test_a_freeze_or_a_suspension_of_another_scope_suspends_no_doctor(tmp_path: Path) -> None:
    freeze = {**suspend("D6", "2026-03-01T08:00:00+08:00"), "action": "FREEZE"}
    patient = {
        **suspend("D6", "2026-03-01T08:00:00+08:00", "cmd-p"),
        "scope": {"kind": "patient", "id": "D6"},
    }
    rule = rule_with(tmp_path, Suspensions.from_commands([freeze, patient]))
    assert rule.on_event({}, claim("c", 2, doctor_id="D6")) == []


def test_suspensions_can_be_switched_off(tmp_path: Path) -> None:
    rule = rule_with(
        tmp_path, Suspensions.from_commands([suspend("D6", "2026-03-01T08:00:00+08:00")])
    )
    settings = rule.settings.__class__(enabled=True, check_suspension=False)
    quiet = DoctorNotRegistered(settings, rule.context)
    assert quiet.on_event({}, claim("c", 2, doctor_id="D6")) == []


def test_a_doctor_who_reaches_12_points_through_the_ladder_has_his_next_claim_refused() -> None:
    from claimstream.detection.detector import Detector
    from claimstream.model.outputs import Command, Subject
    from claimstream.sanctions import Escalation
    from tests.sanctions.support import alert, verdict
    from tests.sanctions.support import ts as day_ts

    ladder = Escalation()
    state = ladder.new_state(Subject("doctor", "D1"))
    commands = []
    for name, day, severity in (("a1", 1, "high"), ("a2", 2, "high"), ("a3", 3, "warning")):
        target = alert(name, day, severity=severity, doctor="D1")  # type: ignore[arg-type]
        decisions = ladder.on_verdict(state, target, verdict(target, "confirmed", day), day_ts(day))
        commands += [d.to_dict() for d in decisions if isinstance(d, Command)]
    assert [c["action"] for c in commands] == ["SUSPEND"]  # 5 + 5 + 2 = 12 points

    suspensions = Suspensions.from_commands(commands)
    config = DetectionConfig.default().with_rule_changes(
        RULE, {"enabled": "true", "check_registration": "false"}
    )
    det = Detector(config, clock=None, suspensions=suspensions)
    # the ladder's day 3 is 2026-03-05 08:00: hours 96 on the rules' timeline
    before = det.process(claim("c1", 95, doctor_id="D1"))
    after = det.process(claim("c2", 97, doctor_id="D1"))
    colleague = det.process(claim("c3", 97.5, doctor_id="D2"))
    assert [a.rule for a in before.alerts if a.rule == RULE] == []
    (refused,) = [a for a in after.alerts if a.rule == RULE]
    assert refused.details["reason"] == "billing_suspended"
    assert refused.details["suspension_command_id"] == commands[0]["command_id"]
    assert [a for a in colleague.alerts if a.rule == RULE] == []
