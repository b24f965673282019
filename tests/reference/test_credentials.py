"""claimstream.reference.credentials: agreements and registrations, their lookups and checks."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from claimstream.devtools.simulate import Simulator
from claimstream.reference.credentials import (
    CredentialsError,
    build,
    check,
    local_day,
)
from claimstream.reference.loader import ReferenceData
from claimstream.testing import SHANGHAI

HEADER_A = "institution_id,name,type,valid_from,valid_to,services,categories,online_conditions\n"
HEADER_R = "doctor_id,institution_id,valid_from,valid_to,status\n"


def credentials(agreements: str = "", registrations: str = ""):  # type: ignore[no-untyped-def]
    files = {"agreements.csv": HEADER_A + agreements, "registrations.csv": HEADER_R + registrations}
    return build(files.get)


def test_the_packaged_registry_lists_every_institution_and_doctor_the_simulator_uses() -> None:
    creds = ReferenceData.load().credentials
    sim = Simulator(20_000, seed=11)
    events = list(sim.events())
    day = date(2026, 3, 15)
    assert {e["institution_id"] for e in events} <= set(creds.agreements)
    pairs = {(e["doctor_id"], e["institution_id"]) for e in events}
    assert all(creds.registration(d, i, day).reason is None for d, i in pairs)


def test_the_packaged_registry_has_no_overlap_gap_or_unknown_id() -> None:
    assert check(ReferenceData.load().credentials) == []


def test_a_replacement_directory_without_credentials_falls_back_to_the_packaged_ones(
    tmp_path: Path,
) -> None:
    manifest = {"format": "claimstream-reference/1", "version": "x"}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    loaded = ReferenceData.load(str(tmp_path)).credentials
    assert loaded.version == ReferenceData.load().credentials.version


def test_the_version_is_a_hash_of_both_files() -> None:
    one = credentials("H1,a,medical,2026-01-01,,,,\n")
    same = credentials("H1,a,medical,2026-01-01,,,,\n")
    other = credentials("H1,a,medical,2026-01-02,,,,\n")
    assert one.version == same.version != other.version
    assert one.version.startswith("sha256:")


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("H1,a,clinic,2026-01-01,,,,", "type 'clinic'"),
        ("H1,a,medical,2026-13-01,,,,", "valid_from must be a date"),
        ("H1,a,medical,2026-02-01,2026-01-31,,,", "before valid_from"),
        ("H1,a,medical,2026-01-01,,teleport,,", "services teleport"),
        ("H1,a,medical,2026-01-01,,,food,", "categories food"),
        ("H1,a,medical,,,,,", "empty valid_from"),
        ("H1,a,medical", "3 fields"),
    ],
)
def test_a_bad_agreement_row_is_refused_naming_file_and_line(row: str, message: str) -> None:
    with pytest.raises(CredentialsError, match=r"agreements\.csv:2: .*" + message):
        credentials(row + "\n")


def test_a_bad_registration_status_is_refused() -> None:
    with pytest.raises(CredentialsError, match=r"registrations\.csv:2: status 'gone'"):
        credentials("", "D1,H1,2026-01-01,,gone\n")


def test_chinese_types_and_statuses_are_read() -> None:
    creds = credentials("Y1,a,定点零售药店,2026-01-01,,,,\n", "D1,Y1,2026-01-01,,暂停\n")
    assert creds.agreements["Y1"][0].services == {"dispensing", "outpatient"}
    assert creds.registration("D1", "Y1", date(2026, 2, 1)).reason == "suspended"


def test_an_empty_scope_is_the_types_default_and_a_given_one_replaces_it() -> None:
    creds = credentials("IH1,a,internet,2026-01-01,,online,drug,i10|E11\n")
    (agreement,) = creds.agreements["IH1"]
    assert agreement.services == {"online"}
    assert agreement.categories == {"drug"}
    assert agreement.treats_online("I10.0") and not agreement.treats_online("J18.9")


def test_the_local_day_of_an_instant_follows_the_time_zone() -> None:
    midnight = datetime(2025, 12, 31, 16, tzinfo=UTC).timestamp()  # 2026-01-01 00:00 local
    assert local_day(midnight, SHANGHAI) == date(2026, 1, 1)
    assert local_day(midnight - 1, SHANGHAI) == date(2025, 12, 31)


def test_overlapping_agreements_are_reported() -> None:
    creds = credentials("H1,a,medical,2026-01-01,2026-06-30,,,\nH1,a,medical,2026-06-30,,,,\n")
    (problem,) = check(creds)
    assert (problem.kind, problem.where) == ("overlap", "agreements.csv:3")


def test_an_open_ended_agreement_followed_by_another_overlaps() -> None:
    creds = credentials("H1,a,medical,2026-01-01,,,,\nH1,a,medical,2027-01-01,,,,\n")
    assert [p.kind for p in check(creds)] == ["overlap"]


def test_a_gap_between_two_registrations_is_reported_with_its_days() -> None:
    creds = credentials(
        "H1,a,medical,2020-01-01,,,,\n",
        "D1,H1,2026-01-01,2026-03-31,active\nD1,H1,2026-04-03,,active\n",
    )
    (problem,) = check(creds)
    assert problem.kind == "gap"
    assert "2026-04-01..2026-04-02" in problem.message


def test_consecutive_periods_are_neither_a_gap_nor_an_overlap() -> None:
    creds = credentials("H1,a,medical,2026-01-01,2026-03-31,,,\nH1,a,medical,2026-04-01,,,,\n")
    assert check(creds) == []


def test_a_registration_at_an_unlisted_institution_is_an_unknown_id() -> None:
    creds = credentials("H1,a,medical,2020-01-01,,,,\n", "D1,H9,2026-01-01,,active\n")
    (problem,) = check(creds)
    assert (problem.kind, problem.where) == ("unknown_id", "registrations.csv:2")
