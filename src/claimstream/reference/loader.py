"""Reference data the rules consult: drug classes, interaction pairs, gender/age restrictions,
special exams and institution grades.

The package ships small illustrative defaults in `reference/data/` (see `data/README.md`);
production loads the real lists from a directory named by `reference_data_path` in the
detection config. Where the real lists come from:

- drug classes (chronic, quinolone ATC J01MA, warfarin, aspirin): the NHSA national
  reimbursement drug list (国家医保药品目录) with WHO ATC codes, and the region's outpatient
  chronic/special disease (门诊慢特病) drug list;
- interaction pairs and gender/age restrictions: the regulators' rule library (规则库) and
  knowledge base (知识库) batches; the first gender/age batch alone held over 11 000 items;
- special exams: large-equipment items of the national medical service price catalogue;
- institution grades: the NHSA registry of designated institutions (定点医疗机构);
- combination rules (drug-class pairs and the diagnoses that justify them) and item
  indications (exam/lab items and the diagnoses that indicate them): the regulators' rule
  library (规则库) and knowledge base (知识库) batches, sections on 联合用药 and 诊断与项目相符.

Formats (CSV with a header row; lines starting with `#` are comments):

- `manifest.json`: `{"format": "claimstream-reference/1", "version": "...", ...}`;
- `drug_classes.csv`: `class,match,code,name`, match `atc` (ATC prefix) or `drug` (exact code);
- `interaction_pairs.csv`: `pair_id,class_a,class_b,description`;
- `restrictions.csv`: `code,name,gender,min_age,max_age` (gender M/F/empty, inclusive ages);
- `special_exams.csv`: `code,name`;
- `institutions.csv`: `institution_id,name,level,region` (level tertiary/secondary/primary/
  ungraded; region optional: with the level it makes the peer group, `peer_group`);
- `combination_rules.csv`: `pair_id,class_a,class_b,indications,description`, classes of
  `drug_classes.csv`, `indications` ICD-10 prefixes separated by `|` (empty: none justifies it);
- `item_indications.csv`: `code,name,indications`, `indications` ICD-10 prefixes separated by
  `|` (at least one);
- `agreements.csv`, `registrations.csv`: who may bill, see `claimstream.reference.credentials`.

A replacement directory must hold `manifest.json`; each CSV file it holds replaces the packaged
one, any it lacks falls back to the packaged default. Everything is loaded once into dicts
keyed by code, so a lookup on the hot path is one dict access whatever the list's size.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

from claimstream.model.config import ConfigError
from claimstream.reference.credentials import Credentials, CredentialsError
from claimstream.reference.credentials import build as build_credentials
from claimstream.reference.csvrows import csv_rows

FORMAT = "claimstream-reference/1"
Gender = Literal["M", "F"]
Level = Literal["tertiary", "secondary", "primary", "ungraded"]
LEVELS: tuple[Level, ...] = ("tertiary", "secondary", "primary", "ungraded")

#: Spellings of institution grades seen in settlement data, mapped to `LEVELS`.
_LEVEL_ALIASES: dict[str, Level] = {
    **{name: name for name in LEVELS},
    "3": "tertiary",
    "2": "secondary",
    "1": "primary",
    "0": "ungraded",
    "三": "tertiary",
    "二": "secondary",
    "一": "primary",
    "三级": "tertiary",
    "二级": "secondary",
    "一级": "primary",
    "未定级": "ungraded",
}
#: ATC codes have prefixes of these lengths (anatomical group .. chemical substance).
_ATC_LEVELS = (1, 3, 4, 5, 7)


class ReferenceDataError(ConfigError):
    """Reference data that cannot be loaded; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Restriction:
    """A drug or service allowed only for one gender and/or an inclusive age band."""

    code: str
    name: str
    gender: Gender | None
    min_age: int | None
    max_age: int | None

    def violation(self, gender: str | None, age: int | None) -> str | None:
        """`gender`, `age` or None; an unknown gender or age never violates."""
        if self.gender is not None and gender is not None and gender != self.gender:
            return "gender"
        if age is not None and (
            (self.min_age is not None and age < self.min_age)
            or (self.max_age is not None and age > self.max_age)
        ):
            return "age"
        return None

    def describe(self) -> str:
        parts = []
        if self.gender is not None:
            parts.append("female only" if self.gender == "F" else "male only")
        if self.min_age is not None and self.max_age is not None:
            parts.append(f"ages {self.min_age}-{self.max_age}")
        elif self.min_age is not None:
            parts.append(f"age {self.min_age} and over")
        elif self.max_age is not None:
            parts.append(f"age {self.max_age} and under")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class InteractionPair:
    pair_id: str
    class_a: str
    class_b: str
    description: str


