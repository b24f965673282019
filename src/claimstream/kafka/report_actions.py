"""Report actions from user input: what `claimstream reports ...`, `POST /v1/reports...` and
the console share.

Each builder validates untrusted input and returns a `claimstream.cases.report_actions`
action, or raises `ValueError` naming the field (the CLI exits 2, the API answers 400), so all
three refuse the same bad input with the same words before anything is published. Publishing is
`claimstream.kafka.actions` (`publish_action`, `encode_action`), which signs and keys a report
action by its report id.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from claimstream.cases.actions import amount_of
from claimstream.cases.report_actions import (
    AcceptReport,
    AcknowledgeReport,
    PayReward,
    ReceiveReport,
    RejectReport,
    ReportFeedback,
    case_for_report,
    evidence_of,
    flag,
    optional,
    report_id_of,
    reporter_of,
    text,
)
from claimstream.cases.reports import CHANNELS, derive_report_id
from claimstream.kafka.actions import normalize_at, parse_scope
from claimstream.model.ids import id_problem
from claimstream.model.outputs import Subject

__all__ = [
    "accept_from_input",
    "acknowledge_from_input",
    "feedback_from_input",
    "receive_from_input",
    "reject_from_input",
    "reward_from_input",
]


def _subject(value: object, name: str = "subject") -> Subject | None:
    if value is None or value == "":
        return None
    try:
        scope = parse_scope(value)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    if scope.drug_code:
        raise ValueError(f"{name} must be KIND:ID, not one drug of it")
    return Subject(scope.kind, scope.id)


def _flag(value: object, name: str) -> bool:
    return True if value is None else flag(value, name)


def receive_from_input(
    *,
    channel: object,
    reporter: object,
    about: object,
    description: object,
    by: object,
    subject: object = None,
    evidence: object = None,
    report_id: object = None,
    received_at: str | None = None,
    tz: tzinfo,
) -> ReceiveReport:
    """A report as the front desk received it. Without `report_id` its id is derived from what
    it says and who says it, and the receipt time when given (else the local day), so a
    retried submission is the same report."""
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
    who = reporter_of(reporter)
    about_text = text(about, "about", 500)
    description_text = text(description, "description")
    refs = evidence_of(evidence)
    try:
        at = normalize_at(received_at, tz)
    except ValueError as exc:
        raise ValueError(f"received_{exc}") from None  # "at must be ..." -> "received_at ..."
    if report_id is None or report_id == "":
        given = received_at is not None and bool(received_at.strip())
        day = at if given else datetime.fromisoformat(at).astimezone(tz).date().isoformat()
        report_id = derive_report_id(str(channel), who, about_text, description_text, refs, day)
    return ReceiveReport(
        report_id_of(report_id),
        channel,
        who,
        about_text,
        description_text,
        text(by, "by", 128),
        at,
        refs,
        _subject(subject),
    )


def acknowledge_from_input(
    report_id: object, by: object, *, note: object = None, at: str | None = None, tz: tzinfo
) -> AcknowledgeReport:
    return AcknowledgeReport(
        report_id_of(report_id), text(by, "by", 128), normalize_at(at, tz), optional(note, "note")
    )


def accept_from_input(
    report_id: object,
    by: object,
    *,
    case_id: object = None,
    subject: object = None,
    institution_id: object = None,
    told_reporter: object = None,
    note: object = None,
    at: str | None = None,
    tz: tzinfo,
) -> AcceptReport:
    """Accepted into the existing case `case_id`, or into a new case for `subject`; exactly one
    of the two."""
    rid = report_id_of(report_id)
    new_for = _subject(subject)
    has_case = case_id is not None and case_id != ""
    if has_case == (new_for is not None):
        raise ValueError("give case_id (an existing case) or subject (a new case), not both")
    if has_case:
        target = text(case_id, "case_id", 128)
        if (problem := id_problem("case_id", target)) is not None:
            raise ValueError(problem)
    else:
        target = case_for_report(rid)
    institution = optional(institution_id, "institution_id", 128) or None
    if new_for is not None and institution is None and new_for.kind == "institution":
        institution = new_for.id
    return AcceptReport(
        rid,
        target,
        text(by, "by", 128),
        normalize_at(at, tz),
        new_for,
        institution if new_for is not None else None,
        _flag(told_reporter, "told_reporter"),
        optional(note, "note"),
    )


def reject_from_input(
    report_id: object,
    reason: object,
    by: object,
    *,
    told_reporter: object = None,
    at: str | None = None,
    tz: tzinfo,
) -> RejectReport:
    return RejectReport(
        report_id_of(report_id),
        text(reason, "reason"),
        text(by, "by", 128),
        normalize_at(at, tz),
        _flag(told_reporter, "told_reporter"),
    )


def feedback_from_input(
    report_id: object, by: object, *, note: object = None, at: str | None = None, tz: tzinfo
) -> ReportFeedback:
    return ReportFeedback(
        report_id_of(report_id), text(by, "by", 128), normalize_at(at, tz), optional(note, "note")
    )


def reward_from_input(
    report_id: object,
    amount: object,
    by: object,
    *,
    reference: object = None,
    at: str | None = None,
    tz: tzinfo,
) -> PayReward:
    if isinstance(amount, str):
        try:
            amount = float(amount)
        except ValueError:
            raise ValueError(f"amount must be a number, got {amount!r}") from None
    return PayReward(
        report_id_of(report_id),
        amount_of(amount, "amount"),
        text(by, "by", 128),
        normalize_at(at, tz),
        optional(reference, "reference", 200),
    )
