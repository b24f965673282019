"""`claimstream reference check DIR`: a credentials directory checked before a worker loads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from claimstream.cli.main import main

HEADER_A = "institution_id,name,type,valid_from,valid_to,services,categories,online_conditions\n"
HEADER_R = "doctor_id,institution_id,valid_from,valid_to,status\n"


def directory(path: Path, agreements: str | None = "", registrations: str | None = "") -> Path:
    path.mkdir()
    manifest = {"format": "claimstream-reference/1", "version": "region-1"}
    (path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    if agreements is not None:
        (path / "agreements.csv").write_text(HEADER_A + agreements, encoding="utf-8")
    if registrations is not None:
        (path / "registrations.csv").write_text(HEADER_R + registrations, encoding="utf-8")
    return path


CLEAN = "H1,a,medical,2026-01-01,2026-06-30,,,\nH1,a,medical,2026-07-01,,,,\n"


def test_a_clean_directory_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reg = directory(tmp_path / "r", CLEAN, "D1,H1,2026-01-01,,active\n")
    assert main(["reference", "check", str(reg)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert "2 agreements of 1 institutions" in err and "no overlap, gap or unknown id" in err


def test_overlaps_gaps_and_unknown_ids_are_listed_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agreements = "H1,a,medical,2026-01-01,2026-06-30,,,\nH1,a,medical,2026-06-01,,,,\n"
    registrations = (
        "D1,H1,2026-01-01,2026-01-31,active\nD1,H1,2026-03-01,,active\nD2,H9,2026-01-01,,active\n"
    )
    reg = directory(tmp_path / "r", agreements, registrations)
    assert main(["reference", "check", str(reg)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[1] for line in lines] == ["overlap", "gap", "unknown_id"]
    assert lines[0].startswith(f"{reg / 'agreements.csv'}:3: ")


def test_json_prints_one_object(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reg = directory(tmp_path / "r", CLEAN, "D1,H9,2026-01-01,,active\n")
    assert main(["reference", "check", str(reg), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["credentials_version"].startswith("sha256:")
    assert [p["kind"] for p in report["problems"]] == ["unknown_id"]


def test_a_missing_directory_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reference", "check", str(tmp_path / "absent")]) == 2
    assert "not a directory" in capsys.readouterr().err


def test_an_unloadable_file_exits_2_naming_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = directory(tmp_path / "r", "H1,a,medical,2026-02-30,,,,\n")
    assert main(["reference", "check", str(reg)]) == 2
    assert "agreements.csv:2: valid_from must be a date" in capsys.readouterr().err


def test_a_file_the_directory_lacks_is_the_packaged_one_as_a_worker_would_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = directory(tmp_path / "r", CLEAN, registrations=None)
    assert main(["reference", "check", str(reg)]) == 1  # the packaged doctors' institutions
    err = capsys.readouterr().err
    assert "no registrations.csv: the packaged (illustrative) one is used" in err


def test_the_packaged_reference_data_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib import resources

    packaged = resources.files("claimstream.reference") / "data"
    assert main(["reference", "check", str(packaged)]) == 0
