"""What people do: review an alert, lift a freeze, record a remediation, answer a check.

Each action carries who did it, why, and when (`at`, RFC 3339 with offset; the time the action
takes effect in event time). The id is derived from those fields, so a redelivered action is
recognised and changes nothing, and the audit trail can name it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from claimstream.model.outputs import Scope, stable_id

VerdictKind = Literal["confirmed", "false_positive"]
VERDICTS: tuple[VerdictKind, ...] = ("confirmed", "false_positive")
#: "appeal": the subject's appeal was upheld; "reviewer": a reviewer lifted it of their own motion
UnfreezeGround = Literal["appeal", "reviewer"]
#: What a clinician did with a violation a pre-settlement check reported (3103): changed the
#: order or claim, settled it anyway, or withdrew it.
HandlingKind = Literal["modified", "continued", "cancelled"]
HANDLINGS: tuple[HandlingKind, ...] = ("modified", "continued", "cancelled")


@dataclass(frozen=True, slots=True)
class Verdict:
    """A reviewer's finding on one alert (`claimstream alerts review`)."""

    alert_id: str
    verdict: VerdictKind
    by: str
    at: str
    note: str = ""

    @property
    def action_id(self) -> str:
        return stable_id("rev", self.alert_id, self.verdict, self.by, self.at)


@dataclass(frozen=True, slots=True)
class ManualUnfreeze:
    """A person lifts whatever is in force for a scope (`claimstream unfreeze KIND:ID`)."""

    scope: Scope
    reason: str
    by: str
    at: str
    ground: UnfreezeGround = "reviewer"

    @property
    def action_id(self) -> str:
        return stable_id("act", "unfreeze", self.scope.key(), self.ground, self.by, self.at)


@dataclass(frozen=True, slots=True)
class Remediation:
    """An institution rectified a violation (整改): its penalty in the credit grade shrinks."""

    alert_id: str
    institution_id: str
    by: str
    at: str
    note: str = ""

    @property
    def action_id(self) -> str:
        return stable_id("act", "remediation", self.institution_id, self.alert_id, self.by, self.at)


@dataclass(frozen=True, slots=True)
class Handling:
    """What was done with one violation of a check: its rule, the alert id the check gave it
    (None when the caller did not say), the handling and why."""

    rule: str
    handling: HandlingKind
    reason: str = ""
    alert_id: str | None = None


@dataclass(frozen=True, slots=True)
class CheckFeedback:
    """The clinician's answer to a pre-settlement check (`POST /v1/check/{check_id}/feedback`,
    the national platform's 3103): per violation, modified, continued anyway or cancelled, and
    why. It changes no sanctions state; the stream counts it per rule and handling (a rule that
    clinicians override most of the time is a candidate for shadow mode) and the audit trail
    chains it."""

    check_id: str
    handlings: tuple[Handling, ...]
    by: str
    at: str

    @property
    def action_id(self) -> str:
        what = [f"{h.rule}/{h.alert_id or ''}/{h.handling}" for h in self.handlings]
        return stable_id("act", "check-feedback", self.check_id, self.by, self.at, *what)
