"""The sanctions stream's steps without faust: routing, the alert/action join, subjects, ticks.

The ladder's own thresholds are tested in tests/sanctions; here the records go through the
three processors as the worker feeds them, with plain dicts as tables.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from claimstream.model.outputs import Alert, Command, Subject
from claimstream.model.records import Record
from claimstream.sanctions import Escalation
from claimstream.sanctions import view as answers
from claimstream.sanctions.codec import action_to_dict
from claimstream.sanctions.processor import (
    ACTIONS,
    ALERTS,
    NOTICES,
    PRECISION_PREFIX,
    REPARTITION_ALERT,
    REPARTITION_SUBJECT,
    IndexProcessor,
    Result,
    RouteProcessor,
    SubjectProcessor,
    Verify,
    count_verdict,
    decision_forwards,
    precision,
)
from claimstream.sanctions.signatures import ActionSigner, ActionVerifier, Keyring, TrustedKey
from tests.sanctions.support import alert, at, ts, unfreeze, verdict

#: the verifier of the tests that are not about signatures: unsigned actions pass
UNSIGNED_OK = ActionVerifier(lambda: Keyring({}), accept_unsigned=True).check

DAY = 86_400.0


class Flow:
    """The three processors over dict tables, with results applied like the worker does."""

    def __init__(
        self,
        escalation: Escalation | None = None,
        verify: Verify = UNSIGNED_OK,
        sign: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        self.escalation = escalation or Escalation()
        self.index_table: dict[str, Any] = {}
        self.subject_table: dict[str, Any] = {}
        self.route = RouteProcessor()
        self.index = IndexProcessor(self.escalation, self.index_table.get, 365 * DAY, verify=verify)
        self.subjects = SubjectProcessor(self.escalation, self.subject_table.get, verify=verify)
        #: what `action` does to a record before publishing it (a signer's `sign`)
        self.sign = sign or (lambda record: record)
        self.offset = 0

    def record(self, topic: str, key: str | None, value: Any, partition: int = 0) -> Record:
        self.offset += 1
        raw = value if isinstance(value, bytes) else orjson.dumps(value)
        return Record(None if key is None else key.encode(), raw, topic, partition, self.offset)

    @staticmethod
    def apply(table: dict[str, Any], result: Result) -> None:
        for key, (state, _) in result.writes.items():
            table[key] = state
        for key in result.deletes:
            table.pop(key, None)

    def run_index(self, records: list[Record]) -> Result:
        result = self.index.process(records)
        self.apply(self.index_table, result)
        return result

    def run_subjects(self, forwards: list[tuple[str, str, bytes]]) -> Result:
        records = [self.record(t, k, v) for t, k, v in forwards if t == REPARTITION_SUBJECT]
        result = self.subjects.process(records)
        self.apply(self.subject_table, result)
        return result

    def alerts(self, *alerts: Alert) -> Result:
        """Alerts from the alerts topic through all three steps; the subject step's result."""
        routed = self.route.process(
            [self.record(ALERTS, a.subject.id, a.to_dict()) for a in alerts]
        )
        indexed = self.run_index([self.record(t, k, v) for t, k, v in routed.forwards])
        return self.run_subjects(indexed.forwards)

    def action(self, action: Any, key: str | None = None) -> tuple[Result, Result]:
        data = self.sign(action_to_dict(action))
        key = key or getattr(action, "alert_id", None) or f"{action.scope.kind}:{action.scope.id}"
        indexed = self.run_index([self.record(ACTIONS, key, data)])
        return indexed, self.run_subjects(indexed.forwards)


def kinds(result: Result) -> list[tuple[str, str]]:
    """(key, command action or notice schema) of every decision, in order."""
    out = [(c.scope.key(), c.action) for c in result.commands]
    out += [(k, n["schema"]) for k, n in result.notices]
    return sorted(out)


# -- route ------------------------------------------------------------------------------------


