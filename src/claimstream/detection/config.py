"""Detection configuration: engine settings plus one settings object per rule.

`DetectionConfig.default()` collects every registered rule's settings (`claimstream.rules`).
Changes are made with `with_rule_changes`, which coerces text values (from the CLI, environment
or a control message), validates them and bumps `version`, or refuses and changes nothing.

Custom rules (`claimstream.rules.custom`, docs/custom-rules.md) sit beside them in
`custom_rules` (`[custom_rules.NAME]` tables), with the lists of strings their expressions may
read in `custom_lists`; their expressions are compiled and type-checked whenever a
configuration is made, so an invalid one is refused as a `ConfigError` naming the rule and the
setting, never met on an event.
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
from claimstream.reference.loader import ReferenceData
from claimstream.rules import RULES
from claimstream.rules.custom import CustomRuleSettings, all_lists, check, check_lists

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

    Aligned release (docs/time.md §5): a doctor's or institution's event reaches its rules once
    the watermark of the input partitions has passed it by `alignment_slack_minutes` (None: the
    allowed lateness, which makes the worker equal `replay` for any event in time for its
    partition; less: lower latency, the same guarantee only for partitions ordered within the
    slack). The worker counts an input partition idle after `source_idle_seconds` of wall time
    without a record (and read to its end); `replay` counts records instead.
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
    alignment_slack_minutes: float | None = None
    source_idle_seconds: float = 60.0
    #: rules written as configuration: name -> template, parameters and expressions
    custom_rules: Mapping[str, CustomRuleSettings] = field(default_factory=dict)
    #: named lists of strings custom rules' expressions read as `lists.<name>`
    custom_lists: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
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
            "source_idle_seconds",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative")
        if self.alignment_slack_minutes is not None and self.alignment_slack_minutes < 0:
            raise ConfigError("alignment_slack_minutes must not be negative")
        earliest = _instant("earliest_event_time", self.earliest_event_time)
        latest = _instant("latest_event_time", self.latest_event_time)
        if earliest >= latest:
            raise ConfigError("earliest_event_time must be before latest_event_time")
        object.__setattr__(self, "_plausible", (earliest, latest))
        for settings in self.rules.values():
            settings.validate()
        if self.custom_rules or self.custom_lists:
            reference = ReferenceData.load(self.reference_data_path)
            check_lists(self.custom_lists, reference)
            lists = all_lists(reference, self.custom_lists)
            for name, custom in self.custom_rules.items():
                try:
                    custom.validate()
                except ConfigError as exc:
                    raise ConfigError(f"custom_rules.{name}: {exc}") from None
                check(name, custom, lists, self.rules)

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

    def settings(self, name: str) -> RuleSettings:
        """The settings of a rule, built-in or custom, by the name its alerts carry."""
        found = self.rules.get(name) or self.custom_rules.get(name)
        if found is None:
            raise ConfigError(f"unknown rule {name!r}")
        return found

    def with_rule_changes(self, rule: str, changes: Mapping[str, Any]) -> DetectionConfig:
        """A new config with `changes` applied to one rule and `version` + 1 (or `ConfigError`).
        A custom rule's settings change the same way (`rules set NAME mode=enforce`)."""
        if rule in self.custom_rules:
            where = f"custom_rules.{rule}"
            custom = replace_checked(self.custom_rules[rule], changes, where=where)
            return dataclasses.replace(
                self,
                custom_rules={**self.custom_rules, rule: custom},
                version=self.version + 1,
            )
        if rule not in self.rules:
            known = sorted([*self.rules, *self.custom_rules])
            raise ConfigError(f"unknown rule {rule!r}; known: {', '.join(known)}")
        updated = replace_checked(self.rules[rule], changes, where=rule)
        return dataclasses.replace(
            self, rules={**self.rules, rule: updated}, version=self.version + 1
        )

    def with_custom(
        self,
        rules: Mapping[str, Mapping[str, Any]],
        lists: Mapping[str, Any] | None = None,
    ) -> DetectionConfig:
        """A new config with these custom rules added or replaced (each a whole definition,
        as in a `[custom_rules.NAME]` table) and these lists added or replaced, `version` + 1;
        `ConfigError` naming the rule and the setting when one is invalid."""
        custom = {**self.custom_rules, **_custom_rules(rules)}
        named = {**self.custom_lists, **_custom_lists(lists or {})}
        return dataclasses.replace(
            self, custom_rules=custom, custom_lists=named, version=self.version + 1
        )

    def without_custom_rule(self, name: str) -> DetectionConfig:
        """A new config without the custom rule `name`, `version` + 1."""
        if name not in self.custom_rules:
            if name in self.rules:
                raise ConfigError(
                    f"{name} is a built-in rule: turn it off with `enabled=false` instead"
                )
            known = ", ".join(sorted(self.custom_rules)) or "none"
            raise ConfigError(f"unknown custom rule {name!r}; custom rules: {known}")
        custom = {k: v for k, v in self.custom_rules.items() if k != name}
        return dataclasses.replace(self, custom_rules=custom, version=self.version + 1)

    def with_engine_changes(self, changes: Mapping[str, Any]) -> DetectionConfig:
        """A new config with engine-level settings changed and `version` + 1."""
        if {"rules", "version", "custom_rules", "custom_lists"} & set(changes):
            raise ConfigError("use with_rule_changes for rules; version is managed")
        return replace_checked(self, {**changes, "version": self.version + 1}, where="engine")

    def to_dict(self) -> dict[str, Any]:
        """The configuration as JSON-shaped data (`from_dict` reads it back). `custom_rules`
        and `custom_lists` appear only when there are some, so the shape of a configuration
        without custom rules is what it was before them (and no CLAIMSTREAM_ENGINE__ variable
        is derived from them: they are not engine settings)."""
        data = {
            "version": self.version,
            "allowed_lateness_hours": self.allowed_lateness_hours,
            "dedup_retention_hours": self.dedup_retention_hours,
            "idle_expiry_grace_hours": self.idle_expiry_grace_hours,
            "timezone": self.timezone,
            "reference_data_path": self.reference_data_path,
            "earliest_event_time": self.earliest_event_time,
            "latest_event_time": self.latest_event_time,
            "max_future_skew_minutes": self.max_future_skew_minutes,
            "alignment_slack_minutes": self.alignment_slack_minutes,
            "source_idle_seconds": self.source_idle_seconds,
            "rules": {name: dataclasses.asdict(s) for name, s in sorted(self.rules.items())},
        }
        if self.custom_rules:
            data["custom_rules"] = {
                name: dataclasses.asdict(s) for name, s in sorted(self.custom_rules.items())
            }
        if self.custom_lists:
            data["custom_lists"] = {k: list(v) for k, v in sorted(self.custom_lists.items())}
        return data

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
        custom_rules = data.get("custom_rules") or {}
        custom_lists = data.get("custom_lists") or {}
        if not isinstance(custom_rules, Mapping):
            raise ConfigError("'custom_rules' must be a table of rule name -> definition")
        if not isinstance(custom_lists, Mapping):
            raise ConfigError("'custom_lists' must be a table of list name -> list of strings")
        engine = {k: v for k, v in data.items() if k not in _SECTIONS}
        if engine:
            config = config.with_engine_changes(engine)
        if custom_rules or custom_lists:
            config = config.with_custom(custom_rules, custom_lists)
        version = data.get("version")
        return dataclasses.replace(config, version=int(version)) if version else config

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> DetectionConfig:
        """`from_dict` of a TOML (`.toml`) or JSON (`.json`) file, so `replay --config` can
        backtest the configuration a worker runs. Every error names the file and what is wrong.
        """
        data = read_table(path)
        try:
            return cls.from_dict(data)
        except ValueError as exc:  # ConfigError, or a version that is not a number
            raise ConfigError(f"{Path(path)}: {exc}") from None


