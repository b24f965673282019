"""Sanction settings: the ladder, doctor points and credit grades, with the issue's defaults.

Everything a supervisor may want to tune is here and nowhere else, so a region with other
periods or thresholds changes configuration, not code. `SanctionSettings.from_dict` reads the
nested shape a TOML/JSON file has (`[ladder]`, `[points]`, `[grade]` tables plus `timezone`);
an unknown key or an impossible value raises `ConfigError` and changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from claimstream.model.config import ConfigError, positive
from claimstream.model.events import KEY_KINDS, KeyKind
from claimstream.model.outputs import SEVERITIES, Severity

#: what a case confirmed as intentional fraud does to its subject (`LadderSettings`)
FRAUD_EFFECTS = ("step", "suspend")


@dataclass(frozen=True, slots=True)
class LadderSettings:
    """The escalation ladder: warning, then FREEZE until local midnight, then SUSPEND."""

    #: which subjects named on an alert escalate (its institution, doctor, patient)
    kinds: tuple[KeyKind, ...] = KEY_KINDS
    #: alerts below this severity are not violations (they neither warn nor count)
    min_severity: Severity = "warning"
    #: a violation with no other in this period is a "first" one and gives a warning
    lookback_days: float = 90.0
    #: another violation within this many days (either side) makes it a repeat: FREEZE
    repeat_window_days: float = 30.0
    #: the period over which freezes, critical alerts and amounts are counted for SUSPEND
    suspend_window_days: float = 90.0
    suspend_after_freezes: int = 3
    suspend_on_critical: bool = True
    #: SUSPEND when the suspicious amount of the subject's violations in the window exceeds it
    suspend_amount_threshold: float = 100_000.0
    #: rules that freeze at once (their own same-day FREEZE of the institution): not doubled
    immediate_rules: tuple[str, ...] = (
        "readmission_24h",
        "split_hospitalization",
        "trace_code_reuse",
    )
    #: where an alert's suspicious amount is read from (`details`, first numeric field wins)
    amount_fields: tuple[str, ...] = ("suspicious_amount", "amount", "total_amount", "fund_amount")
    #: a case confirmed as intentional fraud: "step" (one step up: FREEZE for the day, or
    #: SUSPEND when already frozen) or "suspend" (straight to SUSPEND)
    intentional_fraud: str = "step"

    def validate(self) -> None:
        if self.intentional_fraud not in FRAUD_EFFECTS:
            raise ConfigError(
                f"intentional_fraud must be one of {', '.join(FRAUD_EFFECTS)}, "
                f"got {self.intentional_fraud!r}"
            )
        for name in ("lookback_days", "repeat_window_days", "suspend_window_days"):
            positive(name, getattr(self, name))
        positive("suspend_after_freezes", self.suspend_after_freezes)
        positive("suspend_amount_threshold", self.suspend_amount_threshold)
        if self.min_severity not in SEVERITIES:
            raise ConfigError(f"min_severity must be one of {', '.join(SEVERITIES)}")
        unknown = set(self.kinds) - set(KEY_KINDS)
        if unknown:
            raise ConfigError(f"kinds must be among {', '.join(KEY_KINDS)}: {sorted(unknown)}")

    @property
    def horizon_days(self) -> float:
        """How far back the ladder ever looks, so how long a subject keeps an alert."""
        return max(self.lookback_days, self.repeat_window_days, self.suspend_window_days)


@dataclass(frozen=True, slots=True)
class PointsSettings:
    """Doctor points (医保医师记分): per confirmed violation by severity, per calendar year."""

    info: int = 0
    warning: int = 2
    high: int = 5
    critical: int = 9
    #: at this many points in one local calendar year the doctor's billing is suspended
    suspend_at: int = 12

    def for_severity(self, severity: Severity) -> int:
        return int(getattr(self, severity))

    def validate(self) -> None:
        for severity in SEVERITIES:
            if self.for_severity(severity) < 0:
                raise ConfigError(f"points for {severity} must not be negative")
        positive("suspend_at", self.suspend_at)


@dataclass(frozen=True, slots=True)
class GradeSettings:
    """Institution credit grade; the formula is in `claimstream.sanctions.grades`."""

    horizon_days: float = 365.0
    penalty_info: float = 0.0
    penalty_warning: float = 2.0
    penalty_high: float = 5.0
    penalty_critical: float = 20.0
    #: score points lost per 10 000 (currency units) of suspicious amount
    penalty_per_10k: float = 1.0
    #: a remediated violation's penalty is multiplied by this (0.5: remediation halves it)
    remediation_factor: float = 0.5
    a_min: float = 90.0
    b_min: float = 75.0
    c_min: float = 60.0
    suspend_on_d: bool = True

    def penalty(self, severity: Severity) -> float:
        return float(getattr(self, f"penalty_{severity}"))

    def validate(self) -> None:
        positive("horizon_days", self.horizon_days)
        for severity in SEVERITIES:
            if self.penalty(severity) < 0:
                raise ConfigError(f"penalty_{severity} must not be negative")
        if self.penalty_per_10k < 0:
            raise ConfigError("penalty_per_10k must not be negative")
        if not 0 <= self.remediation_factor <= 1:
            raise ConfigError("remediation_factor must be between 0 and 1")
        if not 100 >= self.a_min > self.b_min > self.c_min > 0:
            raise ConfigError("grade bounds must satisfy 100 >= a_min > b_min > c_min > 0")


@dataclass(frozen=True, slots=True)
class SanctionSettings:
    ladder: LadderSettings = field(default_factory=LadderSettings)
    points: PointsSettings = field(default_factory=PointsSettings)
    grade: GradeSettings = field(default_factory=GradeSettings)
    #: local days (freeze until midnight) and calendar years (points) are taken here
    timezone: str = "Asia/Shanghai"
    #: how long ids of manual actions are remembered, so a redelivered one changes nothing
    manual_retention_days: float = 30.0
    _tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "_tz", ZoneInfo(self.timezone))
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"unknown time zone {self.timezone!r}") from None
        positive("manual_retention_days", self.manual_retention_days)
        self.ladder.validate()
        self.points.validate()
        self.grade.validate()

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SanctionSettings:
        """Defaults overlaid with `data`: `{"ladder": {...}, "points": {...}, "grade": {...},
        "timezone": ..., "manual_retention_days": ...}`, every key optional."""
        parts: dict[str, Any] = {}
        for key, value in data.items():
            if key in ("ladder", "points", "grade"):
                if not isinstance(value, Mapping):
                    raise ConfigError(f"{key} must be a table of settings")
                parts[key] = _overlay(getattr(cls(), key), value, key)
            elif key in ("timezone", "manual_retention_days"):
                parts[key] = value
            else:
                raise ConfigError(f"unknown sanctions setting {key!r}")
        return cls(**parts)


def _overlay(default: Any, changes: Mapping[str, Any], where: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(default)}
    coerced: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in known:
            raise ConfigError(f"{where} has no setting {key!r}; settings: {', '.join(known)}")
        current = getattr(default, key)
        if isinstance(current, tuple):
            coerced[key] = tuple(value.split(",") if isinstance(value, str) else value)
        elif isinstance(current, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{where}.{key} must be true or false")
            coerced[key] = value
        elif isinstance(current, int | float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{where}.{key} must be a number, got {value!r}")
            if isinstance(current, int) and value != int(value):
                raise ConfigError(f"{where}.{key} must be a whole number, got {value!r}")
            coerced[key] = type(current)(value)
        else:
            coerced[key] = value
    try:
        new = dataclasses.replace(default, **coerced)
        new.validate()
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return new
