"""The escalation ladder: warning -> freeze -> suspend, and back down by expiry and appeal."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from claimstream.model.outputs import Command, Scope, Subject, stable_id
from claimstream.sanctions import (
    CaseDecision,
    Escalation,
    FreezeLedger,
    LadderSettings,
    SanctionSettings,
)
from tests.sanctions.support import alert, at, summaries, ts, unfreeze, verdict


@dataclass
class Step:
    """One input to the subject at event time `day`, and what it must decide."""

    day: float
    op: str  # "alert NAME", "redeliver NAME", "tick", "appeal", "reviewer"
    expect: list[tuple[Any, ...]]
    level: str


WALK = [
    Step(0, "alert a1", [("WARN",)], "warned"),
    Step(10, "alert a2", [("FREEZE", "escalation")], "frozen"),
    Step(10.5, "tick", [], "frozen"),  # 20:00 the same day: still frozen
    Step(11, "tick", [("UNFREEZE", "escalation")], "warned"),  # expired at local midnight
    Step(20, "alert a3", [("FREEZE", "escalation")], "frozen"),
    Step(21, "tick", [("UNFREEZE", "escalation")], "warned"),
    Step(25, "alert a4", [("FREEZE", "escalation"), ("SUSPEND", "escalation")], "suspended"),
    Step(26, "tick", [], "suspended"),  # the freeze expires, the suspension holds the scope
    Step(27, "alert a5", [], "suspended"),  # suspended: nothing more to decide
    Step(27, "redeliver a2", [], "suspended"),  # the same alert again changes nothing
    Step(30, "appeal", [("UNFREEZE", "manual")], "warned"),  # only a person lifts it
    Step(30, "appeal", [], "warned"),  # the same action again changes nothing
    Step(35, "alert a6", [("FREEZE", "escalation")], "frozen"),  # counts restart after a lift
    Step(36, "tick", [("UNFREEZE", "escalation")], "warned"),
    Step(200, "alert a7", [("WARN",)], "warned"),  # everything before aged out: first again
    Step(300, "tick", [], "clear"),
]

SUBJECTS = [Subject("patient", "P1"), Subject("doctor", "D1"), Subject("institution", "H1")]


def feed(engine: Escalation, state: dict[str, Any], name: str, day: float, **kw: Any) -> list[Any]:
    """Advance the subject to `day` (expiries happen), then give it the alert; only the
    alert's own ladder decisions are returned (grades have their own tests)."""
    engine.tick(state, ts(day))
    out = summaries(engine.on_alert(state, alert(name, day, **kw), ts(day)))
    return [s for s in out if s[0] != "GRADE"]


def apply(engine: Escalation, state: dict[str, Any], step: Step) -> list[Any]:
    now = ts(step.day)
    if step.op.startswith("alert"):
        return engine.on_alert(state, alert(step.op.split()[1], step.day), now)
    if step.op.startswith("redeliver"):
        name = step.op.split()[1]
        (first,) = [s.day for s in WALK if s.op == f"alert {name}"]
        return engine.on_alert(state, alert(name, first), now)
    if step.op in ("appeal", "reviewer"):
        action = unfreeze(state["kind"], state["id"], step.day, ground=step.op)
        return engine.on_unfreeze(state, action, now)
    return engine.tick(state, now)


@pytest.mark.parametrize("subject", SUBJECTS, ids=lambda s: s.kind)
def test_walk_up_the_ladder_and_back_down(subject: Subject) -> None:
    engine = Escalation()
    state = engine.new_state(subject)
    ledger = FreezeLedger()
    for number, step in enumerate(WALK, start=1):
        decisions = [d for d in apply(engine, state, step) if summaries([d])[0][0] != "GRADE"]
        assert summaries(decisions) == step.expect, f"step {number}: {step.op} on day {step.day}"
        now = ts(step.day)
        standing = engine.status(state, now)
        assert standing["level"] == step.level, f"step {number}"
        for decision in decisions:
            if isinstance(decision, Command):
                assert decision.scope == Scope(subject.kind, subject.id)
                ledger.apply(decision)
        # the commands alone (the topic, so the registry) say the same as the ladder
        blocked = bool(ledger.lookup(Scope(subject.kind, subject.id), now))
        assert blocked is (step.level in ("frozen", "suspended")), f"step {number}"


