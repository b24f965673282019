"""Window rules that hold the same rows share one row store (`templates.SharedWindow`)."""

from __future__ import annotations

from typing import Any

import pytest

from claimstream.detection.config import DetectionConfig
from claimstream.detection.detector import Detector
from claimstream.model.events import Event
from claimstream.testing import DAY_H, detector
from tests.rules._catalogue import alerts, claim, duplicated

#: the same rows (template, key, event types, filter), another window and threshold each
STRICT = {
    "template": "window_count",
    "event_types": ["claim"],
    "filter": "event.total_amount > 1000.0",
    "window_days": 7,
    "min_count": 4,
    "mode": "enforce",
}
LOOSE = {**STRICT, "window_days": 1, "min_count": 2}
SUMMED = {
    "template": "window_sum",
    "event_types": ["claim"],
    "filter": "event.total_amount > 1000.0",
    "value": "event.total_amount",
    "window_days": 3,
    "mode": "enforce",
}
#: hours after T0 of a patient's costly claims: bursts, gaps, a quiet stretch, a late one
HOURS = [0, 5, 20, 30, 47, 50, 70, 100, 130, 131, 132, 250, 260, 261, 262, 263, 262.5, 400, 401]


def _config(rules: dict[str, dict[str, Any]]) -> DetectionConfig:
    return DetectionConfig.default().with_custom(rules)


def _claims(hours: list[float]) -> list[Event]:
    return [claim(f"c{i:02d}", h, total=1500.0 + 10 * i) for i, h in enumerate(hours)]


def _swept(config: DetectionConfig, events: list[Event]) -> list[tuple[str, str]]:
    """(rule, alert id) of every alert, each key expired after every event (as a sweep)."""
    det = detector(config)
    found = []
    for ev in events:
        found += [(a.rule, a.alert_id) for a in det.process(ev).alerts]
        det.sweep()
    return sorted(found)


def test_rules_that_hold_the_same_rows_keep_them_once() -> None:
    det = detector(_config({"strict": STRICT, "loose": LOOSE}))
    for ev in _claims([0, 1, 2]):
        det.process(ev)
    held = det.states[("patient", "P1")]["r"]
    assert not [key for key in held if key.split("@")[0] in ("strict", "loose")]
    (shared,) = [state for key, state in held.items() if key.startswith("~custom@")]
    assert len(shared["rows"]) == 3


@pytest.mark.parametrize(
    "rules",
    [
        {"strict": STRICT, "loose": LOOSE},
        {"a_sum": {**SUMMED, "min_sum": 4000.0}, "b_sum": {**SUMMED, "min_sum": 3000.0}},
    ],
)
def test_each_rule_of_a_shared_store_alerts_as_it_does_alone(rules: dict[str, Any]) -> None:
    events = duplicated(_claims(HOURS))
    together = _config(rules)
    for name, settings in rules.items():
        alone = _config({name: settings})
        found = [a.alert_id for a in alerts(name, events, together)]
        assert found  # or this would prove nothing
        assert found == [a.alert_id for a in alerts(name, events, alone)]


def test_a_shared_store_keeps_the_rows_the_longest_window_needs() -> None:
    # expired at day 7.5, the loose rule alone would let the claim of day 6 go; the strict
    # rule needs it for 7 days, so it still alerts on the claims of days 6 to 11
    events = _claims([0, 6 * DAY_H, 7.5 * DAY_H, 9 * DAY_H, 11 * DAY_H])
    found = _swept(_config({"strict": STRICT, "loose": LOOSE}), events)
    assert [rule for rule, _ in found] == ["strict"]
    assert found == _swept(_config({"strict": STRICT}), events)


def test_a_rule_added_beside_a_store_that_holds_rows_counts_them() -> None:
    before = _config({"strict": STRICT})
    det = detector(before)
    for ev in _claims([0, 1]):
        det.process(ev)
    later = Detector(before.with_custom({"loose": {**LOOSE, "min_count": 3}}), clock=None)
    later.states, later.watermark = det.states, det.watermark
    (alert,) = later.process(claim("c99", 2, total=1500.0)).alerts
    assert (alert.rule, alert.event_ids) == ("loose", ("c00", "c01", "c99"))
