"""What every rule's settings are made of, and how text becomes a validated setting.

Each rule module declares its own settings dataclass (a subclass of `RuleSettings`) with the
regulators' default thresholds; `claimstream.detection.config.DetectionConfig` collects them.
`replace_checked` coerces text values (from the CLI, the environment or a control message) to
a dataclass field's type and validates the result, or raises `ConfigError` naming the setting.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast, get_args, get_origin

from claimstream.model.outputs import SEVERITIES, Severity

Mode = Literal["enforce", "shadow"]
#: What a violation of a rule means for a pre-settlement check (事前/事中): `warn` lets the
#: settlement go ahead with the warning shown, `hold` stops it for a reviewer, `reject` refuses
#: it (the check's decision is the strictest of its violations).
OnCheck = Literal["warn", "hold", "reject"]
ON_CHECK: tuple[OnCheck, ...] = ("warn", "hold", "reject")
#: The regulation most rules enforce (State Council Order No. 735, in force 2021-05-01).
REGULATION = "《医疗保障基金使用监督管理条例》"


class ConfigError(ValueError):
    """A configuration value or change that cannot be applied; the message says why."""


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """What every rule has: on/off, enforce or shadow, its severity, whether it issues commands,
    and the law it enforces.

    In `shadow` mode a rule is evaluated and counted but its alerts go to the shadow output and
    it issues no command, so a threshold can be tried on live traffic before it bites.

    `legal_basis` (the regulation and article a violation breaks, quoted in every alert),
    `behaviour` (the 违规行为 class, in Chinese, as the regulators name it) and `on_check` (what
    a violation means for a pre-settlement check) default per rule in each rule's Settings
    subclass (`docs/rules.md` gives the reasons); a region changes them like any setting.
    """

    enabled: bool = True
    mode: Mode = "enforce"
    severity: Severity = "warning"
    issue_commands: bool = False
    legal_basis: str = REGULATION
    behaviour: str = "违规使用医保基金"
    on_check: OnCheck = "warn"

    def validate(self) -> None:
        """Raise `ConfigError` on an impossible value; subclasses extend this."""
        if self.mode not in ("enforce", "shadow"):
            raise ConfigError(f"mode must be 'enforce' or 'shadow', got {self.mode!r}")
        if self.severity not in SEVERITIES:
            raise ConfigError(f"severity must be one of {', '.join(SEVERITIES)}")
        if self.on_check not in ON_CHECK:
            raise ConfigError(f"on_check must be one of {', '.join(ON_CHECK)}")
        for name in ("legal_basis", "behaviour"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{name} must be non-empty text")


_TRUE = frozenset(("1", "true", "yes", "on"))
_FALSE = frozenset(("0", "false", "no", "off"))


def env_flag(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    """The true/false variable `name` of `env` (1/0, true/false, yes/no, on/off, any case;
    unset or blank: `default`); anything else is a `ConfigError` naming it and quoting it."""
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false, got {env[name]!r}")


def positive(name: str, value: float) -> None:
    if value <= 0:
        raise ConfigError(f"{name} must be greater than 0, got {value}")


T = TypeVar("T")


def replace_checked(obj: T, changes: Mapping[str, Any], *, where: str) -> T:
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