def test_route_rekeys_alerts_by_alert_id_and_dead_letters_what_is_not_an_alert() -> None:
    flow = Flow()
    a = alert("a1", 0)
    bad = [b"not json", b"[1]", orjson.dumps({"alert_id": "x"}), None]
    records = [flow.record(ALERTS, "P1", raw) for raw in bad[:3]]
    records.append(Record(b"P1", None, ALERTS, 3, 99))
    records.insert(1, flow.record(ALERTS, "P1", a.to_dict(), partition=2))
    out = flow.route.process(records)
    assert out.forwards == [(REPARTITION_ALERT, a.alert_id, orjson.dumps(a.to_dict()))]
    assert [d.reason for d in out.dead_letters] == ["invalid_alert"] * 4
    assert out.dead_letters[-1].origin == {"topic": ALERTS, "partition": 3, "offset": 99}
    assert out.dead_letters[0].raw == b"not json"


# -- index ------------------------------------------------------------------------------------


def test_an_alert_is_indexed_once_and_sent_to_each_subject_it_names() -> None:
    flow = Flow()
    a = alert("a1", 0, patient="P1", institution="H1", doctor="D1")
    rec = flow.record(REPARTITION_ALERT, a.alert_id, a.to_dict(), partition=3)
    out = flow.run_index([rec])
    assert [k for _, k, _ in out.forwards] == ["institution:H1", "doctor:D1", "patient:P1"]
    assert all(t == REPARTITION_SUBJECT for t, _, _ in out.forwards)
    assert orjson.loads(out.forwards[0][2]) == {"type": "alert", "alert": a.to_dict()}
    assert out.writes[a.alert_id][1] == 3
    assert flow.index.watermarks == {3: ts(0)}
    again = flow.run_index([rec])
    assert not again.forwards and not again.writes


@pytest.mark.parametrize(
    ("steps", "counts", "forwarded"),
    [
        (["confirmed"], [1, 1], [True]),
        (["false_positive"], [0, 1], [True]),
        (["confirmed", "confirmed"], [1, 1], [True, False]),
        (["confirmed", "false_positive"], [0, 1], [True, True]),
        (["false_positive", "confirmed"], [1, 1], [True, True]),
    ],
)
def test_verdicts_join_their_alert_and_count_once_per_alert(
    steps: list[str], counts: list[int], forwarded: list[bool]
) -> None:
    flow = Flow()
    a = alert("a1", 0)
    flow.alerts(a)
    for i, (kind, expect) in enumerate(zip(steps, forwarded, strict=True)):
        indexed, _ = flow.action(verdict(a, kind, 1 + i))
        assert bool(indexed.forwards) is expect
        if expect:
            assert indexed.verdicts == [("repeat_dispensing", kind)]
            envelope = orjson.loads(indexed.forwards[0][2])
            assert envelope["type"] == "review" and envelope["alert"] == a.to_dict()
            assert envelope["action"]["verdict"] == kind
    assert flow.index_table[f"{PRECISION_PREFIX}0"] == {"repeat_dispensing": counts}
    assert flow.index_table[a.alert_id]["verdict"] == steps[-1]


def test_a_review_of_an_unknown_alert_is_dead_lettered_and_the_batch_goes_on() -> None:
    flow = Flow()
    known = alert("known", 0)
    flow.alerts(known)
    stranger = alert("stranger", 0)
    records = [
        flow.record(ACTIONS, stranger.alert_id, action_to_dict(verdict(stranger, "confirmed", 1))),
        flow.record(ACTIONS, "x", b"{broken"),
        flow.record(ACTIONS, "x", {"type": "review", "by": "me", "at": "yesterday"}),
        flow.record(ACTIONS, known.alert_id, action_to_dict(verdict(known, "confirmed", 1))),
    ]
    out = flow.run_index(records)
    assert [d.reason for d in out.dead_letters] == [
        "unknown_alert",
        "invalid_action",
        "invalid_action",
    ]
    assert out.dead_letters[0].origin == {
        "topic": ACTIONS,
        "partition": 0,
        "offset": records[0].offset,
    }
    assert stranger.alert_id in out.dead_letters[0].detail
    assert out.verdicts == [("repeat_dispensing", "confirmed")]


