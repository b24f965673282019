from zoneinfo import ZoneInfo

from claimstream.cases.actions import AdvanceCase, DecideCase, OpenCase, RecordRecovery
from claimstream.cases.calendar import load_calendar
from claimstream.cases.case import Case, CaseSettings, Procedure
from claimstream.cases.ledger import LedgerKey, ledger
from claimstream.model.outputs import Subject

SH = ZoneInfo("Asia/Shanghai")
PROC = Procedure(CaseSettings(), load_calendar(None, SH))


def recovered_case(subject: Subject, institution: str) -> Case:
    case = PROC.apply(
        None, OpenCase(subject, "li", "2026-03-02T10:00:00+08:00", institution_id=institution)
    )
    assert isinstance(case, Case)
    case = PROC.add_alert(case, f"alr-{subject.id}", 900.0, "2026-03-02T10:00:00+08:00")
    case = PROC.apply(
        case, AdvanceCase(case.case_id, "li", "2026-03-03T10:00:00+08:00", to="decision")
    )
    assert isinstance(case, Case)
    case = PROC.apply(
        case,
        DecideCase(
            case.case_id,
            "partly_confirmed",
            "operational_error",
            600,
            "w",
            "2026-03-31T20:00:00+08:00",
        ),
    )
    assert isinstance(case, Case)
    # 2026-03-31T17:00Z is 1 April in Shanghai
    case = PROC.apply(
        case, RecordRecovery(case.case_id, "deducted", 400, "fin", "2026-03-31T17:00:00+00:00")
    )
    assert isinstance(case, Case)
    return case


def test_money_is_summed_per_local_month_subject_and_institution():
    rows = ledger([recovered_case(Subject("doctor", "D1"), "H1")], SH).rows
    march = rows[LedgerKey("2026-03", "doctor:D1", "H1")]
    april = rows[LedgerKey("2026-04", "doctor:D1", "H1")]
    assert (march.flagged, march.confirmed, march.deducted) == (900, 600, 0)
    assert april.deducted == 400


def test_a_month_sums_every_subject():
    book = ledger(
        [
            recovered_case(Subject("doctor", "D1"), "H1"),
            recovered_case(Subject("doctor", "D2"), "H2"),
        ],
        SH,
    )
    assert book.month("2026-03").as_dict() == {
        "flagged": 1800,
        "confirmed": 1200,
        "deducted": 0,
        "recovered": 0,
    }


def test_an_institution_sums_its_subjects_across_months():
    book = ledger(
        [
            recovered_case(Subject("doctor", "D1"), "H1"),
            recovered_case(Subject("doctor", "D2"), "H1"),
        ],
        SH,
    )
    totals = book.by_institution("H1")
    assert (totals.confirmed, totals.deducted, totals.outstanding) == (1200, 800, 400)
