"""`DetectionConfig.from_file`: the file `replay --config` reads (TOML or JSON, `to_dict` shape)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from claimstream.detection.config import DetectionConfig
from claimstream.model.config import ConfigError
from claimstream.rules.diagnosis_cluster import DiagnosisClusterSettings
from claimstream.rules.readmission_24h import Readmission24hSettings

TOML = """
version = 7
allowed_lateness_hours = 2
reference_data_path = "/srv/reference"

[rules.readmission_24h]
max_gap_hours = "12"
mode = "shadow"

[rules.diagnosis_cluster]
visit_types = ["inpatient", "outpatient"]
min_patients = 8
"""


def test_toml_overlays_defaults(tmp_path: Path) -> None:
    file = tmp_path / "detection.toml"
    file.write_text(TOML, encoding="utf-8")
    config = DetectionConfig.from_file(file)
    settings = config.rule("readmission_24h", Readmission24hSettings)
    assert (settings.max_gap_hours, settings.mode) == (12.0, "shadow")
    assert config.allowed_lateness_hours == 2.0
    assert config.reference_data_path == "/srv/reference"
    assert config.version == 7
    cluster = config.rule("diagnosis_cluster", DiagnosisClusterSettings)
    assert (cluster.visit_types, cluster.min_patients) == (("inpatient", "outpatient"), 8)
    assert config.rules["repeat_dispensing"] == DetectionConfig.default().rules["repeat_dispensing"]


def test_json_round_trips_to_dict(tmp_path: Path) -> None:
    original = DetectionConfig.default().with_rule_changes("readmission_24h", {"enabled": False})
    file = tmp_path / "detection.json"
    file.write_text(json.dumps(original.to_dict()), encoding="utf-8")
    assert DetectionConfig.from_file(str(file)) == original


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("missing.toml", None, "no such file"),
        ("config.yaml", "a: 1", "must end in .toml or .json"),
        ("bad.toml", "rules = [", "invalid TOML"),
        ("bad.json", '{"rules": ', "invalid JSON at line 1"),
        ("list.json", "[1, 2]", "top level must be a table"),
        ("rule.toml", "[rules.no_such_rule]\nx = 1\n", "unknown rule 'no_such_rule'"),
        ("key.toml", "[rules.readmission_24h]\nmax_gap = 1\n", "has no setting 'max_gap'"),
        ("value.toml", '[rules.readmission_24h]\nmax_gap_hours = "soon"\n', "must be a number"),
        ("engine.json", '{"lateness": 1}', "engine has no setting 'lateness'"),
        ("version.json", '{"version": "seven"}', "seven"),
    ],
)
def test_errors_name_the_file_and_the_problem(
    tmp_path: Path, name: str, text: str | None, message: str
) -> None:
    file = tmp_path / name
    if text is not None:
        file.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        DetectionConfig.from_file(file)
    assert str(file) in str(raised.value)
    assert message in str(raised.value)


def test_the_plausible_range_and_future_skew_are_engine_settings() -> None:
    config = DetectionConfig.default().with_engine_changes(
        {"earliest_event_time": "1995-01-01T00:00:00+08:00", "max_future_skew_minutes": "2"}
    )
    assert config.plausible[0] == 788889600.0  # 1994-12-31T16:00:00Z
    assert config.max_future_skew_minutes == 2.0
    assert DetectionConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"earliest_event_time": "soon"}, "must be an ISO-8601 time"),
        ({"earliest_event_time": "2000-01-01T00:00:00"}, "needs a UTC offset"),
        ({"latest_event_time": "2300-01-01T00:00:00Z"}, "within the years 1900..2199"),
        ({"latest_event_time": "1999-01-01T00:00:00Z"}, "must be before latest_event_time"),
        ({"max_future_skew_minutes": "-1"}, "must not be negative"),
    ],
)
def test_an_impossible_plausible_range_is_refused(changes: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DetectionConfig.default().with_engine_changes(changes)