def test_unfreeze_goes_to_its_subject_and_remediation_to_the_alerts_subjects() -> None:
    flow = Flow()
    a = alert("a1", 0)
    flow.alerts(a)
    indexed, _ = flow.action(unfreeze("institution", "H1", 1))
    assert [(k, orjson.loads(v)["type"]) for _, k, v in indexed.forwards] == [
        ("institution:H1", "unfreeze")
    ]
    from claimstream.sanctions import Remediation

    fix = Remediation(a.alert_id, "H1", "h1.quality", at(2))
    indexed, _ = flow.action(fix)
    assert [k for _, k, _ in indexed.forwards] == ["institution:H1", "doctor:D1", "patient:P1"]
    again, _ = flow.action(fix)
    assert not again.forwards


def test_index_sweep_forgets_alerts_past_the_horizon_but_keeps_the_counts() -> None:
    flow = Flow()
    old, new = alert("old", 0), alert("new", 300)
    flow.alerts(old)
    flow.action(verdict(old, "confirmed", 1))
    flow.alerts(new)
    flow.alerts(alert("later", 400))
    deletes = flow.index.sweep(list(flow.index_table), lambda key: 0)
    assert deletes == {old.alert_id: 0}


def test_count_verdict_and_precision_sum() -> None:
    assert count_verdict([0, 0], None, "confirmed") == [1, 1]
    assert count_verdict([1, 1], "confirmed", "false_positive") == [0, 1]
    assert count_verdict([0, 1], "false_positive", "confirmed") == [1, 1]
    assert precision([{"r": [1, 2]}, None, {"r": [2, 2], "s": [0, 1]}]) == {
        "r": (3, 4),
        "s": (0, 1),
    }


# -- subjects ---------------------------------------------------------------------------------


def test_first_violation_warns_a_repeat_freezes_each_subject() -> None:
    flow = Flow()
    first = flow.alerts(alert("a1", 0))
    assert kinds(first) == [
        ("doctor:D1", "warning.v1"),
        ("institution:H1", "warning.v1"),
        ("patient:P1", "warning.v1"),
    ]
    repeat = flow.alerts(alert("a2", 3))
    assert [(c.scope.key(), c.action) for c in repeat.commands] == [
        ("institution:H1", "FREEZE"),
        ("doctor:D1", "FREEZE"),
        ("patient:P1", "FREEZE"),
    ]
    assert all(c.expires_at and c.expires_at.startswith(at(4)[:10]) for c in repeat.commands)
    assert set(repeat.writes) == {
        "institution:H1",
        "doctor:D1",
        "patient:P1",
    }


def test_a_redelivered_batch_changes_nothing() -> None:
    flow = Flow()
    a1, a2 = alert("a1", 0), alert("a2", 3)
    flow.alerts(a1)
    routed = flow.route.process([flow.record(ALERTS, "P1", a2.to_dict())])
    indexed = flow.index.process([flow.record(t, k, v) for t, k, v in routed.forwards])
    flow.apply(flow.index_table, indexed)
    batch = [flow.record(t, k, v) for t, k, v in indexed.forwards]
    first = flow.subjects.process(batch)
    flow.apply(flow.subject_table, first)
    assert first.commands
    again = flow.subjects.process(batch)
    assert not again.commands and not again.notices


def test_verdicts_give_doctor_points_and_the_api_status() -> None:
    flow = Flow()
    a = alert("a1", 0, severity="high")
    flow.alerts(a)
    _, decided = flow.action(verdict(a, "confirmed", 2))
    points = [n for k, n in decided.notices if n["schema"] == "doctor-points.v1"]
    assert [(p["doctor_id"], p["delta"], p["total"]) for p in points] == [("D1", 5, 5)]
    assert [k for k, n in decided.notices if n["schema"] == "doctor-points.v1"] == ["doctor:D1"]
    held = answers.alerts(flow.subject_table["patient:P1"])
    assert [(h["alert_id"], h["status"]) for h in held] == [(a.alert_id, "confirmed")]
    _, back = flow.action(verdict(a, "false_positive", 3))
    assert [(n["delta"], n["total"]) for _, n in back.notices] == [(-5, 0)]


