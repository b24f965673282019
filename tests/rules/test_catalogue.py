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
    "combination_without_indication": ("patient", {"claim"}),
    "item_diagnosis_mismatch": ("patient", {"claim"}),
    "missed_refill": ("patient", {"dispense"}),
    "institution_indicators": ("institution", {"claim"}),
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
    catalogue = text.split("## Catalogue", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([a-z0-9_]+)` \|", catalogue, flags=re.MULTILINE)
    assert sorted(rows) == sorted(RULES)


# -- money and law ------------------------------------------------------------------------------

REGULATION = "《医疗保障基金使用监督管理条例》"
#: rule -> (behaviour, the articles its default legal basis cites after the regulation, on_check)
LAW = {
    "repeat_dispensing": ("重复开药", "第十五条、第三十八条第二项", "hold"),
    "high_frequency_consultation": ("高频问诊", "", "warn"),
    "readmission_24h": ("分解住院", "第十五条、第三十八条第一项", "hold"),
    "split_hospitalization": ("分解住院", "第十五条、第三十八条第一项", "hold"),
    "special_exam_repeat": ("过度检查", "第十五条、第三十八条第二项", "warn"),
    "chronic_polypharmacy": ("超常处方", "第十五条、第三十八条第二项", "hold"),
    "excess_quantity": ("超量开药", "第十五条、第三十八条第二项", "hold"),
    "duplicate_exam": ("重复检查", "第十五条、第三十八条第二项", "warn"),
    "drg_high_multiplier": ("过度诊疗", "第十五条、第三十八条第二项", "hold"),
    "contraindication": ("禁忌用药", "第十五条、第三十八条第二项", "reject"),
    "gender_age_restriction": ("超限定支付范围", "第十五条、第三十八条第六项", "reject"),
    "doctor_consultation_rate": ("虚构医药服务项目", "第四十条第三项", "warn"),
    "institution_cost_jump": ("次均费用异常增长", "", "warn"),
    "diagnosis_cluster": ("虚假住院", "第十五条、第四十条第一项", "hold"),
    "institution_not_qualified": ("无定点资质或超协议范围结算", "", "reject"),
    "doctor_not_registered": ("医师无有效执业注册或被暂停医保支付资格", "", "reject"),
    "out_of_scope_online_care": ("互联网首诊或超范围诊疗", "", "reject"),
    "combination_without_indication": ("无指征联合用药", "第十五条、第三十八条第二项", "warn"),
    "item_diagnosis_mismatch": ("过度检查", "第十五条、第三十八条第二项", "warn"),
    "missed_refill": ("慢病未按时取药", "", "warn"),
    "trace_code_reuse": ("药品追溯码重复结算（疑似回流药）", "", "reject"),
    "institution_indicators": ("机构运行指标", "", "warn"),
    "peer_outlier": ("费用指标显著偏离同级同区机构", "", "warn"),
}


def test_every_registered_rule_has_its_law_in_the_table() -> None:
    assert set(LAW) == set(RULES)


@pytest.mark.parametrize(("name", "expected"), LAW.items())
def test_defaults_cite_the_regulation_name_the_behaviour_and_say_what_a_check_does(
    name: str, expected: tuple[str, str, str]
) -> None:
    behaviour, articles, on_check = expected
    settings = DetectionConfig.default().rules[name]
    assert settings.legal_basis.startswith(REGULATION + articles)
    assert (settings.behaviour, settings.on_check) == (behaviour, on_check)


def test_legal_basis_behaviour_and_on_check_change_as_text_like_any_setting() -> None:
    changes = {
        "legal_basis": "《某省医疗保障基金监管办法》第十条",
        "behaviour": "超量开药",
        "on_check": "reject",
    }
    changed = DetectionConfig.default().with_rule_changes("repeat_dispensing", changes)
    settings = changed.rules["repeat_dispensing"]
    assert (settings.legal_basis, settings.behaviour, settings.on_check) == tuple(changes.values())


def test_they_come_from_the_environment_as_well() -> None:
    from claimstream.stream.settings import detection_from_env

    config = detection_from_env(
        {
            "CLAIMSTREAM_RULE__DUPLICATE_EXAM__ON_CHECK": "hold",
            "CLAIMSTREAM_RULE__DUPLICATE_EXAM__LEGAL_BASIS": "《某市检查检验结果互认实施细则》",
        }
    )
    assert config.rules["duplicate_exam"].on_check == "hold"
    assert config.rules["duplicate_exam"].legal_basis == "《某市检查检验结果互认实施细则》"


def test_and_from_a_replay_configuration_file(tmp_path: Path) -> None:
    file = tmp_path / "rules.toml"
    file.write_text('[rules.excess_quantity]\non_check = "warn"\n', encoding="utf-8")
    assert DetectionConfig.from_file(file).rules["excess_quantity"].on_check == "warn"


@pytest.mark.parametrize(
    ("setting", "value"),
    [("on_check", "block"), ("legal_basis", ""), ("legal_basis", "  "), ("behaviour", "")],
)
def test_an_unknown_decision_or_an_empty_citation_is_refused(setting: str, value: str) -> None:
    with pytest.raises(ConfigError, match=setting):
        DetectionConfig.default().with_rule_changes("readmission_24h", {setting: value})


def test_the_documentation_gives_every_rule_its_amount_formula_and_legal_basis() -> None:
    text = (Path(__file__).parents[2] / "docs" / "rules.md").read_text(encoding="utf-8")
    section = text.split("## Money and law", 1)[1].split("\n## ", 1)[0]
    rows = {
        match[0]: match[1]
        for match in re.findall(r"^\| `([a-z0-9_]+)` \|(.*)$", section, flags=re.MULTILINE)
    }
    assert set(rows) == set(RULES)
    for name, row in rows.items():
        behaviour, articles, on_check = LAW[name]
        cells = [cell.strip() for cell in row.split("|")]
        assert behaviour in cells[0], name
        assert f"`{on_check}`" in row, name
        assert (articles or "without an article") in row, name
