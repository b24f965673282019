"""What people do: review an alert, lift a freeze, record a remediation, answer a check, and
what a case's decision says about its alerts and its subject (`CaseDecision`).

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
#: a case's decision (`claimstream.cases`): the case's alerts are confirmed, some of them, or none
Outcome = Literal["confirmed", "partly_confirmed", "not_confirmed"]
OUTCOMES: tuple[Outcome, ...] = ("confirmed", "partly_confirmed", "not_confirmed")
#: what the seeds distinguish for sanctions: 欺诈骗保 (intentional) vs 违规 (operational error)
Nature = Literal["intentional_fraud", "operational_error"]
NATURES: tuple[Nature, ...] = ("intentional_fraud", "operational_error")


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


@dataclass(frozen=True, slots=True)
class CaseDecision:
    """What the sanctions take from a case's decision (a `case_decide` action of
    `claimstream.cases`): its outcome and nature, and the alerts a partly confirmed decision
    names as confirmed (`confirmed_alerts`; none named: the decision says nothing of any one
    alert). A case is decided once, so the decision is known by its case (`decision_id`)."""

    case_id: str
    outcome: Outcome
    nature: Nature | None
    by: str
    at: str
    confirmed_alerts: tuple[str, ...] = ()

    @property
    def decision_id(self) -> str:
        return stable_id("dec", self.case_id)

    def verdict_for(self, alert_id: str) -> VerdictKind | None:
        """The verdict the decision gives one of the case's alerts: confirmed for a confirmed
        case, false_positive for a not confirmed one; for a partly confirmed one, confirmed
        when named, false_positive when not, and None when it names none."""
        if self.outcome == "confirmed":
            return "confirmed"
        if self.outcome == "not_confirmed":
            return "false_positive"
        if not self.confirmed_alerts:
            return None
        return "confirmed" if alert_id in self.confirmed_alerts else "false_positive"

    def as_verdict(self, alert_id: str) -> Verdict | None:
        """The decision as a reviewer's verdict on one alert (by the decider, at its time)."""
        kind = self.verdict_for(alert_id)
        if kind is None:
            return None
        return Verdict(alert_id, kind, self.by, self.at, f"case {self.case_id} {self.outcome}")