def test_manual_unfreeze_lifts_the_freeze_with_one_unfreeze_command() -> None:
    flow = Flow()
    flow.alerts(alert("a1", 0, doctor=None, patient=None))
    froze = flow.alerts(alert("a2", 1, doctor=None, patient=None))
    assert [c.action for c in froze.commands] == ["FREEZE"]
    _, lifted = flow.action(unfreeze("institution", "H1", 1.1))
    assert [(c.action, c.rule) for c in lifted.commands] == [("UNFREEZE", "manual")]
    _, again = flow.action(unfreeze("institution", "H1", 1.1))
    assert not again.commands


def test_bad_envelopes_are_dead_lettered() -> None:
    flow = Flow()
    ok = {"type": "alert", "alert": alert("a1", 0).to_dict()}
    records = [
        flow.record(REPARTITION_SUBJECT, "nobody", ok),
        flow.record(REPARTITION_SUBJECT, "patient:P1", {"type": "gossip"}),
        flow.record(REPARTITION_SUBJECT, "patient:P1", {"type": "alert", "alert": {"x": 1}}),
        flow.record(
            REPARTITION_SUBJECT,
            "patient:P1",
            {
                "type": "review",
                "alert": ok["alert"],
                "action": action_to_dict(unfreeze("patient", "P1", 1)),
            },
        ),
        flow.record(REPARTITION_SUBJECT, "patient:P1", ok),
    ]
    out = flow.subjects.process(records)
    assert [d.reason for d in out.dead_letters] == ["invalid_envelope"] * 4
    assert [n["schema"] for _, n in out.notices] == ["warning.v1"]


# -- ticks ------------------------------------------------------------------------------------


def part(_key: str) -> int:
    return 0


def test_tick_expires_the_freeze_once_and_skips_states_where_only_the_clock_moved() -> None:
    flow = Flow()
    flow.alerts(alert("a1", 0, doctor=None, patient=None))
    flow.alerts(alert("a2", 1, doctor=None, patient=None))
    quiet = flow.subjects.tick(["institution:H1"], ts(1.2), part)
    assert not quiet.commands and not quiet.writes
    expired = flow.subjects.tick(["institution:H1"], ts(2.5), part)
    assert [(c.action, c.rule) for c in expired.commands] == [("UNFREEZE", "escalation")]
    flow.apply(flow.subject_table, expired)
    assert "institution:H1" in expired.writes
    assert not flow.subjects.tick(["institution:H1"], ts(2.6), part).commands
    assert not flow.subjects.tick(["missing:key"], ts(3), part).writes


def test_tick_deletes_a_subject_with_nothing_left_and_ages_the_api_alerts() -> None:
    flow = Flow()
    flow.alerts(alert("a1", 0))
    flow.alerts(alert("info", 1, severity="info"))
    assert len(flow.subject_table["patient:P1"]["al"]) == 2  # any severity, for the API
    later = flow.subjects.tick(list(flow.subject_table), ts(100), part)
    flow.apply(flow.subject_table, later)
    # patient and doctor keep 90 days: nothing left; an institution keeps 12 months
    assert later.deletes == {"patient:P1": 0, "doctor:D1": 0}
    assert len(flow.subject_table["institution:H1"]["al"]) == 2
    gone = flow.subjects.tick(["institution:H1"], ts(500), part)
    assert gone.deletes == {"institution:H1": 0}


# -- the API's answers ------------------------------------------------------------------------


def test_answers_subject_alerts_and_institution() -> None:
    flow = Flow()
    a1 = alert("a1", 0, amount=2000.0)
    a2 = alert("a2", 1, doctor="D2", department="K2")
    flow.alerts(a1, a2)
    flow.action(verdict(a1, "false_positive", 1.1))
    state = flow.subject_table["institution:H1"]
    standing = answers.subject(state, ts(1.2), flow.escalation)
    assert standing["level"] == "frozen"
    assert [f["origin"] for f in standing["freezes"]] == ["ladder"]
    assert standing["grade"]["grade"] == "A"
    held = answers.alerts(state)
    assert [h["alert_id"] for h in held] == [a2.alert_id, a1.alert_id]  # newest first
    assert [h["alert_id"] for h in answers.alerts(state, "false_positive")] == [a1.alert_id]
    inst = answers.institution(state, ts(1.2), flow.escalation)
    assert [a["alert_id"] for a in inst["open_alerts"]] == [a2.alert_id]
    assert inst["rollup"]["alerts"] == 1  # the false positive is left out
    assert inst["rollup"]["doctors"][0]["id"] == "D2"
    assert orjson.loads(orjson.dumps(inst)) == inst  # JSON-shaped
    later = answers.subject(state, ts(3), flow.escalation)
    assert later["freezes"] == [] and later["level"] != "frozen"


