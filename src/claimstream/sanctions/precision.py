"""Per-rule precision: of a rule's reviewed alerts, the share confirmed.

Kept per rule (the stream keys reviews by the alert's rule), JSON-shaped:

    {"seen": {alert_id: [verdict, ts]}, "confirmed": n, "reviewed": n}

A repeated verdict changes nothing; a reversed one (confirmed, then false positive) moves the
alert from one count to the other instead of counting it twice. `seen` is bounded by event
time (`expire`): a reversal arriving after the alert was forgotten is counted as a new review.
The metric exporter reads `value`; rule names are a bounded label set, alert ids never are.
"""

from __future__ import annotations

from typing import Any

from claimstream.sanctions.actions import Verdict
from claimstream.sanctions.codec import to_ts

State = dict[str, Any]


def new_state() -> State:
    return {"seen": {}, "confirmed": 0, "reviewed": 0}


def on_verdict(state: State, verdict: Verdict) -> bool:
    """Count the verdict; True when the counts changed."""
    seen: dict[str, list[Any]] = state["seen"]
    previous = seen.get(verdict.alert_id)
    if previous is not None and previous[0] == verdict.verdict:
        return False
    if previous is None:
        state["reviewed"] += 1
    elif previous[0] == "confirmed":
        state["confirmed"] -= 1
    if verdict.verdict == "confirmed":
        state["confirmed"] += 1
    seen[verdict.alert_id] = [verdict.verdict, to_ts(verdict.at)]
    return True


def value(state: State) -> float | None:
    """confirmed / reviewed, or None before the first review."""
    reviewed: int = state["reviewed"]
    return state["confirmed"] / reviewed if reviewed else None


def expire(state: State, cutoff: float) -> None:
    seen: dict[str, list[Any]] = state["seen"]
    for alert_id in [a for a, (_, ts) in seen.items() if ts < cutoff]:
        del seen[alert_id]
