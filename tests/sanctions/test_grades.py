"""Institution credit grades: the formula, and A -> B -> C -> D and back."""

from __future__ import annotations

from typing import Any

import pytest

from claimstream.model.outputs import Subject
from claimstream.sanctions import Escalation, GradeChange, Remediation
from claimstream.sanctions.grades import grade_of, score
from claimstream.sanctions.settings import GradeSettings
from tests.sanctions.support import alert, at, summaries, ts, verdict

SETTINGS = GradeSettings()


def row(severity: str = "high", amount: float = 0.0, status: str = "open", fixed: bool = False):
    return [0.0, severity, amount, "r", status, fixed]


@pytest.mark.parametrize(
    ("rows", "expected_score", "grade"),
    [
        ([], 100.0, "A"),
        ([row()] * 2, 90.0, "A"),
        ([row()] * 3, 85.0, "B"),
        ([row()] * 5, 75.0, "B"),
        ([row()] * 6, 70.0, "C"),
        ([row()] * 8, 60.0, "C"),
        ([row()] * 9, 55.0, "D"),
        ([row()] * 8 + [row(fixed=True)], 57.5, "D"),  # remediation halves a penalty
        ([row()] * 7 + [row(fixed=True)] * 2, 60.0, "C"),
        ([row()] * 9 + [row(status="false_positive")], 55.0, "D"),  # refuted: not counted
        ([row(status="confirmed")] * 3, 85.0, "B"),
        ([row("warning", amount=150_000)], 83.0, "B"),  # 2 + 15 per 10 000 * 15
        ([row("critical")] * 2, 60.0, "C"),
        ([row("info", amount=0)] * 50, 100.0, "A"),
        ([row("critical")] * 6, 0.0, "D"),  # never below zero
    ],
)
def test_the_formula(rows: list[Any], expected_score: float, grade: str) -> None:
    assert score(rows, SETTINGS) == expected_score
    assert grade_of(expected_score, SETTINGS) == grade


def grade_steps(decisions: list[Any]) -> list[tuple[Any, ...]]:
    return [s for s in summaries(decisions) if s[0] == "GRADE" or s[-1] == "credit_grade"]


def test_grades_move_down_to_d_and_back_up_with_remediation_reviews_and_time() -> None:
    engine = Escalation()
    state = engine.new_state(Subject("institution", "H1"))
    alerts = [alert(f"a{n}", 31 * n) for n in range(9)]  # a month apart: warnings only
    steps = []
    for n, target in enumerate(alerts):
        steps.append(grade_steps(engine.on_alert(state, target, ts(31 * n))))
    assert steps == [
        [],
        [],
        [("GRADE", "A", "B")],
        [],
        [],
        [("GRADE", "B", "C")],
        [],
        [],
        [("GRADE", "C", "D"), ("SUSPEND", "credit_grade")],
    ]
    assert engine.status(state, ts(248))["grade"] == {"grade": "D", "score": 55.0}

    def remediate(target: Any, day: float) -> list[Any]:
        action = Remediation(target.alert_id, "H1", "zhang.inspector", at(day))
        return grade_steps(engine.on_remediation(state, action, ts(day)))

    assert remediate(alerts[0], 250) == []  # 57.5: still D
    assert remediate(alerts[0], 251) == []  # the same remediation again: nothing
    assert remediate(alerts[1], 252) == [("GRADE", "D", "C")]  # 60
    fp = verdict(alerts[2], "false_positive", 253)
    assert grade_steps(engine.on_verdict(state, alerts[2], fp, ts(253))) == []  # 65: C
    assert engine.status(state, ts(253))["level"] == "suspended"  # D suspended; a person lifts

    # a year after the last violation everything has aged out, one letter at a time
    changes = [d for d in engine.tick(state, ts(248 + 366)) if isinstance(d, GradeChange)]
    assert [(c.old, c.new) for c in changes] == [("C", "B"), ("B", "A")]
    # each step is dated when the violation that crossed the bound left the 12 months
    # 65 (6 open, 2 remediated, 1 refuted); a0, a1 leave: 70; a3 leaves: 75, B
    assert changes[0].occurred_at == at(31 * 3 + 365)
    # a4, a5 leave: 85; a6 leaves: 90, A
    assert changes[1].occurred_at == at(31 * 6 + 365)


def test_a_grade_change_id_is_deterministic() -> None:
    def play() -> list[str]:
        engine = Escalation()
        state = engine.new_state(Subject("institution", "H1"))
        out = []
        for n in range(4):
            out += engine.on_alert(state, alert(f"a{n}", 40 * n), ts(40 * n))
        return [d.change_id for d in out if isinstance(d, GradeChange)]

    assert play() == play() and len(play()) == 1


def test_ageing_gives_the_same_grade_changes_however_often_time_is_advanced() -> None:
    def play(tick_every_days: int) -> list[dict[str, Any]]:
        engine = Escalation()
        state = engine.new_state(Subject("institution", "H1"))
        for n in range(9):
            engine.on_alert(state, alert(f"a{n}", 31 * n), ts(31 * n))
        out = []
        for day in [*range(249, 650, tick_every_days), 650]:
            out += [d.to_dict() for d in engine.tick(state, ts(day)) if isinstance(d, GradeChange)]
        return out

    daily = play(1)
    assert [(c["old"], c["new"]) for c in daily] == [("D", "C"), ("C", "B"), ("B", "A")]
    assert play(1) == play(17) == play(400)
