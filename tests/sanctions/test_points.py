"""Doctor points: confirmed violations by severity, 12 in a calendar year suspend billing."""

from __future__ import annotations

from typing import Any

import pytest

from claimstream.model.outputs import Command, Subject
from claimstream.sanctions import Escalation, PointsSettings, SanctionSettings
from tests.sanctions.support import alert, summaries, ts, unfreeze, verdict

# (alert, day of the violation, severity, verdict, day of the verdict, decisions)
# day 0 is 2026-03-02; day 300 is 2026-12-27; day 310 is 2027-01-06.
YEAR = [
    ("a1", 0, "high", "confirmed", 1, [("POINTS", 5, 5)]),
    ("a2", 2, "warning", "confirmed", 3, [("POINTS", 2, 7)]),
    ("a1", 0, "high", "confirmed", 4, []),  # the same verdict again
    ("a3", 4, "info", "confirmed", 5, []),  # info is worth no points
    ("a4", 6, "high", "false_positive", 7, []),  # nothing to take back
    ("a5", 300, "high", "confirmed", 310, [("POINTS", 5, 12), ("SUSPEND", "doctor_points")]),
    ("a5", 300, "high", "false_positive", 311, [("POINTS", -5, 7)]),  # the suspension stays
    ("a6", 310, "high", "confirmed", 312, [("POINTS", 5, 5)]),  # 2027 starts from zero
    ("a7", 311, "high", "confirmed", 313, [("POINTS", 5, 10)]),
    ("a8", 312, "critical", "confirmed", 314, [("POINTS", 9, 19)]),  # suspended already
]


def test_points_walk_through_a_year_and_reset_in_the_next() -> None:
    engine = Escalation()
    state = engine.new_state(Subject("doctor", "D1"))
    for number, (name, day, severity, kind, verdict_day, expect) in enumerate(YEAR, start=1):
        target = alert(name, day, severity=severity)
        decisions = engine.on_verdict(state, target, verdict(target, kind, verdict_day), ts(day))
        assert summaries(decisions) == expect, f"row {number}"
    assert engine.status(state, ts(314))["points"] == {"2026": 7, "2027": 19}
    assert engine.status(state, ts(314))["level"] == "suspended"


def test_a_lifted_doctor_is_suspended_again_at_12_points_in_the_next_year() -> None:
    engine = Escalation()
    state = engine.new_state(Subject("doctor", "D1"))

    def confirm(name: str, day: float, severity: str = "high") -> list[Any]:
        target = alert(name, day, severity=severity)
        return summaries(
            engine.on_verdict(state, target, verdict(target, "confirmed", day), ts(day))
        )

    for name, day in (("a1", 1), ("a2", 2)):
        confirm(name, day)
    assert confirm("a3", 3, "warning")[-1] == ("SUSPEND", "doctor_points")
    engine.on_unfreeze(state, unfreeze("doctor", "D1", 10, ground="reviewer"), ts(10))
    assert confirm("a4", 320) == [("POINTS", 5, 5)]  # 2027
    assert confirm("a5", 321) == [("POINTS", 5, 10)]
    assert confirm("a6", 322, "warning") == [("POINTS", 2, 12), ("SUSPEND", "doctor_points")]


def test_the_suspension_names_the_doctor_scope_and_the_evidence() -> None:
    engine = Escalation()
    state = engine.new_state(Subject("doctor", "D1"))
    targets = [alert(f"a{n}", n, severity="critical") for n in range(2)]
    decisions = [
        d
        for target in targets
        for d in engine.on_verdict(state, target, verdict(target, "confirmed", 5), ts(5))
    ]
    (suspend,) = [d for d in decisions if isinstance(d, Command)]
    assert suspend.scope.key() == "doctor:D1" and suspend.expires_at is None
    assert sorted(suspend.alert_ids) == sorted(t.alert_id for t in targets)
    assert "18 doctor points in 2026" in suspend.reason


def test_points_go_only_to_the_doctor_named_on_the_alert() -> None:
    engine = Escalation()
    state = engine.new_state(Subject("doctor", "D2"))
    target = alert("a1", 0)  # names doctor D1
    assert engine.on_verdict(state, target, verdict(target, "confirmed", 1), ts(1)) == []


def test_years_before_the_previous_one_are_forgotten() -> None:
    engine = Escalation()
    state = engine.new_state(Subject("doctor", "D1"))
    target = alert("a1", 0)
    engine.on_verdict(state, target, verdict(target, "confirmed", 1), ts(1))
    engine.tick(state, ts(669))  # 2027-12-31: 2026 is the previous year
    assert "2026" in state["p"]
    engine.tick(state, ts(670))  # 2028-01-01: two years back
    assert state["p"] == {}


@pytest.mark.parametrize(("high", "suspend_at", "suspended"), [(4, 20, True), (3, 20, False)])
def test_points_are_configuration(high: int, suspend_at: int, suspended: bool) -> None:
    settings = SanctionSettings(points=PointsSettings(high=high * 2, suspend_at=suspend_at))
    engine = Escalation(settings)
    state = engine.new_state(Subject("doctor", "D1"))
    out = []
    for n in range(3):
        target = alert(f"a{n}", n)
        out += summaries(engine.on_verdict(state, target, verdict(target, "confirmed", n), ts(n)))
    assert (("SUSPEND", "doctor_points") in out) is suspended