def test_notices_are_keyed_by_their_subject() -> None:
    flow = Flow()
    out = flow.alerts(alert("a1", 0))
    for key, notice in out.notices:
        assert key == f"{notice['subject']['kind']}:{notice['subject']['id']}"
    assert NOTICES == "claimstream.sanctions.v1"
    assert all(isinstance(c, Command) for c in out.commands)


@pytest.mark.parametrize(
    ("kinds", "named", "keys"),
    [
        (("institution", "doctor", "patient"), {}, ["institution:H1", "doctor:D1", "patient:P1"]),
        (("institution",), {}, ["institution:H1"]),
        (("institution", "doctor", "patient"), {"doctor": None}, ["institution:H1", "patient:P1"]),
        (("doctor", "patient"), {"patient": None}, ["doctor:D1"]),
        (("patient",), {"patient": None}, []),
    ],
)
def test_alerts_and_their_reviews_reach_the_configured_subjects_it_names(
    kinds: tuple[str, ...], named: dict[str, Any], keys: list[str]
) -> None:
    from claimstream.sanctions import LadderSettings, SanctionSettings

    flow = Flow(Escalation(SanctionSettings(ladder=LadderSettings(kinds=kinds))))  # type: ignore[arg-type]
    a = alert("a1", 0, **named)
    routed = flow.route.process([flow.record(ALERTS, a.subject.id, a.to_dict())])
    indexed = flow.run_index([flow.record(t, k, v) for t, k, v in routed.forwards])
    assert [k for _, k, _ in indexed.forwards] == keys
    reviewed, _ = flow.action(verdict(a, "confirmed", 1))
    assert [k for _, k, _ in reviewed.forwards] == keys


def test_a_remediation_raises_the_grade_and_marks_the_alert() -> None:
    flow = Flow()
    many = [alert(f"a{i}", i * 0.01, severity="high", doctor=None, patient=None) for i in range(3)]
    decided = flow.alerts(*many)
    assert [
        (n["old"], n["new"]) for _, n in decided.notices if n["schema"] == "grade-change.v1"
    ] == [("A", "B")]
    from claimstream.sanctions import Remediation

    _, fixed = flow.action(Remediation(many[0].alert_id, "H1", "h1.quality", at(1)))
    assert fixed.notices == []  # 87.5: still a B
    _, fixed = flow.action(Remediation(many[1].alert_id, "H1", "h1.quality", at(1)))
    assert [(n["old"], n["new"], n["score"]) for _, n in fixed.notices] == [("B", "A", 90.0)]
    held = flow.subject_table["institution:H1"]["al"][many[0].alert_id]
    assert held["remediated"] is True and held["status"] == "open"


# -- signed actions -----------------------------------------------------------------------------

PERSON = ActionSigner.generate()


def signed_flow(**changes: Any) -> Flow:
    """A flow whose workers require signatures and trust wang.supervisor's key, and whose
    `action` publishes what `sign` makes of a record (default: signed by that key)."""
    ring = Keyring.of([TrustedKey("wang.supervisor", PERSON.public_key)])
    return Flow(verify=ActionVerifier(lambda: ring).check, **({"sign": PERSON.sign} | changes))


def frozen(flow: Flow) -> list[Command]:
    flow.alerts(alert("a1", 0, doctor=None, patient=None))
    return flow.alerts(alert("a2", 1, doctor=None, patient=None)).commands


