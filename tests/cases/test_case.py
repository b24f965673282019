from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from claimstream.cases.actions import (
    STEPS,
    AdvanceCase,
    AssignCase,
    DecideCase,
    OpenCase,
    RecordRecovery,
    case_action_from_dict,
    case_action_to_dict,
)
from claimstream.cases.calendar import load_calendar
from claimstream.cases.case import (
    Case,
    CaseSettings,
    Procedure,
    Refusal,
    Unchanged,
    case_from_dict,
    case_to_dict,
    group,
    summary,
)
from claimstream.model.outputs import Subject

SH = ZoneInfo("Asia/Shanghai")
PROC = Procedure(CaseSettings(), load_calendar(None, SH))
H1 = Subject("institution", "H1")
T0 = "2026-03-02T10:00:00+08:00"  # a Monday


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def opened() -> Case:
    result = PROC.apply(None, OpenCase(H1, "li.na", T0, institution_id="H1"))
    assert isinstance(result, Case)
    return result


def ok(result: object) -> Case:
    assert isinstance(result, Case), result
    return result


def refused(result: object, reason: str) -> None:
    assert isinstance(result, Refusal), result
    assert result.reason == reason


def at_step(step: str) -> Case:
    case = opened()
    day = 3
    while case.step != step:
        case = ok(
            PROC.apply(
                case, AdvanceCase(case.case_id, "li.na", f"2026-03-{day:02d}T10:00:00+08:00")
            )
        )
        day += 1
    return case


def decided(amount: float = 1000.0) -> Case:
    case = at_step("decision")
    return ok(
        PROC.apply(
            case,
            DecideCase(
                case.case_id,
                "confirmed",
                "operational_error",
                amount,
                "wang",
                "2026-03-10T10:00:00+08:00",
            ),
        )
    )


def test_a_case_opened_by_hand_starts_at_first_review_due_in_15_working_days():
    case = opened()
    assert case.step == "first_review"
    assert case.due == ts("2026-03-24T00:00:00+08:00")  # end of Monday 23 March


def test_opening_the_same_case_twice_changes_nothing():
    case = opened()
    assert isinstance(PROC.apply(case, OpenCase(H1, "li.na", T0)), Unchanged)


@pytest.mark.parametrize("n", range(5))
def test_advance_moves_to_the_next_step_with_its_own_deadline(n):
    case = at_step(STEPS[n])
    at = "2026-03-20T10:00:00+08:00"  # a Friday
    after = ok(PROC.apply(case, AdvanceCase(case.case_id, "li.na", at))) if n < 4 else None
    if after is None:
        refused(PROC.apply(case, AdvanceCase(case.case_id, "li.na", at)), "undecided")
        return
    assert after.step == STEPS[n + 1]
    assert after.step_started_at == at
    assert after.due == PROC.calendar.deadline(ts(at), 15)


def test_a_decided_case_advances_to_closed_without_a_deadline():
    case = ok(
        PROC.apply(decided(), AdvanceCase(opened().case_id, "li.na", "2026-03-11T10:00:00+08:00"))
    )
    assert case.step == "closed"
    assert case.due is None


def test_advance_may_skip_an_appeal_that_was_not_lodged():
    case = at_step("re_review")
    after = ok(
        PROC.apply(
            case,
            AdvanceCase(case.case_id, "li.na", "2026-03-12T10:00:00+08:00", to="investigation"),
        )
    )
    assert after.step == "investigation"
    assert after.history[-1].note.startswith("skipped appeal")


def test_advance_backwards_is_refused():
    case = at_step("investigation")
    refused(
        PROC.apply(
            case, AdvanceCase(case.case_id, "li.na", "2026-03-12T10:00:00+08:00", to="re_review")
        ),
        "not_later",
    )


def test_advance_to_the_same_step_is_refused():
    case = at_step("appeal")
    refused(
        PROC.apply(
            case, AdvanceCase(case.case_id, "li.na", "2026-03-12T10:00:00+08:00", to="appeal")
        ),
        "not_later",
    )


