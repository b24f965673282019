"""Reports from the public (举报): who reported what, and the deadlines the answer must meet.

A report comes by hotline, web or letter: a reporter (anonymous, or real-name with a contact),
the subject reported (free text, optionally a `Subject` once identified), a description and
references to evidence. Deadlines (`ReportSettings`, defaults from the seeds and the national
rules), all counted from receipt:

* respond (acknowledge) within 48 hours;
* decide whether to accept it, and tell a real-name reporter, within 5 working days (the
  holiday calendar of `claimstream.cases.calendar`);
* give feedback within 7 days.

Accepted, a report is linked to a case; a reward paid is recorded with who and when. The
reporter's contact never appears in `repr`, in `public_view` (what a supervisor list without
the `reporter` right shows) or in anything logged; only `full_view` carries it. Pure: times are
RFC 3339 strings with offsets passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from claimstream.cases.calendar import WorkingCalendar
from claimstream.cases.case import ts_of
from claimstream.model.outputs import Subject, stable_id

Channel = Literal["hotline", "web", "letter", "visit"]
CHANNELS: tuple[Channel, ...] = ("hotline", "web", "letter", "visit")
Status = Literal["received", "acknowledged", "accepted", "rejected"]
Deadline = Literal["respond", "accept", "feedback"]
HOUR = 3600.0


@dataclass(frozen=True, slots=True)
class ReportSettings:
    respond_hours: float = 48
    accept_working_days: int = 5
    feedback_days: float = 7

    def validate(self) -> None:
        if self.respond_hours <= 0 or self.feedback_days <= 0 or self.accept_working_days < 1:
            raise ValueError("report deadlines must be > 0")


@dataclass(frozen=True, slots=True)
class Reporter:
    anonymous: bool
    name: str = ""
    contact: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.anonymous and (self.name or self.contact):
            raise ValueError("an anonymous reporter has no name or contact")
        if not self.anonymous and not (self.name and self.contact):
            raise ValueError("a real-name reporter needs a name and a contact")


@dataclass(frozen=True, slots=True)
class Report:
    report_id: str
    received_at: str
    channel: Channel
    reporter: Reporter
    about: str
    description: str
    evidence: tuple[str, ...] = ()
    subject: Subject | None = None
    status: Status = "received"
    acknowledged_at: str | None = None
    decided_at: str | None = None
    told_reporter_at: str | None = None
    feedback_at: str | None = None
    case_id: str | None = None
    reason: str = ""
    reward: float | None = None
    reward_by: str | None = None
    reward_at: str | None = None


def new_report(
    received_at: str,
    channel: Channel,
    reporter: Reporter,
    about: str,
    description: str,
    evidence: tuple[str, ...] = (),
    subject: Subject | None = None,
) -> Report:
    ts_of(received_at)
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}")
    if not about.strip() or not description.strip():
        raise ValueError("a report needs what it is about and a description")
    report_id = stable_id("rpt", received_at, channel, about, description)
    return Report(report_id, received_at, channel, reporter, about, description, evidence, subject)


def deadlines(
    report: Report, settings: ReportSettings, calendar: WorkingCalendar
) -> dict[str, float]:
    """POSIX times by which to respond, decide on acceptance (and tell a real-name reporter),
    and give feedback."""
    received = ts_of(report.received_at)
    return {
        "respond": received + settings.respond_hours * HOUR,
        "accept": calendar.deadline(received, settings.accept_working_days),
        "feedback": received + settings.feedback_days * 24 * HOUR,
    }


def missed(
    report: Report, now: float, settings: ReportSettings, calendar: WorkingCalendar
) -> list[Deadline]:
    """The deadlines passed at event time `now` without what they ask for done in time."""
    due = deadlines(report, settings, calendar)

    def late(done: str | None, by: float) -> bool:
        return (ts_of(done) if done is not None else now) >= by

    out: list[Deadline] = []
    if late(report.acknowledged_at, due["respond"]):
        out.append("respond")
    decided = report.decided_at
    if not report.reporter.anonymous:
        decided = report.told_reporter_at  # a real-name reporter must also be told
    if late(decided, due["accept"]):
        out.append("accept")
    if late(report.feedback_at, due["feedback"]):
        out.append("feedback")
    return out


def acknowledge(report: Report, at: str) -> Report:
    ts_of(at)
    if report.acknowledged_at is not None:
        return report
    return replace(report, status="acknowledged", acknowledged_at=at)


def accept(report: Report, case_id: str, at: str, *, told_reporter: bool = True) -> Report:
    """Accepted and linked to `case_id` (a real-name reporter told at the same time when
    `told_reporter`)."""
    _undecided(report)
    ts_of(at)
    told = at if told_reporter and not report.reporter.anonymous else None
    return replace(
        report,
        status="accepted",
        decided_at=at,
        told_reporter_at=told,
        case_id=case_id,
        acknowledged_at=report.acknowledged_at or at,
    )


def reject(report: Report, reason: str, at: str, *, told_reporter: bool = True) -> Report:
    _undecided(report)
    ts_of(at)
    if not reason.strip():
        raise ValueError("a rejection needs a reason")
    told = at if told_reporter and not report.reporter.anonymous else None
    return replace(
        report,
        status="rejected",
        decided_at=at,
        told_reporter_at=told,
        reason=reason,
        acknowledged_at=report.acknowledged_at or at,
    )


def give_feedback(report: Report, at: str) -> Report:
    if report.decided_at is None:
        raise ValueError("feedback follows the decision on acceptance")
    ts_of(at)
    return replace(report, feedback_at=at)


def pay_reward(report: Report, amount: float, by: str, at: str) -> Report:
    if report.status != "accepted":
        raise ValueError("a reward is paid on an accepted report only")
    if report.reward is not None:
        raise ValueError("the reward is paid already")
    if amount <= 0:
        raise ValueError("a reward must be > 0")
    ts_of(at)
    return replace(report, reward=round(amount, 2), reward_by=by, reward_at=at)


def _undecided(report: Report) -> None:
    if report.status in ("accepted", "rejected"):
        raise ValueError(f"the report is {report.status} already")


def public_view(report: Report) -> dict[str, Any]:
    """The report without the reporter's identity or contact."""
    return {
        "report_id": report.report_id,
        "received_at": report.received_at,
        "channel": report.channel,
        "anonymous": report.reporter.anonymous,
        "about": report.about,
        "status": report.status,
        "case_id": report.case_id,
        "reward": report.reward,
    }


def full_view(report: Report) -> dict[str, Any]:
    """Everything, the reporter's contact included (for the role allowed to see it)."""
    return public_view(report) | {
        "reporter": {
            "anonymous": report.reporter.anonymous,
            "name": report.reporter.name,
            "contact": report.reporter.contact,
        },
        "description": report.description,
        "evidence": list(report.evidence),
    }
