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


def test_the_alignment_slack_is_the_allowed_lateness_unless_set() -> None:
    from claimstream.detection.engine import Engine

    config = DetectionConfig.default().with_engine_changes({"allowed_lateness_hours": "2"})
    assert Engine(config, None).slack == 7200.0
    config = config.with_engine_changes({"alignment_slack_minutes": "5"})
    assert Engine(config, None).slack == 300.0
    assert DetectionConfig.from_dict(config.to_dict()) == config
    unset = config.with_engine_changes({"alignment_slack_minutes": ""})
    assert unset.alignment_slack_minutes is None


@pytest.mark.parametrize("name", ["alignment_slack_minutes", "source_idle_seconds"])
def test_a_negative_alignment_setting_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="must not be negative"):
        DetectionConfig.default().with_engine_changes({name: "-1"})


# --- custom rules ------------------------------------------------------------------------

CUSTOM_TOML = """
[custom_rules.high_cost_claims]
template = "window_count"
key = "patient"
event_types = ["claim"]
filter = "event.total_amount > 1000.0 && event.institution_id in lists.hospitals"
window_days = 7
min_count = 3
severity = "warning"
legal_basis = "《医疗保障基金使用监督管理条例》第十五条"

[custom_lists]
hospitals = ["H001", "H002"]
"""


def custom_file(tmp_path: Path, text: str = CUSTOM_TOML) -> Path:
    file = tmp_path / "custom.toml"
    file.write_text(text, encoding="utf-8")
    return file


def test_a_custom_rule_is_read_from_toml_in_shadow_mode(tmp_path: Path) -> None:
    config = DetectionConfig.from_file(custom_file(tmp_path))
    rule = config.custom_rules["high_cost_claims"]
    assert (rule.template, rule.event_types, rule.window_days, rule.mode) == (
        "window_count",
        ("claim",),
        7.0,
        "shadow",
    )


def test_custom_rules_and_lists_round_trip_through_to_dict(tmp_path: Path) -> None:
    config = DetectionConfig.from_file(custom_file(tmp_path))
    again = DetectionConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert (again.custom_rules, again.custom_lists) == (config.custom_rules, config.custom_lists)


def test_an_invalid_expression_names_the_file_the_rule_and_the_field(tmp_path: Path) -> None:
    text = CUSTOM_TOML.replace("> 1000.0", "> 1000")
    with pytest.raises(ConfigError) as refused:
        DetectionConfig.from_file(custom_file(tmp_path, text))
    assert "custom_rules.high_cost_claims.filter: at 1:20: found no matching overload" in str(
        refused.value
    )


def test_an_unknown_list_is_refused_naming_the_rule(tmp_path: Path) -> None:
    text = CUSTOM_TOML.replace("hospitals = ", "clinics = ")
    with pytest.raises(ConfigError, match=r"high_cost_claims\.filter.*'lists\.hospitals'"):
        DetectionConfig.from_file(custom_file(tmp_path, text))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"template": "window_median"}, "template must be one of"),
        ({"window_hours": 3}, "give exactly one of window_days and window_hours"),
        ({"min_count": 0}, "min_count must be greater than 0"),
        ({"event_types": ["settlement"]}, "event_types: unknown event type 'settlement'"),
        ({"key": "drug"}, "key must be one of"),
        ({"issue_commands": True}, "a custom rule issues no commands"),
        ({"min_sum": 5.0}, "min_sum has no meaning in the window_count template"),
    ],
)
def test_an_invalid_custom_rule_is_refused_naming_it(change: dict, message: str) -> None:
    table = {**DetectionConfig.from_dict({}).to_dict(), "custom_lists": {"hospitals": []}}
    rule = {
        "template": "window_count",
        "event_types": ["claim"],
        "window_days": 7,
        "min_count": 3,
        **change,
    }
    with pytest.raises(ConfigError, match=r"custom_rules\.r") as refused:
        DetectionConfig.from_dict({**table, "custom_rules": {"r": rule}})
    assert message in str(refused.value)


def test_a_custom_rule_may_not_take_a_built_in_rule_s_name() -> None:
    rule = {"template": "window_count", "event_types": ["claim"], "window_days": 7, "min_count": 3}
    with pytest.raises(ConfigError, match="a built-in rule has that name"):
        DetectionConfig.default().with_custom({"duplicate_exam": rule})


def test_a_custom_list_may_not_take_a_reference_list_s_name() -> None:
    with pytest.raises(ConfigError, match="the reference data has a list of that name"):
        DetectionConfig.default().with_custom({}, {"special_exams": ["X"]})


def test_a_custom_rule_s_settings_change_like_a_built_in_s(tmp_path: Path) -> None:
    config = DetectionConfig.from_file(custom_file(tmp_path))
    changed = config.with_rule_changes("high_cost_claims", {"mode": "enforce", "min_count": "4"})
    rule = changed.custom_rules["high_cost_claims"]
    assert (rule.mode, rule.min_count, changed.version) == ("enforce", 4, config.version + 1)


def test_removing_a_custom_rule_bumps_the_version(tmp_path: Path) -> None:
    config = DetectionConfig.from_file(custom_file(tmp_path))
    removed = config.without_custom_rule("high_cost_claims")
    assert (removed.custom_rules, removed.version) == ({}, config.version + 1)


def test_removing_a_built_in_rule_is_refused() -> None:
    with pytest.raises(ConfigError, match="built-in rule: turn it off"):
        DetectionConfig.default().without_custom_rule("duplicate_exam")


def test_a_custom_rule_s_settings_are_found_by_its_name(tmp_path: Path) -> None:
    config = DetectionConfig.from_file(custom_file(tmp_path))
    assert config.settings("high_cost_claims").on_check == "warn"