def read_table(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The top-level table of a TOML (`.toml`) or JSON (`.json`) configuration file;
    `ConfigError` naming the file when it cannot be read or parsed."""
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
    return data


def custom_tables(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The `[custom_rules.*]` and `[custom_lists]` tables of a file (what `rules add` and
    `rules diff` read); `ConfigError` when it holds anything else or no custom rule."""
    file = Path(path)
    data = read_table(file)
    other = sorted(set(data) - {"custom_rules", "custom_lists"})
    if other:
        raise ConfigError(
            f"{file}: holds {', '.join(other)}; a file of custom rules holds only "
            "[custom_rules.NAME] tables and [custom_lists] (`rules set` changes the rest)"
        )
    rules, lists = data.get("custom_rules") or {}, data.get("custom_lists") or {}
    if not isinstance(rules, dict) or not rules:
        raise ConfigError(f"{file}: no [custom_rules.NAME] table")
    if not isinstance(lists, dict):
        raise ConfigError(f"{file}: custom_lists must be a table of list name -> strings")
    return rules, lists


#: the top-level keys that are not engine settings
_SECTIONS = ("rules", "version", "custom_rules", "custom_lists")


def _custom_rules(tables: Mapping[str, Any]) -> dict[str, CustomRuleSettings]:
    """`[custom_rules.NAME]` tables as settings (`ConfigError` naming the rule and field)."""
    found: dict[str, CustomRuleSettings] = {}
    for name, table in tables.items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"custom_rules.{name} must be a table of settings")
        found[name] = replace_checked(CustomRuleSettings(), table, where=f"custom_rules.{name}")
    return found


def _custom_lists(tables: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for name, values in tables.items():
        if not isinstance(values, list | tuple) or not all(isinstance(v, str) for v in values):
            raise ConfigError(f"custom_lists.{name} must be a list of strings")
        found[name] = tuple(values)
    return found


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