@dataclass(frozen=True, slots=True)
class CombinationRule:
    """Two drug classes that may be given together only for one of `indications` (ICD-10
    prefixes as `icd10_prefix` writes them)."""

    pair_id: str
    class_a: str
    class_b: str
    indications: tuple[str, ...]
    description: str

    def justified(self, diagnosis: str) -> bool:
        return bool(self.indications) and icd10_prefix(diagnosis).startswith(self.indications)


@dataclass(frozen=True, slots=True)
class ItemIndication:
    """An exam or lab item and the diagnoses (ICD-10 prefixes) that indicate it."""

    code: str
    name: str
    indications: tuple[str, ...]

    def indicated(self, diagnosis: str) -> bool:
        return icd10_prefix(diagnosis).startswith(self.indications)


def icd10_prefix(code: str) -> str:
    """An ICD-10 code or prefix as compared: upper case, no dot, no spaces (`z51.1` -> `Z511`)."""
    return code.strip().upper().replace(".", "").replace(" ", "")


@dataclass(slots=True)
class ReferenceData:
    """All lookups the rules need, built once per engine (not per event)."""

    version: str
    drug_codes: dict[str, frozenset[str]]
    atc_prefixes: dict[str, frozenset[str]]
    pairs: tuple[InteractionPair, ...]
    restrictions: dict[str, Restriction]
    special_exams: frozenset[str]
    institution_levels: dict[str, Level]
    source: str = "package"
    #: the region (e.g. a prefecture code) of designated institutions that have one
    institution_regions: dict[str, str] = field(default_factory=dict)
    #: agreements and registrations: who may bill (`reference.credentials`)
    credentials: Credentials = field(default_factory=Credentials)
    #: drug-class pairs and the diagnoses that justify them (`combination_rules.csv`)
    combinations: tuple[CombinationRule, ...] = ()
    #: exam/lab items by code and the diagnoses that indicate them (`item_indications.csv`)
    item_indications: dict[str, ItemIndication] = field(default_factory=dict)
    _atc_cache: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: str | None = None) -> ReferenceData:
        """The packaged defaults (cached), or a replacement directory overlaid on them."""
        if path is None:
            return _packaged()
        directory = Path(path)
        if not directory.is_dir():
            raise ReferenceDataError(f"reference data path {path!r} is not a directory")
        if not (directory / "manifest.json").is_file():
            raise ReferenceDataError(f"reference data directory {path!r} has no manifest.json")
        return _build(lambda name: _read_dir(directory, name), source=str(directory))

    def drug_classes(self, drug_code: str, atc_code: str | None) -> frozenset[str]:
        """The classes of a dispensed drug, by exact drug code and by ATC prefix."""
        classes = self.drug_codes.get(drug_code, _EMPTY)
        if atc_code:
            by_atc = self._atc_cache.get(atc_code)
            if by_atc is None:
                by_atc = self._atc_cache[atc_code] = self._by_atc(atc_code)
            if by_atc:
                classes = classes | by_atc
        return classes

    def _by_atc(self, atc_code: str) -> frozenset[str]:
        code = atc_code.strip().upper()
        found: frozenset[str] = _EMPTY
        for length in _ATC_LEVELS:
            if length > len(code):
                break
            found = found | self.atc_prefixes.get(code[:length], _EMPTY)
        return found

    def institution_level(self, institution_id: str, declared: str | None) -> Level | None:
        """The grade a claim declares (any common spelling), else the registry's, else None."""
        if declared:
            level = normalize_level(declared)
            if level is not None:
                return level
        return self.institution_levels.get(institution_id)

    def peer_group(self, institution_id: str, declared: str | None) -> str | None:
        """The group an institution is compared within (issue #15): "level:region", the level
        alone when the registry gives no region, None when no level is known at all. The level
        is the registry's, else the claim's; the registry wins here (unlike `institution_level`)
        so an institution's group does not move with what one claim declares."""
        level = self.institution_levels.get(institution_id)
        if level is None and declared:
            level = normalize_level(declared)
        if level is None:
            return None
        region = self.institution_regions.get(institution_id)
        return f"{level}:{region}" if region else level


