"""Test doubles shipped with the package, for our tests and for anyone writing rules or
integrating with claimstream: event builders, a controlled clock, a driver and in-memory sinks.

Times are given as hours after `T0` (2026-03-01 08:00 in Asia/Shanghai), so a test reads as
a timeline. Events are built through the real decoder, so every test event is a valid one.
`run(events)` drives the same `Detector` as `replay`; `MemorySink` keeps a worker's or
`replay`'s outputs in lists.

    from claimstream.testing import consultation, run, alerts_of
    result = run([consultation(f"c{i}", hours=i) for i in range(20)])
    assert alerts_of("high_frequency_consultation", result)
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from claimstream.detection.config import DetectionConfig
from claimstream.detection.decode import decode_event
from claimstream.detection.detector import Detector
from claimstream.detection.engine import StepResult
from claimstream.detection.sinks.memory import MemorySink
from claimstream.model.events import Event

__all__ = [
    "DAY_H",
    "FIXED_NOW",
    "SHANGHAI",
    "T0",
    "MemorySink",
    "admission",
    "alerts_of",
    "at",
    "consultation",
    "detector",
    "discharge",
    "dispense",
    "event",
    "run",
    "with_rule",
]

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=SHANGHAI)
#: The controlled wall clock: `detected_at` is always this instant in tests.
FIXED_NOW = datetime(2026, 6, 1, tzinfo=ZoneInfo("UTC")).timestamp()
DAY_H = 24.0


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()


def event(event_id: str, event_type: str, hours: float, **fields: Any) -> Event:
    raw = {
        "event_id": event_id,
        "event_type": event_type,
        "occurred_at": at(hours),
        "patient_id": "P1",
        "institution_id": "H1",
        **fields,
    }
    decoded = decode_event(raw)
    assert isinstance(decoded, Event), decoded
    return decoded


def dispense(
    event_id: str,
    hours: float,
    *,
    inst: str = "H1",
    drug: str = "INS",
    days: int = 30,
    quantity: float = 4,
    chronic: bool = True,
    **fields: Any,
) -> Event:
    """A dispensing of insulin by default: a chronic-disease drug, so 30 days is within limits."""
    return event(
        event_id,
        "dispense",
        hours,
        institution_id=inst,
        drug_code=drug,
        days_supply=days,
        quantity=quantity,
        chronic=chronic,
        **fields,
    )


def consultation(event_id: str, hours: float, *, mode: str = "online", **fields: Any) -> Event:
    return event(event_id, "consultation", hours, mode=mode, **fields)


def admission(event_id: str, hours: float, *, stay: str, inst: str = "H1", **fields: Any) -> Event:
    fields.setdefault("diagnosis_code", "J18.9")
    return event(event_id, "admission", hours, institution_id=inst, admission_id=stay, **fields)


def discharge(event_id: str, hours: float, *, stay: str, inst: str = "H1", **fields: Any) -> Event:
    fields.setdefault("diagnosis_code", "J18.9")
    return event(event_id, "discharge", hours, institution_id=inst, admission_id=stay, **fields)


def detector(config: DetectionConfig | None = None) -> Detector:
    return Detector(config or DetectionConfig.default(), clock=lambda: FIXED_NOW)


def run(events: list[Event], config: DetectionConfig | None = None) -> StepResult:
    """Feed `events` in the given order; everything they produced, folded into one result."""
    det = detector(config)
    total = StepResult()
    for ev in events:
        step = det.process(ev)
        total.alerts += step.alerts
        total.shadow_alerts += step.shadow_alerts
        total.commands += step.commands
        total.records += step.records
        if step.rejection is not None:
            total.rejection = step.rejection
    return total


def alerts_of(rule: str, result: StepResult) -> list[Any]:
    return [a for a in result.alerts if a.rule == rule]


def with_rule(rule: str, **changes: Any) -> DetectionConfig:
    return DetectionConfig.default().with_rule_changes(rule, changes)
