"""The control-topic protocol: snapshots, validation before publishing, newest-wins."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from claimstream.detection.config import DetectionConfig
from claimstream.kafka.control import ControlWatcher, Snapshot, next_snapshot, parse_assignments
from claimstream.model.config import ConfigError

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def change(config: DetectionConfig, **settings: str) -> Snapshot:
    return next_snapshot(config, "readmission_24h", settings, by="ana", reason="trial", now=NOW)


def test_a_snapshot_round_trips_with_its_version_and_author() -> None:
    snapshot = change(DetectionConfig.default(), max_gap_hours="48")
    decoded = Snapshot.decode(snapshot.encode())
    assert decoded.version == snapshot.version == 2
    assert decoded.config.rules["readmission_24h"].max_gap_hours == 48.0  # type: ignore[attr-defined]
    assert (decoded.changed_by, decoded.reason, decoded.changed_at) == (
        "ana",
        "trial",
        "2026-03-01T00:00:00+00:00",
    )
    assert decoded.change == {"rule": "readmission_24h", "settings": {"max_gap_hours": "48"}}


def test_each_change_builds_on_the_last_and_bumps_the_version() -> None:
    first = change(DetectionConfig.default(), max_gap_hours="48")
    second = change(first.config, mode="shadow")
    rule = second.config.rules["readmission_24h"]
    assert second.version == 3
    assert (rule.mode, rule.max_gap_hours) == ("shadow", 48.0)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("rule", "settings", "message"),
    [
        ("readmission_24h", {"max_gap_hours": "-1"}, "greater than 0"),
        ("readmission_24h", {"max_gap_hours": "soon"}, "must be a number"),
        ("readmission_24h", {"colour": "red"}, "no setting 'colour'"),
        ("no_such_rule", {"enabled": "false"}, "unknown rule"),
        ("readmission_24h", {"mode": "loud"}, "must be one of"),
    ],
)
def test_an_invalid_change_is_refused_with_a_clear_message(
    rule: str, settings: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        next_snapshot(DetectionConfig.default(), rule, settings, by=None, reason=None)


@pytest.mark.parametrize("items", [[], ["novalue"], ["=3"]])
def test_malformed_assignments_are_refused(items: list[str]) -> None:
    with pytest.raises(ConfigError):
        parse_assignments(items)


def test_assignments_are_split_on_the_first_equals_sign() -> None:
    assert parse_assignments(["a=1", "b = x=y"]) == {"a": "1", "b": "x=y"}


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        orjson.dumps({"schema": "other"}),
        orjson.dumps({"schema": "rules-config.v1", "version": 0, "config": {}}),
        orjson.dumps(
            {
                "schema": "rules-config.v1",
                "version": 5,
                "config": {"rules": {"readmission_24h": {"max_gap_hours": -4}}},
            }
        ),
    ],
)
def test_a_bad_control_message_is_refused(raw: bytes) -> None:
    with pytest.raises(ConfigError):
        Snapshot.decode(raw)


async def test_the_watcher_applies_newer_snapshots_only_and_counts_bad_ones() -> None:
    applied: list[int] = []
    refused: list[str] = []
    watcher = ControlWatcher("unused:0", lambda s: applied.append(s.version), refused.append)
    v2 = change(DetectionConfig.default(), max_gap_hours="30")
    v3 = change(v2.config, max_gap_hours="36")
    for raw in (v2.encode(), b"{broken", v3.encode(), v2.encode(), None):
        await watcher.handle(raw)
    assert applied == [2, 3]
    assert len(refused) == 1 and "not JSON" in refused[0]


async def test_a_snapshot_that_cannot_be_applied_keeps_the_watcher_going_and_is_tried_again() -> (
    None
):
    """E.g. its reference data no longer loads: the configuration in force stays, the watcher
    says why, and the same version arriving again is applied once it can be."""
    applied: list[int] = []
    refused: list[str] = []
    broken = True

    def apply(snapshot: Snapshot) -> None:
        if broken:
            raise ConfigError("reference data: agreements.csv line 3: bad date")
        applied.append(snapshot.version)

    watcher = ControlWatcher("unused:0", apply, refused.append)
    v2 = change(DetectionConfig.default(), max_gap_hours="30")
    await watcher.handle(v2.encode())
    assert applied == [] and "agreements.csv" in refused[0]
    broken = False
    await watcher.handle(v2.encode())
    assert applied == [2]
