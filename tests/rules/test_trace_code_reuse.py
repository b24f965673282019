"""trace_code_reuse: the same drug traceability code settled twice within 730 days, by any
patient or institution: a high alert naming both settlements, a FREEZE of the second
institution until the end of its local day."""

from __future__ import annotations

from typing import Any

import pytest

from claimstream.model.events import Event
from claimstream.testing import DAY_H, detector, dispense, run, with_rule
from tests.rules._catalogue import (
    alert_ids,
    alerts,
    commands,
    duplicated,
    rule_size,
    same_alerts_in_every_order,
)

RULE = "trace_code_reuse"
RETENTION_H = 730 * DAY_H


def sold(event_id: str, hours: float, codes: list[str], inst: str, **fields: Any) -> Event:
    fields.setdefault("patient_id", f"P-{event_id}")
    return dispense(event_id, hours, inst=inst, trace_codes=codes, **fields)


def resold(gap_hours: float, *, second_inst: str = "PH2") -> list[Event]:
    return [
        sold("first", 0, ["81234567890123456789"], "H1"),
        sold("second", gap_hours, ["81234567890123456789"], second_inst),
    ]


@pytest.mark.parametrize(
    ("gap_hours", "alerted"),
    [
        (0.0, True),
        (3.0, True),
        (RETENTION_H - 1 / 60, True),
        (RETENTION_H, False),
        (RETENTION_H + 1, False),
    ],
)
def test_a_code_settled_again_less_than_730_days_later_alerts(
    gap_hours: float, alerted: bool
) -> None:
    assert bool(alerts(RULE, resold(gap_hours))) is alerted


@pytest.mark.parametrize(("gap_days", "alerted"), [(29.9, True), (30.0, False)])
def test_retention_days_is_a_setting(gap_days: float, alerted: bool) -> None:
    config = with_rule(RULE, retention_days="30")
    assert bool(alerts(RULE, resold(gap_days * DAY_H), config)) is alerted


def test_the_alert_names_both_settlements_and_is_about_the_second_institution() -> None:
    (alert,) = alerts(RULE, resold(50))
    assert alert.severity == "high"
    assert (alert.subject.kind, alert.subject.id) == ("institution", "PH2")
    assert alert.event_ids == ("first", "second")
    assert (alert.patient_id, alert.institution_id) == ("P-second", "PH2")
    assert alert.occurred_at == "2026-03-03T10:00:00+08:00"
    first, second = alert.details["first"], alert.details["second"]
    assert (first["event_id"], first["institution_id"]) == ("first", "H1")
    assert (second["event_id"], second["institution_id"]) == ("second", "PH2")
    assert first["occurred_at"] == "2026-03-01T08:00:00+08:00"
    assert second["occurred_at"] == "2026-03-03T10:00:00+08:00"
    assert alert.details["trace_code"] == "81234567890123456789"
    assert "H1" in alert.message and "PH2" in alert.message and "first" in alert.message


def test_freezes_the_second_institution_until_the_end_of_its_local_day() -> None:
    (command,) = commands(RULE, resold(50))
    assert command.action == "FREEZE"
    assert (command.scope.kind, command.scope.id, command.scope.drug_code) == (
        "institution",
        "PH2",
        None,
    )
    assert command.effective_from == "2026-03-03T10:00:00+08:00"
    assert command.expires_at == "2026-03-04T00:00:00+08:00"


def test_no_command_when_commands_are_off() -> None:
    assert commands(RULE, resold(50), with_rule(RULE, issue_commands="false")) == []


def test_the_same_institution_settling_a_code_twice_alerts_too() -> None:
    (alert,) = alerts(RULE, resold(5, second_inst="H1"))
    assert alert.subject.id == "H1"


def test_codes_settled_once_each_do_not_alert() -> None:
    events = [sold(f"e{i}", i, [f"CODE{i}", f"CODE{i}X"], f"H{i}") for i in range(5)]
    assert alerts(RULE, events) == []


def test_a_dispensing_without_trace_codes_is_not_keyed_by_any() -> None:
    det = detector()
    det.process(dispense("e1", 0))
    assert not [key for key in det.states if key[0] == "trace_code"]


def test_a_redelivered_dispensing_is_not_a_reuse_of_its_own_code() -> None:
    events = [sold("e1", 0, ["C1", "C2"], "H1"), sold("e2", 1, ["C3"], "H2")]
    assert alerts(RULE, duplicated(events)) == []