def test_skipping_the_decision_step_is_refused():
    case = at_step("investigation")
    refused(
        PROC.apply(
            case, AdvanceCase(case.case_id, "li.na", "2026-03-12T10:00:00+08:00", to="closed")
        ),
        "undecided",
    )


def test_a_closed_case_refuses_every_action():
    case = ok(
        PROC.apply(decided(), AdvanceCase(opened().case_id, "li.na", "2026-03-11T10:00:00+08:00"))
    )
    at = "2026-03-12T10:00:00+08:00"
    refused(PROC.apply(case, AdvanceCase(case.case_id, "x", at)), "closed")
    refused(PROC.apply(case, AssignCase(case.case_id, "zhao", "x", at)), "closed")
    refused(PROC.apply(case, DecideCase(case.case_id, "not_confirmed", None, 0, "x", at)), "closed")


def test_an_action_on_an_unknown_case_is_refused():
    refused(PROC.apply(None, AdvanceCase("case-x", "li.na", T0)), "unknown_case")


def test_a_repeated_action_changes_nothing():
    case = opened()
    action = AdvanceCase(case.case_id, "li.na", "2026-03-03T10:00:00+08:00")
    once = ok(PROC.apply(case, action))
    assert isinstance(PROC.apply(once, action), Unchanged)


def test_assign_sets_the_owner():
    case = opened()
    assert (
        ok(PROC.apply(case, AssignCase(case.case_id, "zhao.lei", "li.na", T0))).owner == "zhao.lei"
    )


def test_a_decision_before_the_decision_step_is_refused():
    case = at_step("investigation")
    refused(
        PROC.apply(case, DecideCase(case.case_id, "confirmed", "intentional_fraud", 10, "w", T0)),
        "wrong_step",
    )


def test_a_confirmed_decision_records_the_confirmed_amount():
    case = decided(1200.5)
    assert case.decision is not None and case.decision.nature == "operational_error"
    assert case.total("confirmed") == 1200.5


def test_a_confirmed_decision_needs_a_nature():
    case = at_step("decision")
    refused(
        PROC.apply(case, DecideCase(case.case_id, "partly_confirmed", None, 10, "w", T0)), "invalid"
    )


def test_a_confirmed_decision_needs_an_amount():
    case = at_step("decision")
    refused(
        PROC.apply(case, DecideCase(case.case_id, "confirmed", "intentional_fraud", 0, "w", T0)),
        "invalid",
    )


def test_not_confirmed_takes_no_nature():
    case = at_step("decision")
    refused(
        PROC.apply(
            case, DecideCase(case.case_id, "not_confirmed", "operational_error", 0, "w", T0)
        ),
        "invalid",
    )


def test_a_second_decision_is_refused():
    case = decided()
    refused(
        PROC.apply(
            case,
            DecideCase(case.case_id, "not_confirmed", None, 0, "w", "2026-03-11T10:00:00+08:00"),
        ),
        "decided",
    )


def test_a_not_confirmed_case_closes_with_no_money_confirmed():
    case = at_step("decision")
    case = ok(PROC.apply(case, DecideCase(case.case_id, "not_confirmed", None, 0, "w", T0)))
    closed = ok(PROC.apply(case, AdvanceCase(case.case_id, "w", "2026-03-11T10:00:00+08:00")))
    assert closed.step == "closed" and closed.total("confirmed") == 0


def test_recoveries_are_summed_with_who_and_when():
    case = decided(1000)
    case = ok(
        PROC.apply(
            case,
            RecordRecovery(
                case.case_id,
                "deducted",
                600,
                "fin",
                "2026-03-12T10:00:00+08:00",
                "settlement 2026-03",
            ),
        )
    )
    case = ok(
        PROC.apply(
            case, RecordRecovery(case.case_id, "recovered", 400, "fin", "2026-04-01T10:00:00+08:00")
        )
    )
    assert case.totals() == {"flagged": 0, "confirmed": 1000, "deducted": 600, "recovered": 400}
    assert case.money[-1].by == "fin" and case.money[-1].at.startswith("2026-04-01")


