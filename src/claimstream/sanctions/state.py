"""The per-subject sanctions state: a JSON-shaped dict, like the rules' state.

The stream keeps one per subject (`institution:H1`, `doctor:D7`, `patient:P3`) in a
changelog-backed table, unchanged; tests and `replay` keep it in an ordinary dict:

    {"v": 1, "kind": "institution", "id": "H1",
     "wm": <latest event time applied, POSIX seconds, or null>,
     "a": {alert_id: [ts, severity, amount, rule, status, remediated]},
     "f": {command_id: [from_ts, until_ts, origin, ended, [alert_id...]]},
     "s": null | {"id": command_id, "ts": ts, "cause": str},
     "lift": null | <ts of the last manual lift of a suspension>,
     "m": {action_id: ts},
     "p": {"2026": {alert_id: points}}, "ps": ["2026"]       (doctors only)
     "g": [grade, score, graded_to]}                           (institutions only)

`a` holds the subject's violations (status "open", "confirmed" or "false_positive") for the
ladder's horizon (90 days), or the grade's (12 months) for an institution. `f` holds the
freezes the subject had in the suspension window: origin "ladder" (ours) or "rule" (the
immediate same-day FREEZE of readmission_24h / split_hospitalization, counted, not doubled);
`ended` is null while in force, then "expired", "appeal", "reviewer". `m` remembers manual
actions for `manual_retention_days` so a redelivery changes nothing. Every part is bounded by
event time, so the state stays flat on an endless stream. `graded_to` is the 12-month cutoff at
the last look, so each violation leaving the 12 months is seen once.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from claimstream.model.outputs import Subject
from claimstream.model.timefmt import iso

State = dict[str, Any]
VERSION = 1

# indexes into an alert row
TS, SEVERITY, AMOUNT, RULE, STATUS, REMEDIATED = range(6)
# indexes into a freeze row
FROM, UNTIL, ORIGIN, ENDED, ALERTS = range(5)


def new_state(subject: Subject) -> State:
    state: State = {
        "v": VERSION,
        "kind": subject.kind,
        "id": subject.id,
        "wm": None,
        "a": {},
        "f": {},
        "s": None,
        "lift": None,
        "m": {},
    }
    if subject.kind == "doctor":
        state["p"] = {}
        state["ps"] = []
    if subject.kind == "institution":
        state["g"] = ["A", 100.0, None]
    return state


def subject_of(state: State) -> Subject:
    return Subject(state["kind"], state["id"])


def active_freezes(state: State) -> dict[str, list[Any]]:
    """Freezes not yet ended (expiry is applied by `Escalation.tick`)."""
    return {fid: f for fid, f in state["f"].items() if f[ENDED] is None}


def is_empty(state: State) -> bool:
    """Nothing left worth keeping: the stream may delete the key."""
    grade_moved = "g" in state and state["g"][0] != "A"
    points = bool(state.get("p"))
    return not (state["a"] or state["f"] or state["s"] or state["m"] or points or grade_moved)


def describe(state: State, now: float, tz: tzinfo, lookback: float) -> dict[str, Any]:
    """The subject's standing at `now`, in the shape the query API answers with: "warned"
    while it has a violation in the look-back period (`lookback` seconds)."""
    in_force = [f[UNTIL] for f in active_freezes(state).values() if f[FROM] <= now < f[UNTIL]]
    violations = sum(
        1
        for row in state["a"].values()
        if row[STATUS] != "false_positive" and now - lookback < row[TS] <= now
    )
    if state["s"] is not None:
        level = "suspended"
    elif in_force:
        level = "frozen"
    elif violations:
        level = "warned"
    else:
        level = "clear"
    out: dict[str, Any] = {
        "subject": {"kind": state["kind"], "id": state["id"]},
        "level": level,
        "frozen_until": iso(max(in_force), tz) if in_force else None,
        "suspension": None
        if state["s"] is None
        else {
            "command_id": state["s"]["id"],
            "since": iso(state["s"]["ts"], tz),
            "cause": state["s"]["cause"],
        },
        "violations": violations,
    }
    if "g" in state:
        out["grade"] = {"grade": state["g"][0], "score": state["g"][1]}
    if "p" in state:
        out["points"] = {year: sum(held.values()) for year, held in sorted(state["p"].items())}
    return out
