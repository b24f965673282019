"""`Detector`, as `replay` drives it: one event's time blinds no one else's detection."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from claimstream.detection.config import DetectionConfig
from claimstream.detection.decode import decode_event
from claimstream.detection.detector import Detector
from claimstream.detection.replay import ReplaySinks, replay
from claimstream.devtools.simulate import Simulator
from claimstream.model.events import Event
from claimstream.model.timefmt import iso


def _stream() -> list[dict[str, Any]]:
    # a population small enough that idle keys are swept every 10 000 events
    return list(Simulator(40_000, seed=11, patients=2_000).events())


def _alerts(raw: list[dict[str, Any]]) -> tuple[list[bytes], list[bytes], list[str]]:
    alerts: list[bytes] = []
    commands: list[bytes] = []
    dead: list[str] = []
    sinks = ReplaySinks(
        alerts=lambda r: alerts.append(orjson.dumps(r)),
        commands=lambda r: commands.append(orjson.dumps(r)),
        dead_letters=lambda r: dead.append(r["reason"]),
    )
    replay((orjson.dumps(e) for e in raw), sinks, clock="event")
    return alerts, commands, dead


def _newcomer(occurred_at: str) -> dict[str, Any]:
    return {
        "event_id": "ev-stranger",
        "event_type": "consultation",
        "occurred_at": occurred_at,
        "patient_id": "P-NEW",
        "institution_id": "H-NEW",
        "doctor_id": "D-NEW",
        "mode": "online",
    }


@pytest.fixture(scope="module")
def baseline() -> tuple[list[dict[str, Any]], tuple[list[bytes], list[bytes], list[str]]]:
    raw = _stream()
    expected = _alerts(raw)
    assert len(expected[0]) > 50 and expected[2] == []
    return raw, expected


@pytest.mark.parametrize("ahead", ["2099-01-01T00:00:00+08:00", "three weeks"])
def test_one_event_dated_far_ahead_changes_no_other_alert_or_command(
    baseline: tuple[list[dict[str, Any]], tuple[list[bytes], list[bytes], list[str]]],
    ahead: str,
) -> None:
    raw, (alerts, commands, _) = baseline
    at = len(raw) // 10
    if ahead == "three weeks":
        moment = decode_event(raw[at])
        assert isinstance(moment, Event)
        ahead = iso(moment.ts + 21 * 86_400)
    got_alerts, got_commands, dead = _alerts([*raw[:at], _newcomer(ahead), *raw[at:]])
    assert (got_alerts, got_commands) == (alerts, commands)
    assert dead == []


def test_in_the_order_given_one_event_far_ahead_expires_everyones_state() -> None:
    """Why `replay` does not use `process`: its sweeps follow the highest event time."""
    raw = _stream()
    events = [e for e in map(decode_event, raw) if isinstance(e, Event)]
    stranger = decode_event(_newcomer("2099-01-01T00:00:00+08:00"))
    assert isinstance(stranger, Event)

    def count(stream: list[Event]) -> int:
        det = Detector(DetectionConfig.default(), clock=None)
        return sum(len(det.process(e).alerts) for e in stream)

    at = len(events) // 10
    assert count([*events[:at], stranger, *events[at:]]) < count(events)
