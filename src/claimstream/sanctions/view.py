"""The query API's answers from one state-subject value (see `claimstream.sanctions.processor`).

Pure and JSON-shaped: the worker's `SanctionsView` loads the subject's state from its table and
calls these with the event-time watermark as `now`; tests call them with a dict.
"""

from __future__ import annotations

from typing import Any

from claimstream.model.timefmt import iso
from claimstream.sanctions.codec import alert_from_dict, to_ts
from claimstream.sanctions.ladder import Escalation
from claimstream.sanctions.rollup import rollup
from claimstream.sanctions.state import ALERTS, FROM, ORIGIN, UNTIL, active_freezes

Json = dict[str, Any]
STATUSES = ("open", "confirmed", "false_positive")


def subject(state: Json, now: float, escalation: Escalation) -> Json:
    """`describe()` of the subject at `now` plus its freezes in force and its suspension."""
    e = state["e"]
    if e["wm"] is not None:
        now = max(now, e["wm"])
    tz = escalation.tz
    out = escalation.status(e, now)
    out["freezes"] = [
        {
            "command_id": command_id,
            "from": iso(freeze[FROM], tz),
            "until": iso(freeze[UNTIL], tz),
            "origin": freeze[ORIGIN],
            "alert_ids": list(freeze[ALERTS]),
        }
        for command_id, freeze in sorted(active_freezes(e).items(), key=lambda i: i[1][FROM])
        if freeze[UNTIL] > now
    ]
    out["as_of"] = iso(now, tz)
    return out


def alerts(state: Json, status: str | None = None) -> list[Json]:
    """The subject's alerts (alert.v1 plus `status`, `remediated`), newest first."""
    held: list[Json] = list(state["al"].values())
    if status is not None:
        held = [a for a in held if a.get("status") == status]
    held.sort(key=lambda a: (to_ts(a["occurred_at"]), a["alert_id"]), reverse=True)
    return held


def institution(state: Json, now: float, escalation: Escalation) -> Json:
    """An institution's grade, freezes in force, open alerts and responsibility roll-up."""
    standing = subject(state, now, escalation)
    held = alerts(state)
    excluded = {a["alert_id"] for a in held if a.get("status") == "false_positive"}
    ranked = rollup(
        (alert_from_dict(a) for a in held),
        state["e"]["id"],
        exclude=excluded,
        amount_fields=escalation.settings.ladder.amount_fields,
    )
    return {
        "institution_id": state["e"]["id"],
        "grade": standing.get("grade"),
        "level": standing["level"],
        "frozen_until": standing["frozen_until"],
        "suspension": standing["suspension"],
        "freezes": standing["freezes"],
        "open_alerts": [a for a in held if a.get("status") == "open"],
        "rollup": ranked.to_dict(),
        "as_of": standing["as_of"],
    }
