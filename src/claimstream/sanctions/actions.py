"""What people do: review an alert, lift a freeze, record a remediation.

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