def test_recovering_more_than_confirmed_is_refused():
    case = decided(1000)
    case = ok(
        PROC.apply(
            case, RecordRecovery(case.case_id, "deducted", 600, "fin", "2026-03-12T10:00:00+08:00")
        )
    )
    refused(
        PROC.apply(
            case,
            RecordRecovery(case.case_id, "recovered", 400.01, "fin", "2026-03-13T10:00:00+08:00"),
        ),
        "over_confirmed",
    )


def test_recovering_before_a_decision_is_refused():
    case = at_step("investigation")
    refused(PROC.apply(case, RecordRecovery(case.case_id, "recovered", 1, "fin", T0)), "undecided")


def test_recovering_on_a_not_confirmed_case_is_refused():
    case = at_step("decision")
    case = ok(PROC.apply(case, DecideCase(case.case_id, "not_confirmed", None, 0, "w", T0)))
    refused(PROC.apply(case, RecordRecovery(case.case_id, "recovered", 1, "fin", T0)), "undecided")


def test_an_alert_adds_its_amount_as_flagged_once():
    case = PROC.add_alert(opened(), "alr-1", 250.0, T0, "repeat_dispensing")
    again = PROC.add_alert(case, "alr-1", 250.0, T0, "repeat_dispensing")
    assert again.alert_ids == ("alr-1",) and again.total("flagged") == 250.0
    assert again.alert_count == 1


def test_an_alert_without_an_amount_is_linked_without_money():
    case = PROC.add_alert(opened(), "alr-1", None, T0)
    assert case.alert_ids == ("alr-1",) and case.money == ()


def test_a_full_case_links_no_more_alerts_and_flags_no_more_money():
    proc = Procedure(CaseSettings(max_alerts=2), PROC.calendar)
    case = opened()
    for n in range(3):
        case = proc.add_alert(case, f"alr-{n}", 1.0, T0)
    assert (case.alert_ids, case.alert_count, case.total("flagged")) == (("alr-0", "alr-1"), 2, 2.0)
    assert case.unlinked_alerts == 1


def test_a_step_is_not_overdue_before_its_due_time():
    case = opened()
    assert PROC.overdue(case, ts("2026-03-23T23:59:59+08:00")) is None


def test_a_step_is_overdue_from_its_due_time():
    case = opened()
    assert PROC.overdue(case, ts("2026-03-24T00:00:00+08:00")) == "first_review"


def test_a_closed_case_is_never_overdue():
    case = ok(
        PROC.apply(decided(), AdvanceCase(opened().case_id, "li.na", "2026-03-11T10:00:00+08:00"))
    )
    assert PROC.overdue(case, ts("2027-01-01T00:00:00+08:00")) is None


def test_an_overdue_step_is_notified_once():
    late = ts("2026-04-01T00:00:00+08:00")
    case, step = PROC.notify_overdue(opened(), late)
    assert step == "first_review"
    assert PROC.notify_overdue(case, late)[1] is None


def test_an_alert_within_the_grouping_days_joins_the_subjects_case():
    case_id, state, opened_ = group(None, H1, "alr-1", ts(T0), 30)
    joined, _, again = group(state, H1, "alr-2", ts(T0) + 29 * 86400, 30)
    assert opened_ and not again and joined == case_id


def test_an_alert_past_the_grouping_days_opens_a_new_case():
    case_id, state, _ = group(None, H1, "alr-1", ts(T0), 30)
    other, new_state, opened_ = group(state, H1, "alr-2", ts(T0) + 31 * 86400, 30)
    assert opened_ and other != case_id and new_state["case_id"] == other


def test_a_case_survives_its_json_round_trip():
    case = ok(
        PROC.apply(decided(), RecordRecovery(opened().case_id, "recovered", 5, "fin", T0, "ref"))
    )
    case = PROC.add_alert(case, "alr-9", 3.0, T0)
    assert case_from_dict(case_to_dict(case)) == case


