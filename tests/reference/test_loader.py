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