def test_a_ladder_freeze_lasts_until_the_end_of_the_local_day() -> None:
    engine = Escalation()
    state = engine.new_state(Subject("patient", "P1"))
    engine.on_alert(state, alert("a1", 0), ts(0))
    (freeze,) = engine.on_alert(state, alert("a2", 10), ts(10))
    assert isinstance(freeze, Command)
    assert freeze.effective_from == "2026-03-12T08:00:00+08:00"
    assert freeze.expires_at == "2026-03-13T00:00:00+08:00"
    assert freeze.alert_ids == (alert("a1", 0).alert_id, alert("a2", 10).alert_id)


@pytest.mark.parametrize(
    ("gap_days", "second"),
    [(29.9, "FREEZE"), (30.0, "FREEZE"), (30.01, "WARN"), (89, "WARN")],
)
def test_a_repeat_is_another_violation_within_30_days(gap_days: float, second: str) -> None:
    engine = Escalation()
    state = engine.new_state(Subject("patient", "P1"))
    engine.on_alert(state, alert("a1", 0), ts(0))
    decisions = engine.on_alert(state, alert("a2", gap_days), ts(gap_days))
    assert [s[0] for s in summaries(decisions)] == [second]


def test_a_repeat_found_in_either_arrival_order_freezes_once() -> None:
    engine = Escalation()
    first, second = alert("a1", 0), alert("a2", 0.3)  # 08:00 and 15:12 the same day
    for order in ([first, second], [second, first]):
        state = engine.new_state(Subject("patient", "P1"))
        out = [summaries(engine.on_alert(state, a, ts(0.3))) for a in order]
        assert out == [[("WARN",)], [("FREEZE", "escalation")]]


def test_a_repeat_reported_after_its_day_ended_warns_instead_of_freezing() -> None:
    engine = Escalation()
    state = engine.new_state(Subject("patient", "P1"))
    engine.on_alert(state, alert("a1", 0), ts(0))
    decisions = engine.on_alert(state, alert("a2", 1), ts(3))  # the stream is 2 days further
    assert summaries(decisions) == [("WARN",)]
    assert "after its day ended" in decisions[0].reason  # type: ignore[union-attr]


def test_a_second_repeat_the_same_day_does_not_freeze_twice() -> None:
    engine = Escalation()
    state = engine.new_state(Subject("patient", "P1"))
    for name, day in (("a1", 0), ("a2", 5)):
        engine.on_alert(state, alert(name, day), ts(day))
    assert engine.on_alert(state, alert("a3", 5.1), ts(5.1)) == []


@pytest.mark.parametrize(
    ("severity", "expect"),
    [("critical", [("SUSPEND", "escalation")]), ("high", [("WARN",)]), ("info", [])],
)
def test_severity_decides_the_first_rung(severity: str, expect: list[tuple[str, ...]]) -> None:
    engine = Escalation()
    state = engine.new_state(Subject("patient", "P1"))
    assert summaries(engine.on_alert(state, alert("a1", 0, severity=severity), ts(0))) == expect


@pytest.mark.parametrize(("second", "suspended"), [(40_000.0, False), (40_000.01, True)])
def test_suspicious_amount_over_the_threshold_in_90_days_suspends(
    second: float, suspended: bool
) -> None:
    engine = Escalation()
    state = engine.new_state(Subject("patient", "P1"))
    engine.on_alert(state, alert("a1", 0, amount=60_000), ts(0))
    decisions = engine.on_alert(state, alert("a2", 60, amount=second), ts(60))
    assert (("SUSPEND", "escalation") in summaries(decisions)) is suspended


def test_amounts_older_than_90_days_do_not_count() -> None:
    engine = Escalation()
    state = engine.new_state(Subject("patient", "P1"))
    engine.on_alert(state, alert("a1", 0, amount=60_000), ts(0))
    decisions = engine.on_alert(state, alert("a2", 91, amount=60_000), ts(91))
    assert summaries(decisions) == [("WARN",)]


def test_immediate_rules_keep_their_own_freeze_and_it_counts() -> None:
    """readmission_24h froze the institution already: the ladder does not double it, but the
    freeze counts towards the three that suspend."""
    engine = Escalation()
    state = engine.new_state(Subject("institution", "H1"))
    feed(engine, state, "a1", 0)
    assert feed(engine, state, "a2", 5) == [("FREEZE", "escalation")]
    assert feed(engine, state, "r1", 10, rule="readmission_24h") == []
    assert engine.status(state, ts(10))["level"] == "frozen"
    third = feed(engine, state, "a3", 15)
    assert third == [("FREEZE", "escalation"), ("SUSPEND", "escalation")]