_EMPTY: frozenset[str] = frozenset()


def normalize_level(text: str) -> Level | None:
    """`tertiary` for 3, 三级, 三甲, 3A, Tertiary...; None for an unknown spelling."""
    value = text.strip().lower()
    level = _LEVEL_ALIASES.get(value)
    if level is None and value:
        level = _LEVEL_ALIASES.get(value[0])  # 三甲 / 3A / 二乙: the grade is the first sign
    return level


@functools.cache
def _packaged() -> ReferenceData:
    return _build(_read_package, source="package")


def _read_package(name: str) -> str | None:
    resource = resources.files("claimstream.reference") / "data" / name
    return resource.read_text(encoding="utf-8") if resource.is_file() else None


def _read_dir(directory: Path, name: str) -> str | None:
    file = directory / name
    if not file.is_file():
        return _read_package(name)
    try:
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReferenceDataError(f"{file}: cannot be read: {exc}") from None


def _build(read: Any, *, source: str) -> ReferenceData:
    manifest_text = read("manifest.json")
    try:
        manifest = json.loads(manifest_text or "")
    except json.JSONDecodeError as exc:
        raise ReferenceDataError(f"manifest.json: not JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ReferenceDataError(f'manifest.json: "format" must be "{FORMAT}"')
    version = manifest.get("version")
    if not isinstance(version, str) or not version:
        raise ReferenceDataError('manifest.json: "version" must be a non-empty string')

    drug_codes: dict[str, set[str]] = {}
    atc_prefixes: dict[str, set[str]] = {}
    for line, row in _rows(read, "drug_classes.csv", ("class", "match", "code")):
        if row["match"] == "atc":
            atc_prefixes.setdefault(row["code"].upper(), set()).add(row["class"])
        elif row["match"] == "drug":
            drug_codes.setdefault(row["code"], set()).add(row["class"])
        else:
            raise ReferenceDataError(f"drug_classes.csv:{line}: match must be 'atc' or 'drug'")
    classes = {c for cs in (*drug_codes.values(), *atc_prefixes.values()) for c in cs}

    pairs = []
    for line, row in _rows(read, "interaction_pairs.csv", ("pair_id", "class_a", "class_b")):
        for side in ("class_a", "class_b"):
            if row[side] not in classes:
                raise ReferenceDataError(
                    f"interaction_pairs.csv:{line}: {side} {row[side]!r} is no class of "
                    "drug_classes.csv"
                )
        pairs.append(
            InteractionPair(
                row["pair_id"], row["class_a"], row["class_b"], row.get("description") or ""
            )
        )

    restrictions = {}
    for line, row in _rows(read, "restrictions.csv", ("code",)):
        restriction = _restriction(row, line)
        restrictions[restriction.code] = restriction

    special = frozenset(row["code"] for _, row in _rows(read, "special_exams.csv", ("code",)))

    levels: dict[str, Level] = {}
    regions: dict[str, str] = {}
    for line, row in _rows(read, "institutions.csv", ("institution_id", "level")):
        level = normalize_level(row["level"])
        if level is None:
            raise ReferenceDataError(
                f"institutions.csv:{line}: level {row['level']!r} is not one of {', '.join(LEVELS)}"
            )
        levels[row["institution_id"]] = level
        region = row.get("region") or ""
        if region:
            if ":" in region:
                raise ReferenceDataError(
                    f"institutions.csv:{line}: region {region!r} must not contain ':' "
                    "(the peer group is written level:region)"
                )
            regions[row["institution_id"]] = region

    combinations = []
    for line, row in _rows(read, "combination_rules.csv", ("pair_id", "class_a", "class_b")):
        for side in ("class_a", "class_b"):
            if row[side] not in classes:
                raise ReferenceDataError(
                    f"combination_rules.csv:{line}: {side} {row[side]!r} is no class of "
                    "drug_classes.csv"
                )
        combinations.append(
            CombinationRule(
                row["pair_id"],
                row["class_a"],
                row["class_b"],
                _prefixes(row.get("indications") or "", "combination_rules.csv", line),
                row.get("description") or "",
            )
        )

    indications: dict[str, ItemIndication] = {}
    for line, row in _rows(read, "item_indications.csv", ("code", "indications")):
        if row["code"] in indications:
            raise ReferenceDataError(f"item_indications.csv:{line}: code {row['code']} again")
        indications[row["code"]] = ItemIndication(
            row["code"],
            row.get("name") or "",
            _prefixes(row["indications"], "item_indications.csv", line),
        )

    try:
        credentials = build_credentials(read)
    except CredentialsError as exc:
        raise ReferenceDataError(str(exc)) from None
    return ReferenceData(
        version=version,
        drug_codes={k: frozenset(v) for k, v in drug_codes.items()},
        atc_prefixes={k: frozenset(v) for k, v in atc_prefixes.items()},
        pairs=tuple(pairs),
        restrictions=restrictions,
        special_exams=special,
        institution_levels=levels,
        institution_regions=regions,
        source=source,
        credentials=credentials,
        combinations=tuple(combinations),
        item_indications=indications,
    )


def _prefixes(text: str, name: str, line: int) -> tuple[str, ...]:
    """`|`-separated ICD-10 prefixes, normalised; an empty one between two `|` is refused."""
    if not text.strip():
        return ()
    prefixes = [icd10_prefix(part) for part in text.split("|")]
    if not all(prefixes):
        raise ReferenceDataError(f"{name}:{line}: an empty ICD-10 prefix in {text!r}")
    return tuple(sorted(set(prefixes)))


def _rows(read: Any, name: str, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV file, comments and blank lines skipped, values stripped."""
    text: str | None = read(name)
    if text is None:
        raise ReferenceDataError(f"{name}: missing from the reference data")
    yield from csv_rows(text, name, required, ReferenceDataError)


def _restriction(row: dict[str, str], line: int) -> Restriction:
    where = f"restrictions.csv:{line}"
    gender = row.get("gender") or None
    if gender not in (None, "M", "F"):
        raise ReferenceDataError(f"{where}: gender must be M, F or empty, got {gender!r}")
    ages: list[int | None] = []
    for column in ("min_age", "max_age"):
        text = row.get(column) or ""
        try:
            ages.append(int(text) if text else None)
        except ValueError:
            raise ReferenceDataError(f"{where}: {column} must be a whole number") from None
    min_age, max_age = ages
    if gender is None and min_age is None and max_age is None:
        raise ReferenceDataError(f"{where}: restricts nothing (no gender, min_age or max_age)")
    if min_age is not None and max_age is not None and min_age > max_age:
        raise ReferenceDataError(f"{where}: min_age {min_age} is above max_age {max_age}")
    return Restriction(row["code"], row.get("name", ""), cast(Gender, gender), min_age, max_age)
