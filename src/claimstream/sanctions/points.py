"""Doctor points (医保医师记分): confirmed violations add points by severity, per calendar year.

A confirmed alert naming the doctor adds `PointsSettings.<severity>` points (defaults: info 0,
warning 2, high 5, critical 9) to the local calendar year in which the violation occurred; a
later false-positive verdict takes them back. At `suspend_at` (12) points in one year the
escalation engine suspends the doctor's billing (doctor scope); a new year starts from zero,
but a suspension stays until a person lifts it. Only the current and the previous year are
kept (a December violation may be confirmed in January).

These functions work on the `p` part of a doctor's state (`{"2026": {alert_id: points}}`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from claimstream.model.outputs import Alert, stable_id
from claimstream.model.timefmt import iso
from claimstream.sanctions.actions import Verdict
from claimstream.sanctions.codec import to_ts
from claimstream.sanctions.decisions import PointsChange
from claimstream.sanctions.settings import PointsSettings


def year_of(ts: float, tz: ZoneInfo) -> int:
    return datetime.fromtimestamp(ts, tz).year


def apply_verdict(
    points: dict[str, dict[str, int]],
    doctor_id: str,
    alert: Alert,
    verdict: Verdict,
    settings: PointsSettings,
    tz: ZoneInfo,
) -> PointsChange | None:
    """Add or take back the alert's points; None when nothing changed (a repeated verdict)."""
    ts = to_ts(alert.occurred_at)
    year = year_of(ts, tz)
    held = points.setdefault(str(year), {})
    if verdict.verdict == "confirmed":
        if alert.alert_id in held:
            return None
        delta = settings.for_severity(alert.severity)
        if delta == 0:
            return None
        held[alert.alert_id] = delta
    else:
        if alert.alert_id not in held:
            return None
        delta = -held.pop(alert.alert_id)
    total = sum(held.values())
    if not held:
        del points[str(year)]
    return PointsChange(
        change_id=stable_id("pts", doctor_id, str(year), alert.alert_id, verdict.verdict),
        doctor_id=doctor_id,
        year=year,
        delta=delta,
        total=total,
        alert_id=alert.alert_id,
        occurred_at=iso(max(ts, to_ts(verdict.at)), tz),
    )


def total(points: dict[str, dict[str, int]], year: int) -> int:
    return sum(points.get(str(year), {}).values())


def prune(state: dict[str, Any], now: float, tz: ZoneInfo) -> None:
    """Keep the current and the previous local calendar year only."""
    oldest = year_of(now, tz) - 1
    points: dict[str, dict[str, int]] = state["p"]
    for year in [y for y in points if int(y) < oldest]:
        del points[year]
    state["ps"] = [y for y in state["ps"] if int(y) >= oldest]
