"""Credentials: who may bill the fund, on which days, for what (资质: 定点协议, 医师执业注册).

Two CSV files of the reference data (header row, `#` comments, UTF-8):

- `agreements.csv`: `institution_id,name,type,valid_from,valid_to,services,categories,
  online_conditions`, one row per service agreement (定点服务协议) of an institution; renewals
  are further rows. `type` is 定点医疗机构 (also `medical`), 定点零售药店 (`pharmacy`) or 互联网医院
  (`internet`). `valid_from` / `valid_to` are local dates (YYYY-MM-DD), both inclusive;
  an empty `valid_to` is open-ended. `services` lists the kinds of care the agreement covers,
  `|`-separated, from `dispensing`, `outpatient`, `inpatient`, `online` (empty: the type's
  default, `SERVICES_BY_TYPE`); `categories` the claim item categories it may bill (`drug`,
  `exam`, `lab`, `service`, `material`; empty: the type's default); `online_conditions` the
  ICD-10 prefixes it may treat online (`I10|E11`; empty: any).
- `registrations.csv`: `doctor_id,institution_id,valid_from,valid_to,status`, one row per
  practising registration of a doctor at an institution (执业注册, 多点执业 are several rows);
  dates as above; `status` `active`, `suspended` or `revoked` (also 正常 / 暂停 / 注销).

The two files are hashed together into `Credentials.version` (`sha256:` and 16 hex
characters), which every alert of a rule that consults them records as
`details.credentials_version`: a changed registry is visible in the alerts it produced.

Lookups are a dict access and a scan of one institution's (or doctor's) few rows, so the
registry's size does not matter on the hot path. `check` finds what a registry should not
hold (overlapping rows, gaps between renewals, registrations at institutions it does not
list): `claimstream reference check DIR`.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Literal

from claimstream.model.config import ConfigError
from claimstream.model.events import Claim, Consultation, Dispense, Event
from claimstream.reference.csvrows import csv_rows

AGREEMENTS = "agreements.csv"
REGISTRATIONS = "registrations.csv"

InstitutionType = Literal["定点医疗机构", "定点零售药店", "互联网医院"]
Service = Literal["dispensing", "outpatient", "inpatient", "online"]
Status = Literal["active", "suspended", "revoked"]
SERVICES: tuple[Service, ...] = ("dispensing", "outpatient", "inpatient", "online")
CATEGORIES: tuple[str, ...] = ("drug", "exam", "lab", "service", "material")
STATUSES: tuple[Status, ...] = ("active", "suspended", "revoked")

_TYPE_ALIASES: dict[str, InstitutionType] = {
    "定点医疗机构": "定点医疗机构",
    "medical": "定点医疗机构",
    "hospital": "定点医疗机构",
    "定点零售药店": "定点零售药店",
    "pharmacy": "定点零售药店",
    "互联网医院": "互联网医院",
    "internet": "互联网医院",
    "internet_hospital": "互联网医院",
}
_STATUS_ALIASES: dict[str, Status] = {
    "active": "active",
    "正常": "active",
    "suspended": "suspended",
    "暂停": "suspended",
    "revoked": "revoked",
    "注销": "revoked",
}
#: What an agreement covers when its row leaves `services` / `categories` empty.
SERVICES_BY_TYPE: dict[InstitutionType, frozenset[str]] = {
    "定点医疗机构": frozenset(("dispensing", "outpatient", "inpatient")),
    "定点零售药店": frozenset(("dispensing", "outpatient")),  # 门诊统筹 purchases settle as claims
    "互联网医院": frozenset(("online", "dispensing")),
}
CATEGORIES_BY_TYPE: dict[InstitutionType, frozenset[str]] = {
    "定点医疗机构": frozenset(CATEGORIES),
    "定点零售药店": frozenset(("drug", "material")),
    "互联网医院": frozenset(("drug", "service")),
}


class CredentialsError(ConfigError):
    """A credentials file that cannot be read; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Agreement:
    institution_id: str
    name: str
    type: InstitutionType
    valid_from: date
    valid_to: date | None
    services: frozenset[str]
    categories: frozenset[str]
    online_conditions: tuple[str, ...]
    line: int = 0

    def covers(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)

    def treats_online(self, diagnosis_code: str) -> bool:
        """Whether the agreement lets the institution treat this diagnosis online."""
        if not self.online_conditions:
            return True
        code = diagnosis_code.strip().upper()
        return code.startswith(self.online_conditions)

    def period(self) -> str:
        return f"{self.valid_from}..{self.valid_to or ''}"


@dataclass(frozen=True, slots=True)
class Registration:
    doctor_id: str
    institution_id: str
    valid_from: date
    valid_to: date | None
    status: Status
    line: int = 0

    def covers(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)

    def period(self) -> str:
        return f"{self.valid_from}..{self.valid_to or ''}"