@pytest.mark.parametrize(
    ("sign", "reason"),
    [
        (lambda record: record, "unsigned_action"),
        (
            lambda record: {**PERSON.sign(record), "reason": "changed after signing"},
            "bad_signature",
        ),
        (ActionSigner.generate().sign, "unknown_key"),
    ],
)
def test_an_unfreeze_that_is_not_properly_signed_is_dead_lettered_and_lifts_nothing(
    sign: Callable[[dict[str, Any]], dict[str, Any]], reason: str
) -> None:
    flow = signed_flow(sign=sign)
    assert [c.action for c in frozen(flow)] == ["FREEZE"]
    before = orjson.dumps(flow.subject_table)
    indexed, decided = flow.action(unfreeze("institution", "H1", 1.1))
    assert [d.reason for d in indexed.dead_letters] == [reason]
    assert indexed.dead_letters[0].origin["topic"] == ACTIONS
    assert not indexed.forwards and not decided.commands
    assert orjson.dumps(flow.subject_table) == before


def test_a_signed_unfreeze_lifts_the_freeze() -> None:
    flow = signed_flow()
    frozen(flow)
    indexed, lifted = flow.action(unfreeze("institution", "H1", 1.1))
    assert not indexed.dead_letters
    assert [(c.action, c.rule) for c in lifted.commands] == [("UNFREEZE", "manual")]


def test_an_unsigned_unfreeze_put_straight_on_the_subject_topic_is_dead_lettered() -> None:
    flow = signed_flow()
    frozen(flow)
    envelope = {"type": "unfreeze", "action": action_to_dict(unfreeze("institution", "H1", 1.1))}
    out = flow.subjects.process([flow.record(REPARTITION_SUBJECT, "institution:H1", envelope)])
    assert [d.reason for d in out.dead_letters] == ["unsigned_action"]
    assert not out.commands


def test_the_signed_record_is_what_reaches_the_subject() -> None:
    flow = signed_flow()
    frozen(flow)
    indexed, _ = flow.action(unfreeze("institution", "H1", 1.1))
    envelope = orjson.loads(indexed.forwards[0][2])
    assert envelope["action"]["key_id"] == PERSON.key_id and envelope["action"]["signature"]


def test_a_signed_unfreeze_replayed_after_the_subject_forgot_it_is_stale() -> None:
    flow = signed_flow()
    frozen(flow)
    old = unfreeze("institution", "H1", 1.1)
    _, lifted = flow.action(old)
    assert lifted.commands
    flow.alerts(alert("a3", 40, doctor=None, patient=None))
    again = flow.alerts(alert("a4", 41, doctor=None, patient=None))
    assert [c.action for c in again.commands] == ["FREEZE"]
    _, replayed = flow.action(old)  # 40 days later: past the 30 days of remembered actions
    assert [d.reason for d in replayed.dead_letters] == ["stale_action"]
    assert not replayed.commands


def test_a_verdict_older_than_the_one_on_record_changes_nothing() -> None:
    flow = signed_flow()
    a = alert("a1", 0)
    flow.alerts(a)
    first = verdict(a, "false_positive", 2, by="wang.supervisor")
    flow.action(first)
    flow.action(verdict(a, "confirmed", 3, by="wang.supervisor"))
    replayed, decided = flow.action(first)
    assert not replayed.forwards and not replayed.verdicts and not decided.notices
    assert flow.index_table[a.alert_id]["verdict"] == "confirmed"


# -- a check's feedback -----------------------------------------------------------------------


def feedback(day: float = 1, by: str = "dr.zhang") -> Any:
    from claimstream.sanctions.actions import CheckFeedback, Handling

    return CheckFeedback(
        "HIS-1",
        (
            Handling("repeat_dispensing", "continued", "supply lost", "alr-1"),
            Handling("excess_quantity", "modified", "", None),
        ),
        by,
        at(day),
    )


def test_a_checks_feedback_is_counted_once_per_rule_and_handling_and_changes_no_subject() -> None:
    flow = Flow()
    answer = feedback()
    indexed, subjects = flow.action(answer, key="HIS-1")
    assert indexed.overrides == [
        ("repeat_dispensing", "continued"),
        ("excess_quantity", "modified"),
    ]
    assert indexed.forwards == [] and indexed.dead_letters == []
    assert kinds(subjects) == []
    again, _ = flow.action(answer, key="HIS-1")  # redelivered: nothing counted twice
    assert again.overrides == [] and again.dead_letters == []
    other, _ = flow.action(feedback(day=2), key="HIS-1")  # a second answer is another action
    assert len(other.overrides) == 2


