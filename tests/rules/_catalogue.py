"""Builders and checks shared by the catalogue rules' tests (on top of `claimstream.testing`)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from claimstream.detection.config import DetectionConfig
from claimstream.detection.detector import Detector
from claimstream.model.events import Event
from claimstream.model.outputs import Alert, Command
from claimstream.testing import T0, detector, event, run


def hours_until(moment: datetime) -> float:
    """Hours after `T0` (the timeline of `claimstream.testing`) of a local instant."""
    return (moment - T0).total_seconds() / 3600


def item(
    code: str,
    category: str = "exam",
    *,
    special: bool = False,
    price: float = 100.0,
    quantity: float = 1,
) -> dict[str, Any]:
    return {
        "code": code,
        "category": category,
        "quantity": quantity,
        "unit_price": price,
        "special_exam": special,
    }


def claim(
    event_id: str,
    hours: float,
    *,
    inst: str = "H1",
    items: Sequence[dict[str, Any]] = (),
    visit_type: str = "outpatient",
    total: float = 100.0,
    **fields: Any,
) -> Event:
    fields.setdefault("fund_amount", total * 0.7)
    return event(
        event_id,
        "claim",
        hours,
        institution_id=inst,
        claim_id=f"C-{event_id}",
        visit_type=visit_type,
        total_amount=total,
        items=list(items),
        **fields,
    )


def alerts(
    rule: str, events: Sequence[Event], config: DetectionConfig | None = None
) -> list[Alert]:
    """The rule's alerts; no event may be dead-lettered (a late one would prove nothing)."""
    result = run(list(events), config)
    assert result.rejection is None, result.rejection
    return [a for a in result.alerts if a.rule == rule]


def commands(
    rule: str, events: Sequence[Event], config: DetectionConfig | None = None
) -> list[Command]:
    return [c for c in run(list(events), config).commands if c.rule == rule]


def alert_ids(
    rule: str, events: Sequence[Event], config: DetectionConfig | None = None
) -> list[str]:
    return sorted(a.alert_id for a in alerts(rule, events, config))


def same_alerts_in_every_order(
    rule: str, events: Sequence[Event], config: DetectionConfig | None = None
) -> list[str]:
    """The alert ids of `events` in order, asserted equal for every permutation of them."""
    expected = alert_ids(rule, events, config)
    for order in itertools.permutations(events):
        assert alert_ids(rule, order, config) == expected, [e.event_id for e in order]
    return expected


def rule_size(det: Detector, rule: str, *, skip: str | None = None) -> int:
    """Items held by one rule over every key of the detector (but the key `skip`)."""
    (instance,) = [r for r in det.engine.rules if r.name == rule]
    return sum(
        instance.size(state["r"][instance.state_key])
        for (kind, key), state in det.states.items()
        if instance.state_key in state["r"] and (kind, key) != (instance.key_kind, skip)
    )


def drains(rule: str, events: Sequence[Event], later: Event) -> tuple[int, int]:
    """(items held after `events`, items held after `later` and a sweep).

    `later` comes long after the rule's horizon, for another key (not counted): the sweep
    then expires every key against the stream's watermark.
    """
    det = detector()
    for ev in events:
        det.process(ev)
    before = rule_size(det, rule)
    det.process(later)
    det.sweep()
    (instance,) = [r for r in det.engine.rules if r.name == rule]
    return before, rule_size(det, rule, skip=later.key(instance.key_kind))


def duplicated(events: Sequence[Event]) -> list[Event]:
    """Every event delivered twice, the copy right after the original."""
    return [ev for original in events for ev in (original, original)]


def written_before(det: Detector, rule: str, width: int) -> None:
    """Cut every row the rule holds to its first `width` fields, as a worker that ran before
    later fields were appended to the layout left them ({group: rows} states)."""
    (instance,) = [r for r in det.engine.rules if r.name == rule]
    for state in det.states.values():
        held = state["r"].get(instance.state_key, {})
        for group, rows in held.items():
            held[group] = tuple(tuple(row[:width]) for row in rows)
