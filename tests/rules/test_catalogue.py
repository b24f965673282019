"""What holds for every rule of the catalogue: registered, routed narrowly, tunable by text."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from claimstream.detection.config import DetectionConfig
from claimstream.model.config import ConfigError
from claimstream.model.events import EVENT_TYPES, KEY_KINDS
from claimstream.rules import RULES

CATALOGUE = {
    "split_hospitalization": ("patient", {"admission", "discharge"}),
    "special_exam_repeat": ("patient", {"claim"}),
    "chronic_polypharmacy": ("patient", {"dispense"}),
    "excess_quantity": ("patient", {"dispense"}),
    "duplicate_exam": ("patient", {"claim"}),
    "drg_high_multiplier": ("patient", {"claim"}),
    "contraindication": ("patient", {"dispense"}),
    "gender_age_restriction": ("patient", {"dispense", "claim"}),
    "doctor_consultation_rate": ("doctor", {"consultation"}),
    "institution_cost_jump": ("institution", {"claim"}),
    "diagnosis_cluster": ("institution", {"claim"}),
}
COMMON = {"enabled", "mode", "severity", "issue_commands"}


@pytest.mark.parametrize(("name", "expected"), CATALOGUE.items())
def test_registered_with_its_key_and_only_the_event_types_it_reads(
    name: str, expected: tuple[str, set[str]]
) -> None:
    rule = RULES[name]
    assert (rule.key_kind, set(rule.event_types)) == expected
    assert rule.key_kind in KEY_KINDS and rule.event_types <= EVENT_TYPES


@pytest.mark.parametrize("name", CATALOGUE)
def test_every_setting_can_be_set_from_text(name: str) -> None:
    """`claimstream rules set RULE key=value` sends text: each field must round-trip."""
    config = DetectionConfig.default()
    settings = config.rules[name]
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        text = ",".join(value) if isinstance(value, tuple) else str(value).lower()
        changed = config.with_rule_changes(name, {field.name: text})
        assert getattr(changed.rules[name], field.name) == value, field.name
        assert changed.version == config.version + 1
    assert {f.name for f in dataclasses.fields(settings)} > COMMON  # it has thresholds


@pytest.mark.parametrize("name", CATALOGUE)
def test_an_impossible_threshold_is_refused_and_changes_nothing(name: str) -> None:
    config = DetectionConfig.default()
    numeric = [
        f.name
        for f in dataclasses.fields(config.rules[name])
        if isinstance(getattr(config.rules[name], f.name), int | float)
        and not isinstance(getattr(config.rules[name], f.name), bool)
    ]
    for key in numeric:
        with pytest.raises(ConfigError, match=key):
            config.with_rule_changes(name, {key: "-1"})
    assert config.version == 1


def test_default_severities_and_commands_follow_the_issue() -> None:
    rules = DetectionConfig.default().rules
    assert rules["split_hospitalization"].severity == "high"
    assert rules["duplicate_exam"].severity == "warning"
    issuing = {name for name in CATALOGUE if rules[name].issue_commands}
    assert issuing == {"split_hospitalization", "chronic_polypharmacy"}


def test_the_documented_catalogue_has_one_row_per_registered_rule() -> None:
    text = (Path(__file__).parents[2] / "docs" / "rules.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z0-9_]+)` \|", text, flags=re.MULTILINE)
    assert sorted(rows) == sorted(RULES)
