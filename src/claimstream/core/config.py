"""Detection configuration: engine settings plus one settings object per rule.

Each rule module declares its own settings dataclass (a subclass of `RuleSettings`) with the
regulators' default thresholds; `DetectionConfig.default()` collects them. Changes are made
with `DetectionConfig.with_rule_changes`, which coerces text values (from the CLI, environment
or a control message), validates them and bumps `version`, or refuses and changes nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, cast, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from claimstream.core.outputs import SEVERITIES, Severity

Mode = Literal["enforce", "shadow"]


class ConfigError(ValueError):
    """A configuration value or change that cannot be applied; the message says why."""


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """What every rule has: on/off, enforce or shadow, its severity, whether it issues commands.

    In `shadow` mode a rule is evaluated and counted but its alerts go to the shadow output and
    it issues no command, so a threshold can be tried on live traffic before it bites.
    """

    enabled: bool = True
    mode: Mode = "enforce"
    severity: Severity = "warning"
    issue_commands: bool = False

    def validate(self) -> None:
        """Raise `ConfigError` on an impossible value; subclasses extend this."""
        if self.mode not in ("enforce", "shadow"):
            raise ConfigError(f"mode must be 'enforce' or 'shadow', got {self.mode!r}")
        if self.severity not in SEVERITIES:
            raise ConfigError(f"severity must be one of {', '.join(SEVERITIES)}")


S = TypeVar("S", bound=RuleSettings)


def positive(name: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{name} must be greater than 0, got {value}")


@dataclass(frozen=True, slots=True)
class DetectionConfig:
    """Everything the engine needs besides the clock. Immutable: a change makes a new one."""

    rules: Mapping[str, RuleSettings]
    allowed_lateness_hours: float = 1.0
    dedup_retention_hours: float = 24.0
    idle_expiry_grace_hours: float = 24.0
    timezone: str = "Asia/Shanghai"
    #: a directory replacing the packaged reference data (see `claimstream.reference`)
    reference_data_path: str | None = None
    version: int = 1
    _tz: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "_tz", ZoneInfo(self.timezone))
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"unknown time zone {self.timezone!r}") from None
        for name in ("allowed_lateness_hours", "dedup_retention_hours", "idle_expiry_grace_hours"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative")
        for settings in self.rules.values():
            settings.validate()

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    @classmethod
    def default(cls, **engine: Any) -> DetectionConfig:
        from claimstream.rules import RULES  # the registry imports rule modules; avoid a cycle

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
        updated = _replace(self.rules[rule], changes, where=rule)
        return dataclasses.replace(
            self, rules={**self.rules, rule: updated}, version=self.version + 1
        )

    def with_engine_changes(self, changes: Mapping[str, Any]) -> DetectionConfig:
        """A new config with engine-level settings changed and `version` + 1."""
        if "rules" in changes or "version" in changes:
            raise ConfigError("use with_rule_changes for rules; version is managed")
        return _replace(self, {**changes, "version": self.version + 1}, where="engine")

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "allowed_lateness_hours": self.allowed_lateness_hours,
            "dedup_retention_hours": self.dedup_retention_hours,
            "idle_expiry_grace_hours": self.idle_expiry_grace_hours,
            "timezone": self.timezone,
            "reference_data_path": self.reference_data_path,
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


T = TypeVar("T")


def _replace(obj: T, changes: Mapping[str, Any], *, where: str) -> T:
    known = {f.name: f for f in dataclasses.fields(cast(Any, obj)) if f.init}
    coerced: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in known:
            raise ConfigError(
                f"{where} has no setting {key!r}; settings: {', '.join(sorted(known))}"
            )
        coerced[key] = _coerce(value, known[key].type, f"{where}.{key}", owner=type(obj))
    try:
        new = dataclasses.replace(cast(Any, obj), **coerced)
        if isinstance(new, RuleSettings):
            new.validate()
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return cast(T, new)


def _coerce(value: Any, annotation: Any, where: str, owner: type) -> Any:
    hint = typing.get_type_hints(owner).get(where.rsplit(".", 1)[1], annotation)
    return _coerce_to(value, hint, where)


def _coerce_to(value: Any, hint: Any, where: str) -> Any:
    origin = get_origin(hint)
    if origin is Literal:
        options = get_args(hint)
        if value not in options:
            raise ConfigError(f"{where} must be one of {', '.join(map(str, options))}")
        return value
    if origin in (types.UnionType, typing.Union):
        args = [a for a in get_args(hint) if a is not type(None)]
        nullable = len(args) < len(get_args(hint))
        blank = value is None or (isinstance(value, str) and value.lower() in ("", "none", "null"))
        if nullable and blank:
            return None
        return _coerce_to(value, args[0], where)
    if origin in (tuple, frozenset):
        items = value.split(",") if isinstance(value, str) else list(value)
        inner = get_args(hint)[0]
        return origin(
            _coerce_to(v.strip() if isinstance(v, str) else v, inner, where) for v in items
        )
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    if hint in (int, float):
        try:
            number = hint(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a number, got {value!r}") from None
        if hint is int and isinstance(value, float) and not value.is_integer():
            raise ConfigError(f"{where} must be a whole number, got {value!r}")
        return number
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be text, got {value!r}")
        return value
    return value