def test_the_immediate_rule_freeze_is_recorded_under_the_rules_own_command_id() -> None:
    from claimstream.testing import admission, discharge, run

    result = run(
        [
            admission("x1", 0, stay="S1", inst="H1"),
            discharge("x2", 48, stay="S1", inst="H1"),
            admission("x3", 50, stay="S2", inst="H2"),
        ]
    )
    (readmission,) = [a for a in result.alerts if a.rule == "readmission_24h"]
    (rule_freeze,) = [c for c in result.commands if c.rule == "readmission_24h"]
    engine = Escalation()
    state = engine.new_state(Subject("institution", "H2"))
    engine.on_alert(state, readmission, ts(3))
    assert list(state["f"]) == [rule_freeze.command_id]


def test_a_patient_of_an_immediate_rule_still_climbs_the_ladder() -> None:
    engine = Escalation()
    state = engine.new_state(Subject("patient", "P1"))
    engine.on_alert(state, alert("r1", 0, rule="readmission_24h"), ts(0))
    decisions = engine.on_alert(state, alert("r2", 4, rule="readmission_24h"), ts(4))
    assert summaries(decisions) == [("FREEZE", "escalation")]


def test_a_freeze_lifted_on_appeal_no_longer_counts() -> None:
    engine = Escalation()
    state = engine.new_state(Subject("patient", "P1"))
    feed(engine, state, "a1", 0)
    assert feed(engine, state, "a2", 5) == [("FREEZE", "escalation")]
    engine.on_unfreeze(state, unfreeze("patient", "P1", 5.2), ts(5.2))  # appeal upheld
    assert feed(engine, state, "a3", 10) == [("FREEZE", "escalation")]
    # the appealed freeze was void: two count, no suspension
    assert feed(engine, state, "a4", 15) == [("FREEZE", "escalation")]


def test_a_false_positive_does_not_make_a_later_alert_a_repeat() -> None:
    engine = Escalation()
    state = engine.new_state(Subject("patient", "P1"))
    first = alert("a1", 0)
    engine.on_alert(state, first, ts(0))
    engine.on_verdict(state, first, verdict(first, "false_positive", 1), ts(1))
    assert summaries(engine.on_alert(state, alert("a2", 5), ts(5))) == [("WARN",)]


def test_unfreezing_one_drug_leaves_the_subject_alone() -> None:
    engine = Escalation()
    state = engine.new_state(Subject("patient", "P1"))
    engine.on_alert(state, alert("a1", 0, severity="critical"), ts(0))
    action = unfreeze("patient", "P1", 1)
    drug_only = type(action)(Scope("patient", "P1", "INS"), "x", "y", action.at)
    (command,) = engine.on_unfreeze(state, drug_only, ts(1))
    assert command.scope.key() == "patient:P1:INS"  # type: ignore[union-attr]
    assert engine.status(state, ts(1))["level"] == "suspended"


def test_decisions_and_ids_are_the_same_on_a_replay() -> None:
    def play() -> list[dict[str, Any]]:
        engine = Escalation()
        state = engine.new_state(Subject("patient", "P1"))
        out = []
        for step in WALK:
            out += [d.to_dict() for d in apply(engine, state, step)]
        return out

    first = play()
    assert first == play()
    assert len({d.get("command_id") or d.get("warning_id") for d in first}) == len(first)


def test_the_same_alert_twice_changes_nothing() -> None:
    engine = Escalation()
    state = engine.new_state(Subject("institution", "H1"))
    for name, day in (("a1", 0), ("a2", 3)):
        engine.on_alert(state, alert(name, day), ts(day))
    before = copy.deepcopy(state)
    assert engine.on_alert(state, alert("a2", 3), ts(3)) == []
    assert state == before


@pytest.mark.parametrize(("subject", "kept_days"), [(SUBJECTS[0], 90), (SUBJECTS[2], 365)])
def test_the_state_is_json_and_stays_bounded_on_a_long_stream(
    subject: Subject, kept_days: int
) -> None:
    engine = Escalation()
    state = engine.new_state(subject)
    sizes = []
    for day in range(3 * 365):  # a violation every day for three years
        engine.on_alert(state, alert(f"a{day}", day, severity="warning"), ts(day))
        if day % 50 == 49:
            engine.on_unfreeze(state, unfreeze(subject.kind, subject.id, day), ts(day))
        state = orjson.loads(orjson.dumps(state))  # what the changelog stores
        sizes.append((len(state["a"]), len(state["f"]) + len(state["m"])))
    assert max(a for a, _ in sizes) == kept_days  # alerts: the ladder's or the grade's horizon
    assert max(other for _, other in sizes) <= 90 + 1  # freezes: 90 days; actions: 30 days


