"""The casework stream's steps without faust: alerts grouped into cases, people's case actions
applied, refusals and overdue notices, with plain dicts as tables."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from claimstream.cases.actions import (
    AdvanceCase,
    CaseAction,
    DecideCase,
    RecordRecovery,
    case_action_to_dict,
)
from claimstream.cases.calendar import load_calendar
from claimstream.cases.case import CaseSettings, Procedure, case_from_dict
from claimstream.cases.processor import (
    ACTIONS,
    ALERTS,
    REPARTITION_CASE,
    CaseProcessor,
    CaseResult,
    GroupProcessor,
)
from claimstream.model.outputs import Alert, Subject, stable_id
from claimstream.model.records import Record
from claimstream.sanctions.processor import REPARTITION_ALERT, REPARTITION_SUBJECT
from claimstream.sanctions.signatures import ActionSigner, ActionVerifier, Keyring, TrustedKey

SH = ZoneInfo("Asia/Shanghai")
UNSIGNED_OK = ActionVerifier(lambda: Keyring({}), accept_unsigned=True).check


def at(day: int, hour: int = 10) -> str:
    return f"2026-03-{day:02d}T{hour:02d}:00:00+08:00"


def alert(name: str, day: int, *, subject: str = "H1", severity: str = "warning",
          amount: float | None = 100.0) -> Alert:  # fmt: skip
    return Alert(
        alert_id=stable_id("alr", name),
        rule="repeat_dispensing",
        rule_version=1,
        severity=severity,  # type: ignore[arg-type]
        subject=Subject("institution", subject),
        patient_id="P1",
        institution_id=subject,
        doctor_id="D1",
        department_id=None,
        event_ids=(name,),
        occurred_at=at(day),
        detected_at=at(day),
        message="m",
        details={},
        amount=amount,
    )


class Flow:
    def __init__(self, verify: Any = UNSIGNED_OK, group_days: int = 30) -> None:
        self.groups: dict[str, Any] = {}
        self.cases: dict[str, Any] = {}
        self.group = GroupProcessor(self.groups.get, group_days=group_days)
        self.procedure = Procedure(CaseSettings(), load_calendar(None, SH))
        self.case = CaseProcessor(self.procedure, self.cases.get, verify=verify)
        self.offset = 0

    def record(self, topic: str, key: str, value: Any) -> Record:
        self.offset += 1
        raw = value if isinstance(value, bytes) else orjson.dumps(value)
        return Record(key.encode(), raw, topic, 0, self.offset)

    @staticmethod
    def apply(table: dict[str, Any], result: CaseResult) -> None:
        for key, (state, _) in result.writes.items():
            table[key] = state

    def run_cases(self, records: list[Record]) -> CaseResult:
        result = self.case.process(records)
        self.apply(self.cases, result)
        again = [self.record(t, k, v) for t, k, v in result.forwards if t == REPARTITION_CASE]
        if again:  # successor cases
            more = self.run_cases(again)
            result.notices += more.notices
        return result

    def alerts(self, *alerts: Alert) -> CaseResult:
        grouped = self.group.process(
            [self.record(ALERTS, a.subject.id, a.to_dict()) for a in alerts]
        )
        self.apply(self.groups, grouped)
        return self.run_cases([self.record(t, k, v) for t, k, v in grouped.forwards])

    def act(self, action: CaseAction, record: dict[str, Any] | None = None) -> CaseResult:
        data = record if record is not None else case_action_to_dict(action)
        return self.run_cases([self.record(ACTIONS, action.case_id, data)])

    def only_case(self) -> Any:
        (state,) = self.cases.values()
        return case_from_dict(state)


def events(result: CaseResult) -> list[str]:
    return [n["event"] for _, n in result.notices]


def test_the_first_alert_of_a_subject_opens_a_case_with_its_amount_flagged():
    flow = Flow()
    out = flow.alerts(alert("a", 2, amount=250.0))
    case = flow.only_case()
    assert events(out) == ["opened", "alert"]
    assert (case.step, case.alert_ids, case.total("flagged")) == (
        "first_review",
        (alert("a", 2).alert_id,),
        250.0,
    )
    assert out.money == [("flagged", 250.0)]


def test_alerts_of_one_subject_within_the_grouping_days_join_one_case():
    flow = Flow()
    flow.alerts(alert("a", 2), alert("b", 20))
    assert flow.only_case().alert_count == 2


def test_an_alert_past_the_grouping_days_opens_another_case():
    flow = Flow(group_days=5)
    flow.alerts(alert("a", 2), alert("b", 20))
    assert len(flow.cases) == 2


def test_alerts_of_two_subjects_open_two_cases():
    flow = Flow()
    flow.alerts(alert("a", 2, subject="H1"), alert("b", 2, subject="H2"))
    assert len(flow.cases) == 2


def test_an_info_alert_opens_no_case():
    flow = Flow()
    out = flow.alerts(alert("a", 2, severity="info"))
    assert flow.cases == {} and out.notices == []


def test_a_redelivered_alert_changes_nothing():
    flow = Flow()
    flow.alerts(alert("a", 2))
    out = flow.alerts(alert("a", 2))
    assert out.notices == [] and out.writes == {} and flow.only_case().alert_count == 1


def test_an_action_advances_the_case_and_is_noticed():
    flow = Flow()
    flow.alerts(alert("a", 2))
    case_id = flow.only_case().case_id
    out = flow.act(AdvanceCase(case_id, "li.na", at(3)))
    assert events(out) == ["advanced"] and out.actions == [("case_advance", "applied")]
    assert flow.only_case().step == "re_review"


def test_a_repeated_action_is_counted_as_repeated_and_changes_nothing():
    flow = Flow()
    flow.alerts(alert("a", 2))
    action = AdvanceCase(flow.only_case().case_id, "li.na", at(3))
    flow.act(action)
    out = flow.act(action)
    assert out.actions == [("case_advance", "repeated")] and out.writes == {}


def test_a_refused_transition_is_noticed_with_its_reason_and_changes_nothing():
    flow = Flow()
    flow.alerts(alert("a", 2))
    case_id = flow.only_case().case_id
    out = flow.act(DecideCase(case_id, "confirmed", "intentional_fraud", 10, "w", at(3)))
    ((_, notice),) = out.notices
    assert (notice["event"], notice["reason"]) == ("refused", "wrong_step")
    assert out.writes == {} and out.actions == [("case_decide", "refused")]


def test_an_action_on_an_unknown_case_is_noticed_as_refused():
    out = Flow().act(AdvanceCase("case-nope", "li.na", at(3)))
    ((_, notice),) = out.notices
    assert (notice["reason"], notice["step"]) == ("unknown_case", None)


def test_an_unsigned_case_action_is_dead_lettered_when_signatures_are_required():
    flow = Flow(verify=ActionVerifier(lambda: Keyring({})).check)
    flow.alerts(alert("a", 2))
    out = flow.act(AdvanceCase(flow.only_case().case_id, "li.na", at(3)))
    assert [d.reason for d in out.dead_letters] == ["unsigned_action"]
    assert flow.only_case().step == "first_review"


def test_a_case_action_signed_by_its_author_is_applied():
    signer = ActionSigner.generate()
    ring = Keyring.of([TrustedKey("li.na", signer.public_key)])
    flow = Flow(verify=ActionVerifier(lambda: ring).check)
    flow.alerts(alert("a", 2))
    action = AdvanceCase(flow.only_case().case_id, "li.na", at(3))
    flow.act(action, signer.sign(case_action_to_dict(action)))
    assert flow.only_case().step == "re_review"


def test_other_actions_on_the_topic_are_left_to_the_sanctions():
    flow = Flow(verify=ActionVerifier(lambda: Keyring({})).check)
    review = {"schema": "action.v1", "type": "review", "alert_id": "alr-1", "verdict": "confirmed",
              "by": "li", "at": at(3)}  # fmt: skip
    out = flow.run_cases([flow.record(ACTIONS, "alr-1", review)])
    assert (out.dead_letters, out.notices, out.actions) == ([], [], [])


def test_a_bad_case_action_is_dead_lettered_and_the_batch_goes_on():
    flow = Flow()
    flow.alerts(alert("a", 2))
    case_id = flow.only_case().case_id
    bad = {
        "schema": "action.v1",
        "type": "case_advance",
        "case_id": case_id,
        "by": "li",
        "at": "soon",
    }
    good = case_action_to_dict(AdvanceCase(case_id, "li", at(3)))
    out = flow.run_cases([flow.record(ACTIONS, case_id, bad), flow.record(ACTIONS, case_id, good)])
    assert [d.reason for d in out.dead_letters] == ["invalid_action"]
    assert flow.only_case().step == "re_review"


def test_money_lines_of_a_decision_and_a_recovery_are_reported():
    flow = Flow()
    flow.alerts(alert("a", 2, amount=None))
    case_id = flow.only_case().case_id
    flow.act(AdvanceCase(case_id, "li", at(3), to="decision"))
    decided = flow.act(DecideCase(case_id, "confirmed", "operational_error", 500, "w", at(4)))
    recovered = flow.act(RecordRecovery(case_id, "recovered", 200, "fin", at(5)))
    assert (decided.money, recovered.money) == ([("confirmed", 500)], [("recovered", 200)])
    assert events(recovered) == ["money"]


def test_an_alert_for_a_closed_case_opens_a_successor_case():
    flow = Flow()
    flow.alerts(alert("a", 2))
    case_id = flow.only_case().case_id
    flow.act(AdvanceCase(case_id, "li", at(3), to="decision"))
    flow.act(DecideCase(case_id, "not_confirmed", None, 0, "w", at(4)))
    flow.act(AdvanceCase(case_id, "li", at(5)))
    flow.alerts(alert("b", 6))
    flow.alerts(alert("c", 7))
    closed = case_from_dict(flow.cases[case_id])
    assert closed.step == "closed" and closed.alert_count == 1 and closed.successor is not None
    assert case_from_dict(flow.cases[closed.successor]).alert_count == 2


def test_the_tick_notices_an_overdue_case_once_and_counts_it_per_step():
    flow = Flow()
    flow.alerts(alert("a", 2))
    late = datetime.fromisoformat("2026-04-01T00:00:00+08:00").timestamp()
    first = flow.case.tick(list(flow.cases), late, lambda key: 0)
    flow.apply(flow.cases, first)
    second = flow.case.tick(list(flow.cases), late, lambda key: 0)
    assert events(first) == ["overdue"] and second.notices == []
    assert first.overdue["first_review"] == 1 and second.overdue["first_review"] == 1


def test_the_tick_counts_nothing_before_the_due_time():
    flow = Flow()
    flow.alerts(alert("a", 2))
    soon = datetime.fromisoformat("2026-03-03T00:00:00+08:00").timestamp()
    out = flow.case.tick(list(flow.cases), soon, lambda key: 0)
    assert out.notices == [] and sum(out.overdue.values()) == 0


def test_what_is_not_an_alert_or_an_action_is_left_to_the_sanctions_to_dead_letter():
    flow = Flow()
    grouped = flow.group.process([flow.record(ALERTS, "x", b"{broken")])
    cased = flow.run_cases([flow.record(ACTIONS, "x", b"[1]")])
    assert (grouped.dead_letters, cased.dead_letters) == ([], [])


def test_grouping_records_older_than_twice_the_grouping_days_are_stale():
    from claimstream.cases.processor import stale_groups

    now = datetime.fromisoformat("2026-05-01T00:00:00+08:00").timestamp()
    records = [
        ("institution:H1", {"first": now - 61 * 86400}),
        ("doctor:D1", {"first": now - 59 * 86400}),
    ]
    assert stale_groups(records, now, 30) == ["institution:H1"]


def decided_case(outcome: str = "confirmed", nature: str | None = "intentional_fraud",
                 named: tuple[str, ...] = ()) -> tuple[Flow, DecideCase, CaseResult]:  # fmt: skip
    flow = Flow()
    flow.alerts(alert("a", 2), alert("b", 3))
    case_id = flow.only_case().case_id
    flow.act(AdvanceCase(case_id, "li", at(4), to="decision"))
    amount = 0 if nature is None else 150.0
    decision = DecideCase(case_id, outcome, nature, amount, "w", at(5), "", named)  # type: ignore[arg-type]
    return flow, decision, flow.act(decision)


def sent(result: CaseResult) -> list[tuple[str, str, str, Any]]:
    """(topic, key, envelope type, the decision's outcome) of each forward to the sanctions."""
    return [
        (t, k, (body := orjson.loads(v))["type"], body["action"]["outcome"])
        for t, k, v in result.forwards
        if t in (REPARTITION_ALERT, REPARTITION_SUBJECT)
    ]


A, B = stable_id("alr", "a"), stable_id("alr", "b")


@pytest.mark.parametrize(
    ("outcome", "nature", "named", "expect"),
    [
        ("confirmed", "intentional_fraud", (),
         [(REPARTITION_ALERT, A, "case_verdict"), (REPARTITION_ALERT, B, "case_verdict"),
          (REPARTITION_SUBJECT, "institution:H1", "case_decision")]),
        ("confirmed", "operational_error", (),
         [(REPARTITION_ALERT, A, "case_verdict"), (REPARTITION_ALERT, B, "case_verdict"),
          (REPARTITION_SUBJECT, "institution:H1", "case_decision")]),
        ("partly_confirmed", "operational_error", (B,),
         [(REPARTITION_ALERT, A, "case_verdict"), (REPARTITION_ALERT, B, "case_verdict"),
          (REPARTITION_SUBJECT, "institution:H1", "case_decision")]),
        ("partly_confirmed", "intentional_fraud", (),
         [(REPARTITION_SUBJECT, "institution:H1", "case_decision")]),
        ("not_confirmed", None, (),
         [(REPARTITION_ALERT, A, "case_verdict"), (REPARTITION_ALERT, B, "case_verdict")]),
    ],
)  # fmt: skip
def test_a_decision_is_sent_to_the_sanctions_as_the_table_says(outcome, nature, named, expect):
    _, _, out = decided_case(outcome, nature, named)
    assert [s[:3] for s in sent(out)] == expect
    assert {s[3] for s in sent(out)} == {outcome}


def test_a_redelivered_decision_sends_nothing_again():
    flow, decision, _ = decided_case()
    again = flow.act(decision)
    assert again.forwards == [] and again.actions == [("case_decide", "repeated")]


def test_a_refused_decision_sends_nothing():
    flow = Flow()
    flow.alerts(alert("a", 2))
    case_id = flow.only_case().case_id
    out = flow.act(DecideCase(case_id, "confirmed", "intentional_fraud", 10, "w", at(5)))
    assert events(out) == ["refused"] and out.forwards == []


def test_the_decision_forwarded_is_the_signed_record_as_published():
    signer = ActionSigner.generate()
    ring = Keyring.of([TrustedKey("w", signer.public_key)])
    flow = Flow(verify=ActionVerifier(lambda: ring).check)
    flow.alerts(alert("a", 2))
    case_id = flow.only_case().case_id
    advance = AdvanceCase(case_id, "w", at(4), to="decision")
    flow.act(advance, signer.sign(case_action_to_dict(advance)))
    decision = DecideCase(case_id, "confirmed", "operational_error", 10, "w", at(5))
    record = signer.sign(case_action_to_dict(decision))
    out = flow.act(decision, record)
    assert {orjson.dumps(orjson.loads(v)["action"]) for _, _, v in out.forwards} == {
        orjson.dumps(record)
    }