def test_the_summary_marks_an_overdue_case():
    assert summary(opened(), ts("2026-04-01T00:00:00+08:00"))["overdue"] is True


@pytest.mark.parametrize(
    "action",
    [
        OpenCase(H1, "li.na", T0, "by hand", "H1"),
        AdvanceCase("case-1", "li.na", T0, "investigation", "no appeal"),
        AssignCase("case-1", "zhao", "li.na", T0),
        DecideCase("case-1", "partly_confirmed", "intentional_fraud", 12.5, "w", T0, "n"),
        RecordRecovery("case-1", "deducted", 7.25, "fin", T0, "ref-1", "n"),
    ],
)
def test_a_case_action_survives_its_record(action):
    assert case_action_from_dict(case_action_to_dict(action)) == action


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "case_nothing"}, "type must be"),
        ({"to": "somewhere"}, "to must be"),
        ({"at": "2026-03-02T10:00:00"}, "UTC offset"),
        ({"by": ""}, "by must be"),
    ],
)
def test_a_bad_case_action_record_is_refused(change, message):
    record = case_action_to_dict(AdvanceCase("case-1", "li.na", T0)) | change
    with pytest.raises(ValueError, match=message):
        case_action_from_dict(record)


def test_a_recovery_record_with_a_negative_amount_is_refused():
    record = case_action_to_dict(RecordRecovery("case-1", "deducted", 7.25, "fin", T0)) | {
        "amount": -1
    }
    with pytest.raises(ValueError, match="amount must be > 0"):
        case_action_from_dict(record)


def test_step_days_outside_the_bounds_are_refused():
    with pytest.raises(ValueError, match=r"step_days\.appeal"):
        CaseSettings(step_days=dict.fromkeys(STEPS[:-1], 15) | {"appeal": 0}).validate()


def with_alerts(*alert_ids: str) -> Case:
    case = at_step("decision")
    for alert_id in alert_ids:
        case = PROC.add_alert(case, alert_id, 10.0, T0)
    return case


def test_a_partly_confirmed_decision_keeps_the_alerts_it_names():
    case = with_alerts("alr-1", "alr-2")
    decision = DecideCase(
        case.case_id, "partly_confirmed", "operational_error", 10, "w", T0, "", ("alr-2",)
    )
    decided_ = ok(PROC.apply(case, decision))
    assert decided_.decision is not None and decided_.decision.confirmed_alerts == ("alr-2",)
    assert case_from_dict(case_to_dict(decided_)) == decided_


@pytest.mark.parametrize(
    ("outcome", "nature", "amount", "named"),
    [
        ("partly_confirmed", "operational_error", 10, ("alr-9",)),  # not linked to the case
        ("confirmed", "operational_error", 10, ("alr-1",)),  # only partly names alerts
        ("not_confirmed", None, 0, ("alr-1",)),
    ],
)
def test_a_decision_naming_alerts_it_may_not_name_is_refused(outcome, nature, amount, named):
    case = with_alerts("alr-1", "alr-2")
    decision = DecideCase(case.case_id, outcome, nature, amount, "w", T0, "", named)
    refused(PROC.apply(case, decision), "invalid")


def test_a_decision_naming_alerts_survives_its_record_and_has_its_own_id():
    named = DecideCase("case-1", "partly_confirmed", "intentional_fraud", 12.5, "w", T0, "n",
                       ("alr-1",))  # fmt: skip
    plain = DecideCase("case-1", "partly_confirmed", "intentional_fraud", 12.5, "w", T0, "n")
    assert case_action_from_dict(case_action_to_dict(named)) == named
    assert named.action_id != plain.action_id
    assert "confirmed_alerts" not in case_action_to_dict(plain)


def test_a_decision_stored_before_decisions_named_alerts_is_read_back():
    state = case_to_dict(decided())
    del state["decision"]["confirmed_alerts"]
    case = case_from_dict(state)
    assert case.decision is not None and case.decision.confirmed_alerts == ()