def test_an_unsigned_feedback_is_refused_when_signatures_are_required() -> None:
    flow = Flow(verify=ActionVerifier(lambda: Keyring({})).check)
    indexed, _ = flow.action(feedback(), key="HIS-1")
    assert indexed.overrides == []
    assert [d.reason for d in indexed.dead_letters] == ["unsigned_action"]


def test_the_index_forgets_a_feedback_past_the_horizon() -> None:
    flow = Flow()
    flow.action(feedback(day=0), key="HIS-1")
    (mark,) = [k for k in flow.index_table if k.startswith("~feedback:")]
    flow.alerts(alert("later", 400))
    assert flow.index.sweep(list(flow.index_table), lambda key: 0) == {mark: 0}


def test_a_case_action_on_the_actions_topic_is_left_to_the_cases_agent() -> None:
    flow = Flow(verify=ActionVerifier(lambda: Keyring({})).check)  # would refuse anything
    record = {"schema": "action.v1", "type": "case_advance", "case_id": "case-1", "by": "li",
              "at": at(1)}  # fmt: skip
    out = flow.run_index([flow.record(ACTIONS, "case-1", record)])
    assert (out.forwards, out.dead_letters, out.writes) == ([], [], {})


# -- case decisions -----------------------------------------------------------------------------


def decide_record(
    outcome: str, nature: str | None, day: float, named: tuple[str, ...] = (), case: str = "c1"
) -> dict[str, Any]:
    """A `case_decide` action record as the cases agent applies it (claimstream.cases)."""
    record = {"schema": "action.v1", "action_id": f"act-{case}", "type": "case_decide",
              "case_id": case, "outcome": outcome, "nature": nature,
              "confirmed_amount": 0 if nature is None else 100.0, "note": "",
              "by": "wang.supervisor", "at": at(day)}  # fmt: skip
    if named:
        record["confirmed_alerts"] = list(named)
    return record


def decide(
    flow: Flow, record: dict[str, Any], *alerts: Alert, subject: str = "institution:H1"
) -> tuple[Result, Result]:
    """The decision's forwards (as the cases step sends them) through the index and the
    subjects; (the index's result, the subjects' result)."""
    kind, _, id_ = subject.partition(":")
    forwards = decision_forwards(
        flow.sign(record),
        Subject(kind, id_),
        [a.alert_id for a in alerts],  # type: ignore[arg-type]
    )
    to_index = [flow.record(t, k, v) for t, k, v in forwards if t == REPARTITION_ALERT]
    indexed = flow.run_index(to_index)
    direct = [f for f in forwards if f[0] == REPARTITION_SUBJECT]
    return indexed, flow.run_subjects(indexed.forwards + direct)


def held_status(flow: Flow, key: str, target: Alert) -> str:
    return str(flow.subject_table[key]["al"][target.alert_id]["status"])


@pytest.mark.parametrize(
    ("outcome", "nature", "named", "counts", "statuses", "institution"),
    [
        ("confirmed", "intentional_fraud", (), [2, 2], ["confirmed", "confirmed"], ["FREEZE"]),
        ("confirmed", "operational_error", (), [2, 2], ["confirmed", "confirmed"], ["warning.v1"]),
        ("partly_confirmed", "operational_error", ("b",), [1, 2],
         ["false_positive", "confirmed"], ["warning.v1"]),
        ("partly_confirmed", "intentional_fraud", (), None, ["open", "open"], ["FREEZE"]),
        ("not_confirmed", None, (), [0, 2], ["false_positive", "false_positive"], []),
    ],
)  # fmt: skip
def test_a_case_decision_counts_its_alerts_verdicts_and_moves_its_subject(
    outcome: str,
    nature: str | None,
    named: tuple[str, ...],
    counts: list[int] | None,
    statuses: list[str],
    institution: list[str],
) -> None:
    flow = Flow()
    a, b = alert("a", 0), alert("b", 40)  # 40 days apart: each a warning, nothing frozen
    flow.alerts(a, b)
    names = tuple(alert(n, 0).alert_id for n in named)
    indexed, decided = decide(flow, decide_record(outcome, nature, 41, names), a, b)
    assert flow.index_table.get(f"{PRECISION_PREFIX}0") == (
        None if counts is None else {"repeat_dispensing": counts}
    )
    assert [held_status(flow, "doctor:D1", x) for x in (a, b)] == statuses
    on_institution = [c.action for c in decided.commands if c.scope.key() == "institution:H1"]
    on_institution += [
        n["schema"]
        for k, n in decided.notices
        if k == "institution:H1" and n["schema"] == "warning.v1"
    ]
    assert on_institution == institution
    assert not indexed.dead_letters and not decided.dead_letters


