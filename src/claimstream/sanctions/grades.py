"""Institution credit grade (信用等级) A / B / C / D: the formula.

Over the violations attributed to the institution whose event time lies in the last
`horizon_days` (365: the last 12 months), excluding alerts a reviewer found false positive
(an unreviewed alert counts: it stands until refuted):

    penalty(v) = penalty_<severity>(v) + penalty_per_10k * amount(v) / 10 000
    weight(v)  = remediation_factor  if v was remediated (整改)  else 1
    score      = max(0, 100 - sum(weight(v) * penalty(v)))           (two decimals)
    grade      = A if score >= a_min, B if >= b_min, C if >= c_min, else D

Defaults: penalties info 0 / warning 2 / high 5 / critical 20, 1 point per 10 000 of suspicious
amount, remediation halves a penalty (0.5), bounds A >= 90, B >= 75, C >= 60, D below. So with
no amounts: two high violations keep an A (90), three make a B (85), eight a C (60), nine a D
(55); remediating two of the nine gives back 5 and a C again (60). The grade rises by itself as
violations age out of the 12 months. D suspends settlement (`suspend_on_d`); like every
SUSPEND, only a person lifts it.

The functions below keep `state["g"] = [grade, score, graded_to]` of an institution's state
and return a `GradeChange` only when the letter changes; the escalation engine adds the
SUSPEND on D.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import tzinfo
from typing import Any

from claimstream.model.outputs import Severity, stable_id
from claimstream.model.timefmt import DAY, iso
from claimstream.sanctions.decisions import GradeChange
from claimstream.sanctions.settings import GradeSettings
from claimstream.sanctions.state import TS, State

GRADES = ("A", "B", "C", "D")


def score(rows: Iterable[list[Any]], settings: GradeSettings) -> float:
    """The score of the given alert rows (the caller picks the 12 months).

    A row is `[ts, severity, amount, rule, status, remediated]` as `claimstream.sanctions.state`
    keeps it; rows a reviewer found false positive do not count.
    """
    lost = 0.0
    for _ts, severity, amount, _rule, status, remediated in rows:
        if status == "false_positive":
            continue
        penalty = penalty_of(severity, amount, settings)
        lost += penalty * (settings.remediation_factor if remediated else 1.0)
    return round(max(0.0, 100.0 - lost), 2)


def penalty_of(severity: Severity, amount: float, settings: GradeSettings) -> float:
    return settings.penalty(severity) + settings.penalty_per_10k * amount / 10_000.0


def grade_of(value: float, settings: GradeSettings) -> str:
    if value >= settings.a_min:
        return "A"
    if value >= settings.b_min:
        return "B"
    if value >= settings.c_min:
        return "C"
    return "D"


def regrade(
    state: State, settings: GradeSettings, tz: tzinfo, trigger: str, ts: float
) -> GradeChange | None:
    """Recompute over the violations of the 12 months up to the state's event time."""
    horizon = settings.horizon_days * DAY
    rows = [row for row in state["a"].values() if row[TS] > state["wm"] - horizon]
    return _set(state, settings, tz, score(rows, settings), trigger, ts)


def age(state: State, settings: GradeSettings, tz: tzinfo, now: float) -> list[GradeChange]:
    """Walk the violations that left the 12 months since the last look, oldest first, so a
    grade that rises several letters publishes each step, dated when it happened, and the
    same steps come out however often time is advanced."""
    horizon = settings.horizon_days * DAY
    cutoff = now - horizon
    graded_to = state["g"][2]
    state["g"][2] = cutoff
    aged = sorted(
        (row[TS], aid)
        for aid, row in state["a"].items()
        if row[TS] <= cutoff and (graded_to is None or row[TS] > graded_to)
    )
    changes = []
    for ts, alert_id in aged:
        rows = [r for r in state["a"].values() if r[TS] > ts]
        change = _set(state, settings, tz, score(rows, settings), f"aged:{alert_id}", ts + horizon)
        if change is not None:
            changes.append(change)
    return changes


def _set(
    state: State, settings: GradeSettings, tz: tzinfo, value: float, trigger: str, ts: float
) -> GradeChange | None:
    old = state["g"][0]
    new = grade_of(value, settings)
    state["g"][:2] = [new, value]
    if new == old:
        return None
    return GradeChange(
        change_id=stable_id("grd", state["id"], old, new, trigger),
        institution_id=state["id"],
        old=old,
        new=new,
        score=value,
        occurred_at=iso(ts, tz),
        reason=f"credit score {value:g} over the last {settings.horizon_days:g} days",
    )
