"""Detection configuration: engine settings plus one settings object per rule.

`DetectionConfig.default()` collects every registered rule's settings (`claimstream.rules`).
Changes are made with `with_rule_changes`, which coerces text values (from the CLI, environment
or a control message), validates them and bumps `version`, or refuses and changes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from claimstream.model.config import ConfigError, RuleSettings, replace_checked
from claimstream.model.events import EARLIEST_YEAR, LATEST_YEAR
from claimstream.rules import RULES

__all__ = ["ConfigError", "DetectionConfig"]

S = TypeVar("S", bound=RuleSettings)


@dataclass(frozen=True, slots=True)
class DetectionConfig:
    """Everything the engine needs besides the clock. Immutable: a change makes a new one.

    Plausible event time: an event whose occurred_at is before `earliest_event_time` or not
    before `latest_event_time` is dead-lettered as `implausible_timestamp` (replay and worker);
    the worker also refuses one more than `max_future_skew_minutes` ahead of its wall clock
    (`future_timestamp`). Both bounds are ISO-8601 times with an offset, inside the contract's
    years (`events.EARLIEST_YEAR`..`LATEST_YEAR`).
    """

    rules: Mapping[str, RuleSettings]
    allowed_lateness_hours: float = 1.0
    dedup_retention_hours: float = 24.0
    idle_expiry_grace_hours: float = 24.0
    timezone: str = "Asia/Shanghai"
    #: a directory replacing the packaged reference data (see `claimstream.reference.loader`)
    reference_data_path: str | None = None
    earliest_event_time: str = "2000-01-01T00:00:00+00:00"
    latest_event_time: str = "2100-01-01T00:00:00+00:00"
    max_future_skew_minutes: float = 10.0
    version: int = 1
    _tz: ZoneInfo = field(init=False, repr=False, compare=False)
    _plausible: tuple[float, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "_tz", ZoneInfo(self.timezone))
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"unknown time zone {self.timezone!r}") from None
        for name in (
            "allowed_lateness_hours",
            "dedup_retention_hours",
            "idle_expiry_grace_hours",
            "max_future_skew_minutes",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative")
        earliest = _instant("earliest_event_time", self.earliest_event_time)
        latest = _instant("latest_event_time", self.latest_event_time)
        if earliest >= latest:
            raise ConfigError("earliest_event_time must be before latest_event_time")
        object.__setattr__(self, "_plausible", (earliest, latest))
        for settings in self.rules.values():
            settings.validate()

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    @property
    def plausible(self) -> tuple[float, float]:
        """[earliest, latest) event time in POSIX seconds."""
        return self._plausible

    @classmethod
    def default(cls, **engine: Any) -> DetectionConfig:
        return cls(rules={name: rule.Settings() for name, rule in RULES.items()}, **engine)

    def rule(self, name: str, kind: type[S]) -> S:
        settings = self.rules[name]
        if not isinstance(settings, kind):
            raise ConfigError(f"settings of {name} are {type(settings).__name__}, not {kind}")
        return settings

    def with_rule_changes(self, rule: str, changes: Mapping[str, Any]) -> DetectionConfig:
        """A new config with `changes` applied to one rule and `version` + 1 (or `ConfigError`)."""
        if rule not in self.rules:
            raise ConfigError(f"unknown rule {rule!r}; known: {', '.join(sorted(self.rules))}")
        updated = replace_checked(self.rules[rule], changes, where=rule)
        return dataclasses.replace(
            self, rules={**self.rules, rule: updated}, version=self.version + 1
        )

    def with_engine_changes(self, changes: Mapping[str, Any]) -> DetectionConfig:
        """A new config with engine-level settings changed and `version` + 1."""
        if "rules" in changes or "version" in changes:
            raise ConfigError("use with_rule_changes for rules; version is managed")
        return replace_checked(self, {**changes, "version": self.version + 1}, where="engine")

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "allowed_lateness_hours": self.allowed_lateness_hours,
            "dedup_retention_hours": self.dedup_retention_hours,
            "idle_expiry_grace_hours": self.idle_expiry_grace_hours,
            "timezone": self.timezone,
            "reference_data_path": self.reference_data_path,
            "earliest_event_time": self.earliest_event_time,
            "latest_event_time": self.latest_event_time,
            "max_future_skew_minutes": self.max_future_skew_minutes,
            "rules": {name: dataclasses.asdict(s) for name, s in sorted(self.rules.items())},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DetectionConfig:
        """Defaults overlaid with `data` (the shape `to_dict` writes; every key optional)."""
        config = cls.default()
        rules = data.get("rules") or {}
        if not isinstance(rules, Mapping):
            raise ConfigError("'rules' must be a table of rule name -> settings")
        for name, changes in rules.items():
            if not isinstance(changes, Mapping):
                raise ConfigError(f"settings of rule {name!r} must be a table")
            config = config.with_rule_changes(name, changes)
        engine = {k: v for k, v in data.items() if k not in ("rules", "version")}
        if engine:
            config = config.with_engine_changes(engine)
        version = data.get("version")
        return dataclasses.replace(config, version=int(version)) if version else config

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> DetectionConfig:
        """`from_dict` of a TOML (`.toml`) or JSON (`.json`) file, so `replay --config` can
        backtest the configuration a worker runs. Every error names the file and what is wrong.
        """
        file = Path(path)
        suffix = file.suffix.lower()
        if suffix not in (".toml", ".json"):
            raise ConfigError(f"{file}: a configuration file must end in .toml or .json")
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{file}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{file}: cannot be read: {exc}") from None
        try:
            data = tomllib.loads(text) if suffix == ".toml" else json.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: invalid TOML: {exc}") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{file}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
            ) from None
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: the top level must be a table of settings")
        try:
            return cls.from_dict(data)
        except ValueError as exc:  # ConfigError, or a version that is not a number
            raise ConfigError(f"{file}: {exc}") from None


def _instant(name: str, value: str) -> float:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be an ISO-8601 time, got {value!r}") from None
    if moment.tzinfo is None:
        raise ConfigError(f"{name} needs a UTC offset (e.g. 2000-01-01T00:00:00+00:00)")
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise ConfigError(
            f"{name} must be within the years {EARLIEST_YEAR}..{LATEST_YEAR} the contract accepts"
        )
    return moment.timestamp()