def test_a_confirmed_case_gives_its_doctor_the_points_a_reviewer_would() -> None:
    flow = Flow()
    a = alert("a", 0)
    flow.alerts(a)
    _, decided = decide(flow, decide_record("confirmed", "operational_error", 1), a)
    points = [n for k, n in decided.notices if n["schema"] == "doctor-points.v1"]
    assert [(p["doctor_id"], p["delta"]) for p in points] == [("D1", 5)]


def test_a_redelivered_case_decision_changes_nothing() -> None:
    flow = Flow()
    a = alert("a", 0)
    flow.alerts(a)
    record = decide_record("confirmed", "intentional_fraud", 1)
    decide(flow, record, a)
    index_before, subjects_before = orjson.dumps(flow.index_table), orjson.dumps(flow.subject_table)
    indexed, decided = decide(flow, record, a)
    assert (indexed.forwards, indexed.verdicts, decided.commands, decided.notices) == (
        [],
        [],
        [],
        [],
    )
    assert orjson.dumps(flow.index_table) == index_before
    assert orjson.dumps(flow.subject_table) == subjects_before


def test_a_later_reviewer_verdict_overrides_a_case_decision_and_an_earlier_one_does_not() -> None:
    flow = Flow()
    a = alert("a", 0)
    flow.alerts(a)
    decide(flow, decide_record("confirmed", "operational_error", 5), a)
    earlier, _ = flow.action(verdict(a, "false_positive", 4))
    assert not earlier.forwards
    later, _ = flow.action(verdict(a, "false_positive", 6))
    assert later.verdicts == [("repeat_dispensing", "false_positive")]
    assert flow.index_table[f"{PRECISION_PREFIX}0"] == {"repeat_dispensing": [0, 1]}


def test_a_case_verdict_for_an_alert_the_index_does_not_hold_is_dead_lettered() -> None:
    flow = Flow()
    indexed, _ = decide(flow, decide_record("confirmed", "operational_error", 1), alert("x", 0))
    assert [d.reason for d in indexed.dead_letters] == ["unknown_alert"]


@pytest.mark.parametrize(
    ("sign", "reason"),
    [
        (lambda record: record, "unsigned_action"),
        (lambda record: {**PERSON.sign(record), "outcome": "confirmed"}, "bad_signature"),
    ],
)
def test_a_case_decision_that_is_not_properly_signed_changes_nothing(
    sign: Callable[[dict[str, Any]], dict[str, Any]], reason: str
) -> None:
    flow = signed_flow(sign=sign)
    a = alert("a", 0)
    flow.alerts(a)
    record = decide_record("not_confirmed", None, 1)
    record["outcome"] = "confirmed" if reason == "unsigned_action" else "not_confirmed"
    record["nature"] = "intentional_fraud" if reason == "unsigned_action" else None
    indexed, decided = decide(flow, record, a)
    assert {d.reason for d in indexed.dead_letters + decided.dead_letters} == {reason}
    assert not decided.commands and f"{PRECISION_PREFIX}0" not in flow.index_table


def test_a_case_decision_for_a_partly_confirmed_case_that_names_no_alert_sends_no_verdict() -> None:
    record = decide_record("partly_confirmed", "operational_error", 1)
    forwards = decision_forwards(record, Subject("institution", "H1"), ["a", "b"])
    assert [(t, k) for t, k, _ in forwards] == [(REPARTITION_SUBJECT, "institution:H1")]


def test_a_not_confirmed_case_sends_its_subject_nothing() -> None:
    record = decide_record("not_confirmed", None, 1)
    forwards = decision_forwards(record, Subject("institution", "H1"), ["a"])
    assert [(t, k) for t, k, _ in forwards] == [(REPARTITION_ALERT, "a")]