@dataclass(frozen=True, slots=True)
class AgreementCheck:
    """Why an institution may not bill a day: `agreement` is the one in force, if any."""

    reason: Literal["unknown_institution", "not_yet_valid", "expired", "lapsed"] | None
    agreement: Agreement | None
    nearest: Agreement | None = None  # the agreement nearest the day, for the message


@dataclass(frozen=True, slots=True)
class RegistrationCheck:
    reason: (
        Literal[
            "unknown_doctor",
            "not_registered_here",
            "not_yet_valid",
            "expired",
            "lapsed",
            "suspended",
            "revoked",
        ]
        | None
    )
    registration: Registration | None


@dataclass(slots=True)
class Credentials:
    """Agreements by institution and registrations by (doctor, institution), sorted by date."""

    agreements: dict[str, tuple[Agreement, ...]] = field(default_factory=dict)
    registrations: dict[str, dict[str, tuple[Registration, ...]]] = field(default_factory=dict)
    version: str = "sha256:none"

    def agreement(self, institution_id: str, day: date) -> AgreementCheck:
        rows = self.agreements.get(institution_id)
        if not rows:
            return AgreementCheck("unknown_institution", None)
        for row in rows:
            if row.covers(day):
                return AgreementCheck(None, row)
        if day < rows[0].valid_from:
            return AgreementCheck("not_yet_valid", None, rows[0])
        if rows[-1].valid_from > day:  # between two agreements
            earlier = [row for row in rows if row.valid_from <= day]
            return AgreementCheck("lapsed", None, earlier[-1])
        return AgreementCheck("expired", None, rows[-1])

    def registration(self, doctor_id: str, institution_id: str, day: date) -> RegistrationCheck:
        by_institution = self.registrations.get(doctor_id)
        if not by_institution:
            return RegistrationCheck("unknown_doctor", None)
        rows = by_institution.get(institution_id)
        if not rows:
            return RegistrationCheck("not_registered_here", None)
        covering = [row for row in rows if row.covers(day)]
        for row in covering:
            if row.status == "active":
                return RegistrationCheck(None, row)
        if covering:
            row = covering[-1]
            return RegistrationCheck("revoked" if row.status == "revoked" else "suspended", row)
        if day < rows[0].valid_from:
            return RegistrationCheck("not_yet_valid", rows[0])
        if rows[-1].valid_from > day:  # between two registrations
            return RegistrationCheck("lapsed", None)
        return RegistrationCheck("expired", rows[-1])


def build(read: Callable[[str], str | None], *, where: str = "") -> Credentials:
    """`Credentials` from the two files `read(name)` returns (None: the file is missing)."""
    texts = []
    agreements: dict[str, list[Agreement]] = {}
    registrations: dict[str, dict[str, list[Registration]]] = {}
    for name in (AGREEMENTS, REGISTRATIONS):
        text = read(name)
        if text is None:
            raise CredentialsError(f"{where}{name}: missing from the reference data")
        texts.append(text)
    for line, row in _rows(texts[0], where + AGREEMENTS, _AGREEMENT_COLUMNS):
        agreement = _agreement(row, f"{where}{AGREEMENTS}:{line}", line)
        agreements.setdefault(agreement.institution_id, []).append(agreement)
    for line, row in _rows(texts[1], where + REGISTRATIONS, _REGISTRATION_COLUMNS):
        registration = _registration(row, f"{where}{REGISTRATIONS}:{line}", line)
        registrations.setdefault(registration.doctor_id, {}).setdefault(
            registration.institution_id, []
        ).append(registration)
    digest = hashlib.sha256("\x1f".join(texts).encode()).hexdigest()[:16]
    return Credentials(
        agreements={k: tuple(sorted(v, key=_start)) for k, v in agreements.items()},
        registrations={
            doctor: {inst: tuple(sorted(v, key=_start)) for inst, v in by.items()}
            for doctor, by in registrations.items()
        },
        version=f"sha256:{digest}",
    )


def _start(row: Agreement | Registration) -> tuple[date, int]:
    return (row.valid_from, row.line)


def local_day(ts: float, tz: tzinfo) -> date:
    """The local calendar day of an instant: agreements and registrations are dated locally
    (2026-12-31T16:00:00Z is 2027-01-01 in Asia/Shanghai)."""
    return datetime.fromtimestamp(ts, tz).date()


def service_of(event: Event) -> Service:
    """The kind of care an event bills, in the terms of an agreement's `services`."""
    body = event.body
    if isinstance(body, Claim):
        return body.visit_type
    if isinstance(body, Consultation):
        return "online" if body.mode == "online" else "outpatient"
    if isinstance(body, Dispense):
        return "dispensing"
    return "inpatient"  # an admission or a discharge


# --- checking a registry ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Problem:
    """Something a registry should not hold: `kind` is overlap, gap or unknown_id."""

    kind: Literal["overlap", "gap", "unknown_id"]
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.kind}: {self.message}"


