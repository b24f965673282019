"""claimstream.reference.loader: packaged defaults, replacement directories, clear load errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from claimstream.detection.config import DetectionConfig
from claimstream.detection.detector import Detector
from claimstream.model.config import ConfigError
from claimstream.reference.loader import ReferenceData, ReferenceDataError, normalize_level

MANIFEST = {"format": "claimstream-reference/1", "version": "test-1"}


def directory(tmp_path: Path, **files: str) -> str:
    (tmp_path / "manifest.json").write_text(json.dumps(MANIFEST), encoding="utf-8")
    for name, text in files.items():
        (tmp_path / name.replace("_csv", ".csv")).write_text(text, encoding="utf-8")
    return str(tmp_path)


def test_packaged_defaults_are_loaded_once() -> None:
    data = ReferenceData.load()
    assert data is ReferenceData.load(None)
    assert data.version and data.source == "package"
    assert data.drug_classes("ANY", "J01MA12") == {"quinolone"}
    assert data.drug_classes("XB01AAH017A001010100007", None) == {"warfarin"}
    assert "chronic" in data.drug_classes("ANY", "b01ac06")
    assert data.drug_classes("ANY", None) == frozenset()
    assert [p.pair_id for p in data.pairs] == ["warfarin+aspirin"]
    assert data.restrictions["311201001"].gender == "F"
    assert "210400001" in data.special_exams
    assert data.institution_level("H001", None) == "tertiary"


@pytest.mark.parametrize(
    ("text", "level"),
    [
        ("三级甲等", "tertiary"),
        ("3A", "tertiary"),
        ("Secondary", "secondary"),
        ("一级", "primary"),
        ("unknown", None),
    ],
)
def test_institution_grades_in_common_spellings(text: str, level: str | None) -> None:
    assert normalize_level(text) == level


def test_a_replacement_directory_overrides_file_by_file(tmp_path: Path) -> None:
    path = directory(tmp_path, restrictions_csv="code,name,gender,min_age,max_age\nZ1,z,,60,\n")
    data = ReferenceData.load(path)
    assert data.version == "test-1" and data.source == path
    assert set(data.restrictions) == {"Z1"}
    assert data.restrictions["Z1"].violation("M", 59) == "age"
    assert data.pairs == ReferenceData.load().pairs  # not replaced: the packaged one


def test_the_engine_builds_it_from_the_config(tmp_path: Path) -> None:
    path = directory(tmp_path)
    detector = Detector(DetectionConfig.default(reference_data_path=path), clock=lambda: 0.0)
    assert {r.context.reference.version for r in detector.engine.rules} == {"test-1"}
    with pytest.raises(ConfigError, match="not a directory"):
        Detector(DetectionConfig.default(reference_data_path=path + "/nope"), clock=lambda: 0.0)


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"drug_classes_csv": "class,match,code\nx,regex,J01\n"}, "drug_classes.csv:2: match"),
        ({"drug_classes_csv": "class,code\nx,J01\n"}, "lacks column(s) match"),
        ({"interaction_pairs_csv": "pair_id,class_a,class_b\np,warfarin,nosuch\n"}, "nosuch"),
        ({"restrictions_csv": "code,name,gender,min_age,max_age\nA,a,X,,\n"}, "gender must be"),
        ({"restrictions_csv": "code,name,gender,min_age,max_age\nA,a,,,\n"}, "restricts nothing"),
        ({"restrictions_csv": "code,name,gender,min_age,max_age\nA,a,,9,3\n"}, "above max_age"),
        ({"restrictions_csv": "code,name,gender,min_age,max_age\nA,a,,x,\n"}, "whole number"),
        ({"restrictions_csv": "code,name,gender,min_age,max_age\nA,a,b,F,,\n"}, "6 fields"),
        ({"institutions_csv": "institution_id,name,level\nH,h,huge\n"}, "level 'huge'"),
        ({"institutions_csv": "institution_id,name,level,region\nH,h,3,a:b\n"}, "region 'a:b'"),
        ({"special_exams_csv": "# only a comment\n"}, "no header row"),
    ],
)
def test_errors_name_the_file_and_line(tmp_path: Path, files: dict[str, str], message: str) -> None:
    with pytest.raises(ReferenceDataError, match=re.escape(message)):
        ReferenceData.load(directory(tmp_path, **files))


def test_a_directory_needs_a_valid_manifest(tmp_path: Path) -> None:
    with pytest.raises(ReferenceDataError, match=r"no manifest\.json"):
        ReferenceData.load(str(tmp_path))
    (tmp_path / "manifest.json").write_text('{"format": "other"}', encoding="utf-8")
    with pytest.raises(ReferenceDataError, match="format"):
        ReferenceData.load(str(tmp_path))


def test_the_packaged_combination_rules_name_the_seed_pair() -> None:
    (rule,) = ReferenceData.load().combinations
    assert (rule.pair_id, rule.class_a, rule.class_b) == (
        "cephalosporin_3g+macrolide",
        "cephalosporin_3g",
        "macrolide",
    )
    assert rule.justified("A41.9") and rule.justified("j15.7")
    assert not rule.justified("J06.9") and not rule.justified("R51")


def test_the_packaged_item_indications_hold_the_seed_item() -> None:
    pelvic = ReferenceData.load().item_indications["220201003"]
    assert pelvic.indicated("N94.6") and pelvic.indicated("O20.0") and pelvic.indicated("r10.2")
    assert not pelvic.indicated("R51")  # a headache: the seed case of 捆绑检查
    assert not pelvic.indicated("")


def test_the_seed_classes_are_matched_by_atc() -> None:
    data = ReferenceData.load()
    assert data.drug_classes("ANY", "J01DD04") == {"cephalosporin_3g"}
    assert data.drug_classes("ANY", "J01FA10") == {"macrolide"}
    assert data.drug_classes("ANY", "C09CA01") == {"chronic", "antihypertensive"}


def test_an_indication_list_may_use_dots_and_any_case(tmp_path: Path) -> None:
    path = directory(tmp_path, item_indications_csv="code,name,indications\nX1,x,e11.9| Z13.1\n")
    item = ReferenceData.load(path).item_indications["X1"]
    assert item.indications == ("E119", "Z131")
    assert item.indicated("E11.901") and not item.indicated("E11.0")


def test_a_combination_rule_without_indications_is_never_justified(tmp_path: Path) -> None:
    text = "pair_id,class_a,class_b,indications,description\nq+w,quinolone,warfarin,,\n"
    (rule,) = ReferenceData.load(directory(tmp_path, combination_rules_csv=text)).combinations
    assert rule.indications == () and not rule.justified("A41")


PAIRS_HEADER = "pair_id,class_a,class_b,indications\n"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        (
            {"combination_rules_csv": f"{PAIRS_HEADER}x,quinolone,nope,A41\n"},
            "combination_rules.csv:2: class_b 'nope' is no class of drug_classes.csv",
        ),
        (
            {"combination_rules_csv": f"{PAIRS_HEADER}x,quinolone,warfarin,A41||J\n"},
            "combination_rules.csv:2: an empty ICD-10 prefix",
        ),
        (
            {"item_indications_csv": "code,name,indications\nX1,x,\n"},
            "item_indications.csv:2: empty indications",
        ),
        (
            {"item_indications_csv": "code,name,indications\nX1,x,E11\nX1,y,E10\n"},
            "item_indications.csv:3: code X1 again",
        ),
        ({"item_indications_csv": "code,name\nX1,x\n"}, "item_indications.csv: header lacks"),
    ],
)
def test_bad_indication_files_are_refused_naming_file_and_line(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    with pytest.raises(ReferenceDataError, match=re.escape(message)):
        ReferenceData.load(directory(tmp_path, **files))


def test_the_peer_group_is_the_registrys_level_and_region_else_the_declared_level(
    tmp_path: Path,
) -> None:
    csv = "institution_id,name,level,region\nA,a,tertiary,3301\nB,b,secondary,\n"
    data = ReferenceData.load(directory(tmp_path, institutions_csv=csv))
    assert data.peer_group("A", "二级") == "tertiary:3301"  # the registry wins
    assert data.peer_group("B", None) == "secondary"  # no region: the level alone
    assert data.peer_group("C", "三级甲等") == "tertiary"  # not registered: the claim's level
    assert data.peer_group("C", None) is None


def test_a_registry_without_a_region_column_still_loads(tmp_path: Path) -> None:
    data = ReferenceData.load(
        directory(tmp_path, institutions_csv="institution_id,name,level\nA,a,1\n")
    )
    assert data.peer_group("A", None) == "primary"