def test_the_ladder_is_configuration() -> None:
    settings = SanctionSettings(ladder=LadderSettings(repeat_window_days=7, kinds=("patient",)))
    engine = Escalation(settings)
    state = engine.new_state(Subject("patient", "P1"))
    engine.on_alert(state, alert("a1", 0), ts(0))
    assert summaries(engine.on_alert(state, alert("a2", 8), ts(8))) == [("WARN",)]
    assert engine.subjects(alert("a3", 9)) == [Subject("patient", "P1")]


def test_an_alert_counts_against_each_subject_it_names() -> None:
    a = alert("a1", 0, patient="P9", institution="H9", doctor="D9")
    assert [f"{s.kind}:{s.id}" for s in Escalation().subjects(a)] == [
        "institution:H9",
        "doctor:D9",
        "patient:P9",
    ]


@pytest.mark.parametrize(("gap_days", "first"), [(45, False), (91, True)])
def test_first_violation_is_judged_over_the_look_back_period(gap_days: int, first: bool) -> None:
    engine = Escalation()
    state = engine.new_state(Subject("institution", "H1"))  # keeps alerts 12 months
    engine.on_alert(state, alert("a1", 0), ts(0))
    (warning,) = [
        d
        for d in engine.on_alert(state, alert("a2", gap_days), ts(gap_days))
        if summaries([d]) == [("WARN",)]
    ]
    assert warning.reason.startswith("first violation in 90 days") is first  # type: ignore[union-attr]


def test_an_expiry_unfreeze_arriving_after_the_next_rule_freeze_does_not_lift_it() -> None:
    """The rule's FREEZE of day 6 reaches the commands topic before the escalation, catching
    up, emits the UNFREEZE for day 5's freeze: the topic must still say frozen on day 6."""
    engine = Escalation()
    state = engine.new_state(Subject("institution", "H1"))
    ledger = FreezeLedger()
    for name, day in (("a1", 0), ("a2", 5)):
        for decision in engine.on_alert(state, alert(name, day), ts(day)):
            if isinstance(decision, Command):
                ledger.apply(decision)
    readmission = alert("r1", 6, rule="readmission_24h")
    scope = Scope("institution", "H1")
    rule_freeze = Command(
        command_id=stable_id("cmd", "FREEZE", scope.key(), readmission.alert_id),
        action="FREEZE",
        scope=scope,
        effective_from=readmission.occurred_at,
        expires_at="2026-03-09T00:00:00+08:00",
        reason="readmission",
        rule="readmission_24h",
        alert_ids=(readmission.alert_id,),
    )
    assert ledger.apply(rule_freeze) == "applied"
    late = engine.on_alert(state, readmission, ts(6))
    assert summaries([d for d in late if isinstance(d, Command)]) == [("UNFREEZE", "escalation")]
    for decision in late:
        if isinstance(decision, Command):
            ledger.apply(decision)
    assert ledger.lookup(scope, ts(6)) == [rule_freeze]
    assert engine.status(state, ts(6))["level"] == "frozen"


# -- case decisions ---------------------------------------------------------------------------


def decided(
    outcome: str, nature: str | None, day: float, *, case: str = "c1", named: tuple[str, ...] = ()
) -> CaseDecision:
    return CaseDecision(case, outcome, nature, "wang.fang", at(day), named)  # type: ignore[arg-type]


def warned_once(engine: Escalation) -> dict[str, Any]:
    """An institution with one violation (a warning) on day 0, its alert `a1`."""
    state = engine.new_state(Subject("institution", "H1"))
    feed(engine, state, "a1", 0)
    return state


CASE_TABLE = [
    # (outcome, nature, the subject's decisions, its level after)
    ("confirmed", "intentional_fraud", [("FREEZE", "case_decision")], "frozen"),
    ("partly_confirmed", "intentional_fraud", [("FREEZE", "case_decision")], "frozen"),
    ("confirmed", "operational_error", [("WARN",)], "warned"),
    ("partly_confirmed", "operational_error", [("WARN",)], "warned"),
    ("not_confirmed", None, [], "warned"),
]


@pytest.mark.parametrize(("outcome", "nature", "expect", "level"), CASE_TABLE)
def test_a_case_decision_moves_its_subject_as_the_table_says(
    outcome: str, nature: str | None, expect: list[tuple[str, ...]], level: str
) -> None:
    engine = Escalation()
    state = warned_once(engine)
    a1 = alert("a1", 0).alert_id
    out = engine.on_case_decision(state, decided(outcome, nature, 1), (a1,), ts(1))
    assert summaries(out) == expect
    assert engine.status(state, ts(1))["level"] == level


