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
the `reports:contact` role shows) or in anything logged; only `full_view` carries it, and the
name with it. Pure: times are RFC 3339 strings with offsets passed in.

Transitions (`acknowledge`, `accept`, `reject`, `give_feedback`, `pay_reward`) raise
`ReportRefused` (a `ValueError` with a `reason`, one of `REPORT_REFUSALS`) when the report's
state does not allow them. `overdue` names the stages whose deadline has passed with nothing
done yet (what the stream's tick notices and counts); `missed` also names the stages done late.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

from claimstream.cases.calendar import WorkingCalendar
from claimstream.cases.case import ts_of
from claimstream.model.events import KEY_KINDS, KeyKind
from claimstream.model.outputs import Subject, stable_id

Channel = Literal["hotline", "web", "letter", "visit"]
CHANNELS: tuple[Channel, ...] = ("hotline", "web", "letter", "visit")
Status = Literal["received", "acknowledged", "accepted", "rejected"]
STATUSES: tuple[Status, ...] = ("received", "acknowledged", "accepted", "rejected")
Deadline = Literal["respond", "accept", "feedback"]
DEADLINES: tuple[Deadline, ...] = ("respond", "accept", "feedback")
#: why a report action was refused
REPORT_REFUSALS = ("unknown_report", "decided", "undecided", "not_accepted", "rewarded", "invalid")
HOUR = 3600.0
#: longest text kept of a report's description, about, a reason or a note (characters)
MAX_TEXT = 4000
#: evidence references a report carries at most
MAX_EVIDENCE = 50


class ReportRefused(ValueError):
    """A transition the report's state does not allow; `reason` is one of `REPORT_REFUSALS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


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
    name: str = field(default="", repr=False)
    contact: str = field(default="", repr=False)

    def __post_init__(self) -> None:
        if self.anonymous and (self.name or self.contact):
            raise ValueError("an anonymous reporter has no name or contact")
        if not self.anonymous and not (self.name and self.contact):
            raise ValueError("a real-name reporter needs a name and a contact")


@dataclass(frozen=True, slots=True)
class ReportEntry:
    """One line of a report's timeline: a person's action applied to it."""

    action_id: str
    type: str
    by: str
    at: str
    note: str = ""


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
    received_by: str = ""
    history: tuple[ReportEntry, ...] = ()
    #: stages whose overdue notice has been given (once each)
    notified: tuple[str, ...] = ()

    def applied(self, action_id: str) -> bool:
        return any(e.action_id == action_id for e in self.history)


def derive_report_id(
    channel: str,
    reporter: Reporter,
    about: str,
    description: str,
    evidence: tuple[str, ...],
    when: str,
) -> str:
    """The id of a report given without one: a hash of what it says, who said it and `when`
    (the receipt time the client gave, or the local day it was entered), so a retried
    submission is the same report."""
    who = "anonymous" if reporter.anonymous else f"{reporter.name}\x1e{reporter.contact}"
    return stable_id("rpt", channel, who, about, description, "\x1e".join(evidence), when)


def new_report(
    received_at: str,
    channel: Channel,
    reporter: Reporter,
    about: str,
    description: str,
    evidence: tuple[str, ...] = (),
    subject: Subject | None = None,
    *,
    report_id: str | None = None,
    received_by: str = "",
) -> Report:
    ts_of(received_at)
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {', '.join(CHANNELS)}")
    if not about.strip() or not description.strip():
        raise ValueError("a report needs what it is about and a description")
    if report_id is None:
        report_id = stable_id("rpt", received_at, channel, about, description)
    return Report(
        report_id,
        received_at,
        channel,
        reporter,
        about,
        description,
        evidence,
        subject,
        received_by=received_by,
    )


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


def _done(report: Report) -> dict[Deadline, str | None]:
    """When each stage's deadline was met (None: not yet)."""
    decided = report.decided_at
    if not report.reporter.anonymous:
        decided = report.told_reporter_at  # a real-name reporter must also be told
    return {"respond": report.acknowledged_at, "accept": decided, "feedback": report.feedback_at}


def missed(
    report: Report, now: float, settings: ReportSettings, calendar: WorkingCalendar
) -> list[Deadline]:
    """The deadlines passed at event time `now` without what they ask for done in time."""
    due = deadlines(report, settings, calendar)
    done = _done(report)
    return [
        stage
        for stage in DEADLINES
        if (ts_of(done[stage]) if done[stage] is not None else now) >= due[stage]  # type: ignore[arg-type]
    ]


def overdue(
    report: Report, now: float, settings: ReportSettings, calendar: WorkingCalendar
) -> list[Deadline]:
    """The stages overdue at event time `now`: past their deadline with nothing done yet."""
    due = deadlines(report, settings, calendar)
    done = _done(report)
    return [stage for stage in DEADLINES if done[stage] is None and now >= due[stage]]


def next_due(
    report: Report, settings: ReportSettings, calendar: WorkingCalendar
) -> tuple[Deadline, float] | None:
    """The earliest deadline not met yet (stage, POSIX time), or None when all are met."""
    due = deadlines(report, settings, calendar)
    done = _done(report)
    open_ = [(due[stage], stage) for stage in DEADLINES if done[stage] is None]
    if not open_:
        return None
    when, stage = min(open_)
    return stage, when


def notify_overdue(
    report: Report, now: float, settings: ReportSettings, calendar: WorkingCalendar
) -> tuple[Report, list[Deadline]]:
    """The report marked as notified for each stage found overdue the first time, and those."""
    fresh = [s for s in overdue(report, now, settings, calendar) if s not in report.notified]
    if not fresh:
        return report, []
    return replace(report, notified=(*report.notified, *fresh)), fresh


def _entry(report: Report, entry: ReportEntry | None) -> tuple[ReportEntry, ...]:
    return report.history if entry is None else (*report.history, entry)


def acknowledge(report: Report, at: str, entry: ReportEntry | None = None) -> Report:
    ts_of(at)
    if report.acknowledged_at is not None:
        return replace(report, history=_entry(report, entry))
    status: Status = "acknowledged" if report.status == "received" else report.status
    return replace(report, status=status, acknowledged_at=at, history=_entry(report, entry))


def accept(
    report: Report,
    case_id: str,
    at: str,
    *,
    told_reporter: bool = True,
    entry: ReportEntry | None = None,
) -> Report:
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
        history=_entry(report, entry),
    )