def check(credentials: Credentials) -> list[Problem]:
    """Overlapping rows, gaps between successive rows, registrations at unlisted institutions.

    Two agreements of one institution (two registrations of one doctor at one institution)
    whose periods share a day overlap: which one is in force that day is ambiguous. A day
    between the end of one and the start of the next is a gap: the institution (doctor) may
    not bill it, which is allowed but usually a renewal typed wrong, so it is reported.
    """
    problems: list[Problem] = []
    for institution, agreements in sorted(credentials.agreements.items()):
        problems += _periods(AGREEMENTS, f"institution {institution}", agreements)
    for doctor, by_institution in sorted(credentials.registrations.items()):
        for institution, registrations in sorted(by_institution.items()):
            problems += _periods(REGISTRATIONS, f"doctor {doctor} at {institution}", registrations)
            if institution not in credentials.agreements:
                problems.append(
                    Problem(
                        "unknown_id",
                        f"{REGISTRATIONS}:{registrations[0].line}",
                        f"doctor {doctor} is registered at institution {institution}, which "
                        f"{AGREEMENTS} does not list",
                    )
                )
    return sorted(problems, key=lambda p: (p.where.split(":")[0], _line(p.where), p.kind))


def _line(where: str) -> int:
    tail = where.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _periods(name: str, what: str, rows: Sequence[Agreement | Registration]) -> list[Problem]:
    problems = []
    for earlier, later in itertools.pairwise(rows):
        where = f"{name}:{later.line}"
        if earlier.valid_to is None or later.valid_from <= earlier.valid_to:
            problems.append(
                Problem(
                    "overlap",
                    where,
                    f"{what}: {later.period()} overlaps {earlier.period()} (line {earlier.line})",
                )
            )
        elif later.valid_from > earlier.valid_to + timedelta(days=1):
            first = earlier.valid_to + timedelta(days=1)
            last = later.valid_from - timedelta(days=1)
            problems.append(
                Problem(
                    "gap",
                    where,
                    f"{what}: nothing valid {first}..{last}, between line {earlier.line} "
                    f"and this one",
                )
            )
    return problems


# --- parsing ------------------------------------------------------------------------------

_AGREEMENT_COLUMNS = ("institution_id", "type", "valid_from")
_REGISTRATION_COLUMNS = ("doctor_id", "institution_id", "valid_from", "status")


def _rows(text: str, name: str, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a CSV text, comments and blank lines skipped, values stripped."""
    yield from csv_rows(text, name, required, CredentialsError)


def _day(text: str, column: str, where: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CredentialsError(
            f"{where}: {column} must be a date YYYY-MM-DD, got {text!r}"
        ) from None


def _dates(row: dict[str, str], where: str) -> tuple[date, date | None]:
    start = _day(row["valid_from"], "valid_from", where)
    end_text = row.get("valid_to") or ""
    end = _day(end_text, "valid_to", where) if end_text else None
    if end is not None and end < start:
        raise CredentialsError(f"{where}: valid_to {end} is before valid_from {start}")
    return start, end


def _choices(text: str, allowed: tuple[str, ...], column: str, where: str) -> frozenset[str]:
    values = frozenset(v.strip() for v in text.split("|") if v.strip())
    unknown = sorted(values - set(allowed))
    if unknown:
        raise CredentialsError(
            f"{where}: {column} {', '.join(unknown)} not one of {', '.join(allowed)}"
        )
    return values


def _agreement(row: dict[str, str], where: str, line: int) -> Agreement:
    kind = _TYPE_ALIASES.get(row["type"])
    if kind is None:
        raise CredentialsError(
            f"{where}: type {row['type']!r} is not 定点医疗机构, 定点零售药店 or 互联网医院 "
            "(medical, pharmacy, internet)"
        )
    start, end = _dates(row, where)
    services = _choices(row.get("services", ""), SERVICES, "services", where)
    categories = _choices(row.get("categories", ""), CATEGORIES, "categories", where)
    conditions = tuple(
        sorted(
            {c.strip().upper() for c in row.get("online_conditions", "").split("|") if c.strip()}
        )
    )
    return Agreement(
        institution_id=row["institution_id"],
        name=row.get("name", ""),
        type=kind,
        valid_from=start,
        valid_to=end,
        services=services or SERVICES_BY_TYPE[kind],
        categories=categories or CATEGORIES_BY_TYPE[kind],
        online_conditions=conditions,
        line=line,
    )


def _registration(row: dict[str, str], where: str, line: int) -> Registration:
    status = _STATUS_ALIASES.get(row["status"])
    if status is None:
        raise CredentialsError(
            f"{where}: status {row['status']!r} is not active, suspended or revoked "
            "(正常, 暂停, 注销)"
        )
    start, end = _dates(row, where)
    return Registration(row["doctor_id"], row["institution_id"], start, end, status, line)
