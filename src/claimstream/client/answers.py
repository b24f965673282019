"""What the worker answers, as typed values, and the errors a client raises.

Plain dataclasses over the JSON of `POST /v1/check`, `POST /v1/check/{id}/feedback` and
`GET /freezes/{kind}/{id}` (the worker's OpenAPI document, `GET /openapi.json`); the raw
answer is kept in `raw` so a field added later is not lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Decision = Literal["pass", "warn", "hold", "reject"]
HandlingKind = Literal["modified", "continued", "cancelled"]
#: the statuses a client tries again (after `Retry-After`, or its own backoff)
RETRIED = frozenset({502, 503, 504})


class ClaimstreamError(Exception):
    """Anything a claimstream client raises."""


class RequestRefused(ClaimstreamError):
    """The worker answered and refused the request (4xx): trying again will not help.

    `reason` is the dead-letter reason of a refused event (`missing_field`, `late`, ...) or
    `invalid_request`, when the worker gave one; `body` the whole answer.
    """

    def __init__(self, status: int, message: str, body: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.body: dict[str, Any] = dict(body or {})
        reason = self.body.get("reason")
        self.reason: str | None = reason if isinstance(reason, str) else None
        index = self.body.get("index")
        self.index: int | None = index if isinstance(index, int) else None


class WorkerUnavailable(ClaimstreamError, ConnectionError):
    """No answer after every try: the worker could not be reached, timed out, or kept
    answering 502/503 (still recovering, rebalancing, its Redis down). `status` is the last
    HTTP status, None when there was no answer at all."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Line:
    """One claim line a violation is about: its index in the claim's `items`."""

    index: int
    code: str
    amount: float | None


@dataclass(frozen=True, slots=True)
class Violation:
    """A violation a check found: the alert the stream will publish if the events are."""

    rule: str
    rule_name: str
    severity: str
    amount: float | None
    legal_basis: str
    behaviour: str
    message: str
    event_ids: tuple[str, ...]
    lines: tuple[Line, ...]
    alert_id: str
    decision: Decision

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Violation:
        amount = data.get("amount")
        return cls(
            rule=str(data["rule"]),
            rule_name=str(data.get("rule_name") or data["rule"]),
            severity=str(data.get("severity", "")),
            amount=float(amount) if isinstance(amount, int | float) else None,
            legal_basis=str(data.get("legal_basis") or ""),
            behaviour=str(data.get("behaviour") or ""),
            message=str(data.get("message") or ""),
            event_ids=tuple(str(e) for e in data.get("event_ids") or ()),
            lines=tuple(
                Line(int(line["index"]), str(line["code"]), _number(line.get("amount")))
                for line in data.get("lines") or ()
            ),
            alert_id=str(data.get("alert_id") or ""),
            decision=data.get("decision", "warn"),
        )


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The answer to a check: `decision` (pass, warn, hold, reject), what was found, and the
    freezes in force that the decision took into account."""

    check_id: str
    decision: Decision
    violations: tuple[Violation, ...]
    freezes: tuple[dict[str, Any], ...]
    rule_version: int
    evaluated_at: datetime
    #: the worker that evaluated it (`X-Claimstream-Worker`)
    worker: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def passed(self) -> bool:
        return self.decision == "pass"

    @classmethod
    def of(cls, data: Mapping[str, Any], worker: str | None = None) -> CheckResult:
        return cls(
            check_id=str(data["check_id"]),
            decision=data["decision"],
            violations=tuple(Violation.of(v) for v in data.get("violations") or ()),
            freezes=tuple(dict(f) for f in data.get("freezes") or ()),
            rule_version=int(data.get("rule_version") or 0),
            evaluated_at=datetime.fromisoformat(str(data["evaluated_at"])),
            worker=worker,
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True)
class Handling:
    """What the clinician did with one violation of a check (the feedback's input)."""

    rule: str
    handling: HandlingKind
    reason: str = ""
    alert_id: str | None = None

    @classmethod
    def to(cls, violation: Violation, handling: HandlingKind, reason: str = "") -> Handling:
        """The handling of `violation` as a check reported it."""
        return cls(violation.rule, handling, reason, violation.alert_id or None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rule": self.rule, "handling": self.handling, "reason": self.reason}
        if self.alert_id is not None:
            out["alert_id"] = self.alert_id
        return out


@dataclass(frozen=True, slots=True)
class Accepted:
    """A feedback the worker published: its action id and where it went."""

    action_id: str
    topic: str
    key: str
    partition: int

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Accepted:
        return cls(
            str(data["action_id"]), str(data["topic"]), str(data["key"]), int(data["partition"])
        )


@dataclass(frozen=True, slots=True)
class FreezeStatus:
    """Whether a patient, doctor or institution (for a drug) is frozen right now."""

    frozen: bool
    freezes: tuple[dict[str, Any], ...]

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> FreezeStatus:
        return cls(bool(data.get("frozen")), tuple(dict(f) for f in data.get("freezes") or ()))


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def message_of(status: int, body: Any) -> str:
    """The worker's error sentence, or the status alone."""
    if isinstance(body, Mapping) and isinstance(body.get("error"), str):
        return str(body["error"])
    return f"status {status}"