def reject(
    report: Report,
    reason: str,
    at: str,
    *,
    told_reporter: bool = True,
    entry: ReportEntry | None = None,
) -> Report:
    _undecided(report)
    ts_of(at)
    if not reason.strip():
        raise ReportRefused("invalid", "a rejection needs a reason")
    told = at if told_reporter and not report.reporter.anonymous else None
    return replace(
        report,
        status="rejected",
        decided_at=at,
        told_reporter_at=told,
        reason=reason,
        acknowledged_at=report.acknowledged_at or at,
        history=_entry(report, entry),
    )


def tell_reporter(report: Report, at: str, entry: ReportEntry | None = None) -> Report:
    """A real-name reporter told of the decision after it was taken."""
    if report.decided_at is None:
        raise ReportRefused("undecided", "the reporter is told once the report is decided")
    ts_of(at)
    return replace(report, told_reporter_at=report.told_reporter_at or at,
                   history=_entry(report, entry))  # fmt: skip


def give_feedback(report: Report, at: str, entry: ReportEntry | None = None) -> Report:
    if report.decided_at is None:
        raise ReportRefused("undecided", "feedback follows the decision on acceptance")
    ts_of(at)
    return replace(report, feedback_at=report.feedback_at or at, history=_entry(report, entry))


def pay_reward(
    report: Report, amount: float, by: str, at: str, entry: ReportEntry | None = None
) -> Report:
    if report.status != "accepted":
        raise ReportRefused("not_accepted", "a reward is paid on an accepted report only")
    if report.reward is not None:
        raise ReportRefused("rewarded", "the reward is paid already")
    if amount <= 0:
        raise ReportRefused("invalid", "a reward must be > 0")
    ts_of(at)
    return replace(
        report, reward=round(amount, 2), reward_by=by, reward_at=at, history=_entry(report, entry)
    )