def test_a_redelivered_reuse_alerts_once() -> None:
    assert len(alerts(RULE, duplicated(resold(10)))) == 1


def test_out_of_order_within_lateness_gives_the_same_alert() -> None:
    """The "second" settlement is the later in event time, whichever arrives first."""
    events = resold(0.5)
    (alert,) = alerts(RULE, list(reversed(events)))
    assert alert.event_ids == ("first", "second") and alert.subject.id == "PH2"
    assert same_alerts_in_every_order(RULE, events) == alert_ids(RULE, events)


def test_one_alert_per_code_per_episode() -> None:
    code = ["C-REUSED"]
    events = [
        sold("a", 0, code, "H1"),
        sold("b", 24, code, "H2"),
        sold("c", 48, code, "H3"),  # the same episode: the alert on b stands for it
        sold("d", 24 + RETENTION_H - 1, code, "H4"),  # still within b's episode
    ]
    assert [a.event_ids for a in alerts(RULE, events)] == [("a", "b")]


def test_a_reuse_once_the_episode_is_over_is_a_new_alert() -> None:
    code = ["C-REUSED"]
    events = [
        sold("a", 0, code, "H1"),
        sold("b", 24, code, "H2"),
        sold("c", 24 + RETENTION_H - 48, code, "H3"),
        sold("d", 24 + RETENTION_H, code, "H4"),  # b's episode is over; c is 2 days before
    ]
    assert [a.event_ids for a in alerts(RULE, events)] == [("a", "b"), ("c", "d")]


def test_a_dispensing_reusing_two_codes_gives_one_alert_and_freeze_per_code() -> None:
    events = [sold("a", 0, ["C1", "C2", "C3"], "H1"), sold("b", 5, ["C3", "C1", "C9"], "H2")]
    found = alerts(RULE, events)
    assert sorted(a.details["trace_code"] for a in found) == ["C1", "C3"]
    assert len({a.alert_id for a in found}) == 2
    assert len(commands(RULE, events)) == 2


def test_alert_ids_are_the_same_on_every_run() -> None:
    assert alert_ids(RULE, resold(7)) == alert_ids(RULE, resold(7))


def test_state_is_kept_for_the_retention_then_dropped() -> None:
    det = detector()
    for ev in resold(1):
        det.process(ev)
    assert rule_size(det, RULE) == 2
    # past the retention, the allowed lateness and the idle keys' grace (24 h)
    det.process(sold("later", RETENTION_H + 2 * DAY_H, ["OTHER"], "H9"))
    det.sweep()
    assert rule_size(det, RULE, skip="OTHER") == 0
    assert [key for key in det.states if key == ("trace_code", "81234567890123456789")] == []


def test_a_sweep_within_the_retention_keeps_the_code() -> None:
    det = detector()
    det.process(sold("first", 0, ["KEPT"], "H1"))
    det.process(sold("elsewhere", RETENTION_H - 3 * DAY_H, ["OTHER"], "H9"))
    det.sweep()
    found = det.process(sold("second", RETENTION_H - 2 * DAY_H, ["KEPT"], "H2")).alerts
    assert [a.event_ids for a in found if a.rule == RULE] == [("first", "second")]


def test_it_is_keyed_by_trace_code_and_reads_dispensings_only() -> None:
    from claimstream.rules import RULES

    rule = RULES[RULE]
    assert (rule.key_kind, set(rule.event_types)) == ("trace_code", {"dispense"})
    settings = rule.Settings()
    assert (settings.enabled, settings.mode, settings.issue_commands) == (True, "enforce", True)


def test_the_sanctions_ladder_counts_the_rules_freeze_instead_of_doubling_it() -> None:
    from claimstream.model.outputs import Subject
    from claimstream.sanctions.ladder import Escalation

    result = run(resold(50))
    (alert,) = [a for a in result.alerts if a.rule == RULE]
    (freeze,) = [c for c in result.commands if c.rule == RULE]
    engine = Escalation()
    state = engine.new_state(Subject("institution", "PH2"))
    assert engine.on_alert(state, alert, alert_ts(alert)) == []
    assert list(state["f"]) == [freeze.command_id]


def alert_ts(alert: Any) -> float:
    from datetime import datetime

    return datetime.fromisoformat(alert.occurred_at).timestamp()
