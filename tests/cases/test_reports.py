from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
import pytest

from claimstream.cases.calendar import load_calendar
from claimstream.cases.reports import (
    Reporter,
    ReportRefused,
    ReportSettings,
    accept,
    acknowledge,
    deadlines,
    derive_report_id,
    detail_view,
    full_view,
    give_feedback,
    missed,
    new_report,
    next_due,
    notify_overdue,
    overdue,
    pay_reward,
    public_view,
    reject,
    report_from_dict,
    report_to_dict,
)

SH = ZoneInfo("Asia/Shanghai")
CAL = load_calendar(None, SH)
SET = ReportSettings()
T0 = "2026-03-06T10:00:00+08:00"  # a Friday
NAMED = Reporter(False, "Zhang San", "138-0000-0000")


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def report(reporter: Reporter = NAMED):
    return new_report(T0, "hotline", reporter, "pharmacy on Elm St", "sells cards", ("photo-1",))


def test_the_response_is_due_48_hours_after_receipt():
    assert deadlines(report(), SET, CAL)["respond"] == ts("2026-03-08T10:00:00+08:00")


def test_acceptance_is_due_at_the_end_of_the_fifth_working_day():
    # Friday 6 March + 5 working days = Friday 13 March, ending at midnight
    assert deadlines(report(), SET, CAL)["accept"] == ts("2026-03-14T00:00:00+08:00")


def test_feedback_is_due_7_days_after_receipt():
    assert deadlines(report(), SET, CAL)["feedback"] == ts("2026-03-13T10:00:00+08:00")


def test_nothing_is_missed_before_the_first_deadline():
    assert missed(report(), ts("2026-03-08T09:59:59+08:00"), SET, CAL) == []


def test_an_unanswered_report_misses_its_response_deadline():
    assert missed(report(), ts("2026-03-08T10:00:00+08:00"), SET, CAL) == ["respond"]


def test_a_report_acknowledged_in_time_misses_nothing_then():
    done = acknowledge(report(), "2026-03-07T09:00:00+08:00")
    assert missed(done, ts("2026-03-09T00:00:00+08:00"), SET, CAL) == []


def test_a_late_acknowledgement_stays_missed():
    done = acknowledge(report(), "2026-03-09T09:00:00+08:00")
    assert missed(done, ts("2026-03-09T10:00:00+08:00"), SET, CAL) == ["respond"]


def test_a_real_name_reporter_not_told_misses_the_acceptance_deadline():
    done = accept(report(), "case-1", "2026-03-07T09:00:00+08:00", told_reporter=False)
    assert "accept" in missed(done, ts("2026-03-14T00:00:00+08:00"), SET, CAL)


def test_an_anonymous_report_needs_only_the_decision_in_time():
    done = accept(
        report(Reporter(True)), "case-1", "2026-03-07T09:00:00+08:00", told_reporter=False
    )
    assert "accept" not in missed(done, ts("2026-03-14T00:00:00+08:00"), SET, CAL)


def test_feedback_in_time_meets_every_deadline():
    done = give_feedback(
        accept(report(), "case-1", "2026-03-07T09:00:00+08:00"), "2026-03-12T09:00:00+08:00"
    )
    assert missed(done, ts("2026-04-01T00:00:00+08:00"), SET, CAL) == []


def test_an_accepted_report_is_linked_to_its_case():
    assert accept(report(), "case-1", T0).case_id == "case-1"


def test_a_report_is_decided_once():
    with pytest.raises(ValueError, match="accepted already"):
        reject(accept(report(), "case-1", T0), "no grounds", T0)


def test_a_rejection_needs_a_reason():
    with pytest.raises(ValueError, match="reason"):
        reject(report(), " ", T0)


def test_a_reward_is_paid_once_on_an_accepted_report():
    paid = pay_reward(accept(report(), "case-1", T0), 500, "fin", "2026-04-01T10:00:00+08:00")
    assert (paid.reward, paid.reward_by) == (500, "fin")
    with pytest.raises(ValueError, match="already"):
        pay_reward(paid, 500, "fin", T0)


def test_no_reward_on_a_rejected_report():
    with pytest.raises(ValueError, match="accepted"):
        pay_reward(reject(report(), "no grounds", T0), 500, "fin", T0)


def test_the_contact_is_in_no_repr_and_no_public_view():
    shown = repr(report()) + repr(public_view(report()))
    assert "138-0000-0000" not in shown and "Zhang San" not in repr(public_view(report()))


def test_the_full_view_carries_the_contact():
    assert full_view(report())["reporter"]["contact"] == "138-0000-0000"


def test_a_real_name_reporter_needs_a_contact():
    with pytest.raises(ValueError, match="contact"):
        Reporter(False, "Zhang San", "")


def test_an_anonymous_reporter_has_no_contact():
    with pytest.raises(ValueError, match="anonymous"):
        Reporter(True, "", "138")


def test_an_unanswered_report_is_overdue_to_respond_from_its_deadline():
    assert overdue(report(), ts("2026-03-08T10:00:00+08:00"), SET, CAL) == ["respond"]


def test_a_stage_done_late_is_missed_but_no_longer_overdue():
    done = acknowledge(report(), "2026-03-09T09:00:00+08:00")
    now = ts("2026-03-09T10:00:00+08:00")
    assert (missed(done, now, SET, CAL), overdue(done, now, SET, CAL)) == (["respond"], [])


def test_an_overdue_stage_is_notified_once():
    now = ts("2026-03-08T10:00:00+08:00")
    marked, fresh = notify_overdue(report(), now, SET, CAL)
    assert (fresh, notify_overdue(marked, now, SET, CAL)[1]) == (["respond"], [])


def test_the_next_deadline_is_the_earliest_not_met():
    done = acknowledge(report(), T0)
    assert next_due(done, SET, CAL) == ("feedback", ts("2026-03-13T10:00:00+08:00"))


def test_feedback_before_the_decision_is_refused_as_undecided():
    with pytest.raises(ReportRefused) as refused:
        give_feedback(report(), T0)
    assert refused.value.reason == "undecided"


def test_a_report_survives_its_table_state():
    done = accept(acknowledge(report(), T0), "case-1", T0)
    assert report_from_dict(orjson.loads(orjson.dumps(report_to_dict(done)))) == done


def test_the_detail_view_has_no_name_and_no_contact():
    shown = orjson.dumps(detail_view(report())).decode()
    assert "138-0000-0000" not in shown and "Zhang San" not in shown


def test_the_same_submission_derives_the_same_id_and_another_text_another():
    one = derive_report_id("web", NAMED, "a", "b", (), "2026-03-06")
    assert one == derive_report_id("web", NAMED, "a", "b", (), "2026-03-06")
    assert one != derive_report_id("web", NAMED, "a", "c", (), "2026-03-06")