def _undecided(report: Report) -> None:
    if report.status in ("accepted", "rejected"):
        raise ReportRefused("decided", f"the report is {report.status} already")


def public_view(report: Report) -> dict[str, Any]:
    """The report without the reporter's identity or contact."""
    return {
        "report_id": report.report_id,
        "received_at": report.received_at,
        "channel": report.channel,
        "anonymous": report.reporter.anonymous,
        "about": report.about,
        "subject": None
        if report.subject is None
        else {"kind": report.subject.kind, "id": report.subject.id},
        "status": report.status,
        "case_id": report.case_id,
        "reward": report.reward,
    }


def detail_view(report: Report) -> dict[str, Any]:
    """One report as a supervisor reads it: what it says, its dates and timeline, without the
    reporter's name or contact."""
    return public_view(report) | {
        "description": report.description,
        "evidence": list(report.evidence),
        "received_by": report.received_by,
        "acknowledged_at": report.acknowledged_at,
        "decided_at": report.decided_at,
        "told_reporter_at": report.told_reporter_at,
        "feedback_at": report.feedback_at,
        "reason": report.reason,
        "reward_by": report.reward_by,
        "reward_at": report.reward_at,
        "history": [
            {"action_id": e.action_id, "type": e.type, "by": e.by, "at": e.at, "note": e.note}
            for e in report.history
        ],
    }


def full_view(report: Report) -> dict[str, Any]:
    """Everything, the reporter's contact included (for the role allowed to see it)."""
    return detail_view(report) | {
        "reporter": {
            "anonymous": report.reporter.anonymous,
            "name": report.reporter.name,
            "contact": report.reporter.contact,
        },
    }


# -- JSON (the table's state) -------------------------------------------------------------------


def report_to_dict(report: Report) -> dict[str, Any]:
    return detail_view(report) | {
        "reporter": {
            "anonymous": report.reporter.anonymous,
            "name": report.reporter.name,
            "contact": report.reporter.contact,
        },
        "notified": list(report.notified),
    }


def subject_of(data: object) -> Subject | None:
    if data is None:
        return None
    if not isinstance(data, Mapping) or data.get("kind") not in KEY_KINDS:
        raise ValueError(f"subject.kind must be one of {', '.join(KEY_KINDS)}")
    id_ = data.get("id")
    if not isinstance(id_, str) or not id_.strip():
        raise ValueError("subject.id must be a non-empty string")
    return Subject(cast(KeyKind, data["kind"]), id_.strip())


def report_from_dict(data: Mapping[str, Any]) -> Report:
    who = data["reporter"]
    return Report(
        report_id=data["report_id"],
        received_at=data["received_at"],
        channel=data["channel"],
        reporter=Reporter(bool(who["anonymous"]), who.get("name") or "", who.get("contact") or ""),
        about=data["about"],
        description=data["description"],
        evidence=tuple(data.get("evidence") or ()),
        subject=subject_of(data.get("subject")),
        status=data["status"],
        acknowledged_at=data.get("acknowledged_at"),
        decided_at=data.get("decided_at"),
        told_reporter_at=data.get("told_reporter_at"),
        feedback_at=data.get("feedback_at"),
        case_id=data.get("case_id"),
        reason=data.get("reason") or "",
        reward=data.get("reward"),
        reward_by=data.get("reward_by"),
        reward_at=data.get("reward_at"),
        received_by=data.get("received_by") or "",
        history=tuple(ReportEntry(**e) for e in data.get("history") or ()),
        notified=tuple(data.get("notified") or ()),
    )