def test_a_fraud_freeze_lasts_until_the_end_of_the_decisions_local_day_and_names_the_alerts() -> (
    None
):
    engine = Escalation()
    state = warned_once(engine)
    a1 = alert("a1", 0).alert_id
    (freeze,) = engine.on_case_decision(
        state, decided("confirmed", "intentional_fraud", 1), (a1,), ts(1)
    )
    assert isinstance(freeze, Command)
    assert (freeze.effective_from, freeze.expires_at) == (
        "2026-03-03T08:00:00+08:00",
        "2026-03-04T00:00:00+08:00",
    )
    assert freeze.alert_ids == (a1,)
    assert freeze.command_id == stable_id("cmd", "FREEZE", "institution:H1", "case", "c1")


def test_a_fraud_decision_while_frozen_suspends() -> None:
    engine = Escalation()
    state = warned_once(engine)
    assert summaries(engine.on_alert(state, alert("a2", 1), ts(1)))[0] == ("FREEZE", "escalation")
    out = engine.on_case_decision(
        state, decided("confirmed", "intentional_fraud", 1.1), (), ts(1.1)
    )
    assert [s for s in summaries(out) if s[0] != "GRADE"] == [("SUSPEND", "case_decision")]
    assert engine.status(state, ts(1.1))["suspension"]["cause"] == "fraud"


def test_a_fraud_decision_suspends_at_once_when_the_setting_says_suspend() -> None:
    engine = Escalation(SanctionSettings(ladder=LadderSettings(intentional_fraud="suspend")))
    state = warned_once(engine)
    out = engine.on_case_decision(state, decided("confirmed", "intentional_fraud", 1), (), ts(1))
    assert summaries(out) == [("SUSPEND", "case_decision")]


def test_a_fraud_decision_on_a_suspended_subject_decides_nothing_more() -> None:
    engine = Escalation(SanctionSettings(ladder=LadderSettings(intentional_fraud="suspend")))
    state = warned_once(engine)
    engine.on_case_decision(state, decided("confirmed", "intentional_fraud", 1), (), ts(1))
    again = decided("confirmed", "intentional_fraud", 2, case="c2")
    assert engine.on_case_decision(state, again, (), ts(2)) == []


def test_a_redelivered_case_decision_changes_nothing() -> None:
    engine = Escalation()
    state = warned_once(engine)
    decision = decided("confirmed", "intentional_fraud", 1)
    engine.on_case_decision(state, decision, (), ts(1))
    before = copy.deepcopy(state)
    assert engine.on_case_decision(state, decision, (), ts(1)) == []
    assert state == before


def test_the_third_freeze_in_90_days_caused_by_a_fraud_decision_suspends() -> None:
    engine = Escalation()
    state = warned_once(engine)
    feed(engine, state, "a2", 10)  # FREEZE 1
    feed(engine, state, "a3", 20)  # FREEZE 2
    engine.tick(state, ts(21))
    out = engine.on_case_decision(state, decided("confirmed", "intentional_fraud", 21), (), ts(21))
    assert summaries(out) == [("FREEZE", "case_decision"), ("SUSPEND", "escalation")]


def test_an_operational_error_warning_names_only_the_alerts_a_partly_decision_confirmed() -> None:
    engine = Escalation()
    state = warned_once(engine)
    a1, a2 = alert("a1", 0).alert_id, alert("a2", 0).alert_id
    decision = decided("partly_confirmed", "operational_error", 1, named=(a2,))
    (warning,) = engine.on_case_decision(state, decision, (a1, a2), ts(1))
    assert warning.to_dict()["alert_ids"] == [a2]


@pytest.mark.parametrize(
    ("outcome", "named", "verdicts"),
    [
        ("confirmed", (), ["confirmed", "confirmed"]),
        ("not_confirmed", (), ["false_positive", "false_positive"]),
        ("partly_confirmed", ("a2",), ["false_positive", "confirmed"]),
        ("partly_confirmed", (), [None, None]),
    ],
)
def test_a_case_decision_gives_each_of_its_alerts_a_verdict(
    outcome: str, named: tuple[str, ...], verdicts: list[str | None]
) -> None:
    nature = None if outcome == "not_confirmed" else "operational_error"
    decision = decided(outcome, nature, 1, named=named)
    assert [decision.verdict_for(a) for a in ("a1", "a2")] == verdicts
