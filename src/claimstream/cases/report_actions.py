"""What the front desk and the supervisors do with a report from the public, as people's actions
on `claimstream.actions.v1`, keyed by the report id (`claimstream.cases.reports` holds the
report's rules).

Six kinds, added to `action.v1` beside the case actions (new `type` values and fields):

* `report_receive`: the report as received (channel, reporter, what and whom it is about, the
  description, evidence references); its id is the one the client gave (a ticket number) or
  one derived from what it says (`derive_report_id`), so a retried submission is one report;
* `report_acknowledge`: the reporter was answered (the 48-hour response);
* `report_accept`: accepted and linked to a case: an existing one (`case_id`), or a new one
  opened for `subject` (its id derived from the report id, `case_for_report`);
* `report_reject`: rejected, with a reason;
* `report_feedback`: feedback given to the reporter;
* `report_reward`: a reward paid (amount, reference).

`told_reporter` on an acceptance or rejection says the real-name reporter was told (the
deadline of 5 working days asks for it). Each action's id is derived from what it says
(`stable_id`): a redelivery is recognised and changes nothing. `report_action_from_dict`
reads a record back (ValueError naming the field); the receipt's record carries the
reporter's contact, so `audit_body` gives the audit trail a SHA-256 of it instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar, cast

from claimstream.cases.actions import amount_of
from claimstream.cases.case import Case, Entry, Procedure, Refusal, Unchanged, ts_of
from claimstream.cases.reports import (
    CHANNELS,
    MAX_EVIDENCE,
    MAX_TEXT,
    Channel,
    Reporter,
    subject_of,
)
from claimstream.model.ids import id_problem
from claimstream.model.outputs import Subject, stable_id

REPORT_TYPES = (
    "report_receive",
    "report_acknowledge",
    "report_accept",
    "report_reject",
    "report_feedback",
    "report_reward",
)


def case_for_report(report_id: str) -> str:
    """The id of the case opened for an accepted report (one per report)."""
    return stable_id("case", "report", report_id)


@dataclass(frozen=True, slots=True)
class ReceiveReport:
    report_id: str
    channel: Channel
    reporter: Reporter
    about: str
    description: str
    by: str
    at: str
    evidence: tuple[str, ...] = ()
    subject: Subject | None = None

    @property
    def action_id(self) -> str:
        return stable_id("act", "report_receive", self.report_id)


@dataclass(frozen=True, slots=True)
class _NoteOnReport:
    """An action that records only who did what and when, with a note (its `TYPE`)."""

    TYPE: ClassVar[str]
    report_id: str
    by: str
    at: str
    note: str = ""

    @property
    def action_id(self) -> str:
        return stable_id("act", self.TYPE, self.report_id, self.by, self.at)


@dataclass(frozen=True, slots=True)
class AcknowledgeReport(_NoteOnReport):
    TYPE: ClassVar[str] = "report_acknowledge"


@dataclass(frozen=True, slots=True)
class AcceptReport:
    report_id: str
    case_id: str
    by: str
    at: str
    #: the subject of a new case opened for the report (None: `case_id` exists already)
    open_for: Subject | None = None
    institution_id: str | None = None
    told_reporter: bool = True
    note: str = ""

    @property
    def action_id(self) -> str:
        return stable_id("act", "report_accept", self.report_id, self.case_id, self.by, self.at)


@dataclass(frozen=True, slots=True)
class RejectReport:
    report_id: str
    reason: str
    by: str
    at: str
    told_reporter: bool = True

    @property
    def action_id(self) -> str:
        return stable_id("act", "report_reject", self.report_id, self.by, self.at)


@dataclass(frozen=True, slots=True)
class ReportFeedback(_NoteOnReport):
    TYPE: ClassVar[str] = "report_feedback"


@dataclass(frozen=True, slots=True)
class PayReward:
    report_id: str
    amount: float
    by: str
    at: str
    reference: str = ""

    @property
    def action_id(self) -> str:
        return stable_id(
            "act", "report_reward", self.report_id, repr(self.amount), self.by, self.at
        )


ReportAction = (
    ReceiveReport | AcknowledgeReport | AcceptReport | RejectReport | ReportFeedback | PayReward
)
REPORT_ACTION_CLASSES = (
    ReceiveReport,
    AcknowledgeReport,
    AcceptReport,
    RejectReport,
    ReportFeedback,
    PayReward,
)


#: the actions that carry a note only, by type
NOTE_ONLY: dict[str, type[AcknowledgeReport | ReportFeedback]] = {
    AcknowledgeReport.TYPE: AcknowledgeReport,
    ReportFeedback.TYPE: ReportFeedback,
}


def is_report_action(record: Mapping[str, Any]) -> bool:
    return record.get("type") in REPORT_TYPES


def report_action_to_dict(action: ReportAction) -> dict[str, Any]:
    """The `action.v1` record of a report action (topics/schemas/action.v1.json)."""
    out: dict[str, Any] = {"schema": "action.v1", "action_id": action.action_id}
    out["report_id"] = action.report_id
    if isinstance(action, ReceiveReport):
        out |= {
            "type": "report_receive",
            "channel": action.channel,
            "reporter": {
                "anonymous": action.reporter.anonymous,
                "name": action.reporter.name,
                "contact": action.reporter.contact,
            },
            "about": action.about,
            "description": action.description,
            "evidence": list(action.evidence),
        }
        if action.subject is not None:
            out["subject"] = {"kind": action.subject.kind, "id": action.subject.id}
    elif isinstance(action, AcknowledgeReport | ReportFeedback):
        out |= {"type": action.TYPE, "note": action.note}
    elif isinstance(action, AcceptReport):
        out |= {"type": "report_accept", "case_id": action.case_id}
        if action.open_for is not None:
            out["subject"] = {"kind": action.open_for.kind, "id": action.open_for.id}
        if action.institution_id:
            out["institution_id"] = action.institution_id
        out |= {"told_reporter": action.told_reporter, "note": action.note}
    elif isinstance(action, RejectReport):
        out |= {"type": "report_reject", "reason": action.reason}
        out["told_reporter"] = action.told_reporter
    else:
        out |= {"type": "report_reward", "amount": action.amount, "reference": action.reference}
    out |= {"by": action.by, "at": action.at}
    return out


def audit_body(action: ReportAction) -> dict[str, Any]:
    """What the audit trail records of a report action: its record without the reporter's name
    and contact (a SHA-256 of them instead, so a changed one is still detected)."""
    record = report_action_to_dict(action)
    skip = ("schema", "action_id", "type", "at", "reporter")
    body = {"action": record["type"]} | {k: v for k, v in record.items() if k not in skip}
    if isinstance(action, ReceiveReport):
        who = f"{action.reporter.name}\x1e{action.reporter.contact}"
        body["reporter"] = {
            "anonymous": action.reporter.anonymous,
            "sha256": None
            if action.reporter.anonymous
            else hashlib.sha256(who.encode()).hexdigest(),
        }
    return body


def report_action_from_dict(data: Mapping[str, Any]) -> ReportAction:
    """A report action back from its record; ValueError names what is wrong. The action id is
    recomputed, never read."""
    kind = data.get("type")
    by, at = text(data.get("by"), "by"), text(data.get("at"), "at")
    try:
        ts_of(at)
    except ValueError:
        raise ValueError(f"at must be an RFC 3339 time with a UTC offset, got {at!r}") from None
    report_id = report_id_of(data.get("report_id"))
    if kind == "report_receive":
        channel = data.get("channel")
        if channel not in CHANNELS:
            raise ValueError(f"channel must be one of {', '.join(CHANNELS)}, got {channel!r}")
        return ReceiveReport(
            report_id,
            cast(Channel, channel),
            reporter_of(data.get("reporter")),
            text(data.get("about"), "about"),
            text(data.get("description"), "description"),
            by,
            at,
            evidence_of(data.get("evidence")),
            subject_of(data.get("subject")),
        )
    if kind in NOTE_ONLY:
        return NOTE_ONLY[kind](report_id, by, at, optional(data.get("note"), "note"))
    if kind == "report_accept":
        case_id = text(data.get("case_id"), "case_id")
        if (problem := id_problem("case_id", case_id)) is not None:
            raise ValueError(problem)
        open_for = subject_of(data.get("subject"))
        if open_for is not None and case_id != case_for_report(report_id):
            raise ValueError("a new case for a report takes the id derived from the report")
        return AcceptReport(
            report_id,
            case_id,
            by,
            at,
            open_for,
            optional(data.get("institution_id"), "institution_id") or None,
            flag(data.get("told_reporter", True), "told_reporter"),
            optional(data.get("note"), "note"),
        )
    if kind == "report_reject":
        return RejectReport(
            report_id,
            text(data.get("reason"), "reason"),
            by,
            at,
            flag(data.get("told_reporter", True), "told_reporter"),
        )
    if kind == "report_reward":
        return PayReward(
            report_id,
            amount_of(data.get("amount"), "amount"),
            by,
            at,
            optional(data.get("reference"), "reference"),
        )
    raise ValueError(f"type must be one of {', '.join(REPORT_TYPES)}, got {kind!r}")


# -- field readers, shared with the builders from user input (claimstream.kafka) ---------------


def text(value: object, name: str, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    if len(value) > limit:
        raise ValueError(f"{name} is {len(value)} characters long; at most {limit}")
    return value.strip()


def optional(value: object, name: str, limit: int = MAX_TEXT) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string")
    if len(value) > limit:
        raise ValueError(f"{name} is {len(value)} characters long; at most {limit}")
    return value.strip()


def flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false")
    return value


def report_id_of(value: object) -> str:
    report_id = text(value, "report_id", 128)
    if (problem := id_problem("report_id", report_id)) is not None:
        raise ValueError(problem)
    return report_id


def reporter_of(value: object) -> Reporter:
    if not isinstance(value, Mapping):
        raise ValueError("reporter must be an object {anonymous, name?, contact?}")
    anonymous = value.get("anonymous")
    if not isinstance(anonymous, bool):
        raise ValueError("reporter.anonymous must be true or false")
    name = optional(value.get("name"), "reporter.name", 200)
    contact = optional(value.get("contact"), "reporter.contact", 200)
    if anonymous and (name or contact):
        raise ValueError("reporter: an anonymous reporter has no name or contact")
    if not anonymous and not name:
        raise ValueError("reporter.name is required for a real-name reporter")
    if not anonymous and not contact:
        raise ValueError("reporter.contact is required for a real-name reporter")
    return Reporter(anonymous, name, contact)


def evidence_of(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise ValueError("evidence must be a list of references (strings)")
    if len(value) > MAX_EVIDENCE:
        raise ValueError(f"evidence holds {len(value)} references; at most {MAX_EVIDENCE}")
    return tuple(text(item, f"evidence[{n}]", 500) for n, item in enumerate(value))


# -- the case side of an acceptance ---------------------------------------------------------


def link_report(
    procedure: Procedure, case: Case | None, envelope: Mapping[str, Any]
) -> tuple[Case | Refusal | Unchanged, bool]:
    """The case after the link of an accepted report (opened first when the acceptance asked for
    a new case and it does not exist yet), and whether it was opened. A closed case, or an
    unknown one the acceptance did not ask to open, refuses it."""
    case_id, report_id = str(envelope["case_id"]), str(envelope["report_id"])
    action_id, by, at = str(envelope["action_id"]), str(envelope["by"]), str(envelope["at"])
    ts_of(at)
    opened = False
    if case is None:
        subject = subject_of(envelope.get("subject"))
        if subject is None:
            return Refusal("unknown_case", f"no case {case_id} to link report {report_id}"), False
        case = procedure.open(
            case_id,
            subject,
            at,
            by,
            action_id=stable_id("act", "case_open", case_id),
            institution_id=envelope.get("institution_id") or None,
            note="opened for a report from the public",
        )
        opened = True
    if case.applied(action_id) or report_id in case.report_ids:
        return Unchanged(case), False
    if case.step == "closed":
        return Refusal("closed", "the case is closed: a report is linked to an open case"), False
    entry = Entry(action_id, "report_accept", by, at, case.step, f"report {report_id}")
    linked = replace(case, report_ids=(*case.report_ids, report_id),
                     history=(*case.history, entry))  # fmt: skip
    return linked, opened
