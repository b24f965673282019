"""A custom rule's definition: a template, its parameters and its expressions, as settings.

`[custom_rules.NAME]` in the configuration (TOML or JSON) is one `CustomRuleSettings`; every
setting a built-in rule has (`enabled`, `mode`, `severity`, `legal_basis`, `behaviour`,
`on_check`) means the same here, except that a custom rule starts in `shadow` mode unless
said otherwise, and issues no settlement command (`issue_commands` must stay false).

`validate` checks the shape (a known template, its parameters, one window); the expressions
are compiled with the lists in force by `rules.custom.check` (`DetectionConfig` does it when
a configuration is loaded).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from claimstream.model.config import REGULATION, ConfigError, Mode, OnCheck, RuleSettings, positive
from claimstream.model.events import EVENT_TYPES, KEY_KINDS, KeyKind
from claimstream.model.outputs import Severity
from claimstream.model.timefmt import DAY, HOUR

Template = Literal["window_count", "window_sum", "duplicate", "sequence", "absence"]
TEMPLATES: tuple[Template, ...] = ("window_count", "window_sum", "duplicate", "sequence", "absence")
#: the templates over pairs of events: an A event, then (or not) a B event within a time
PAIRS = ("sequence", "absence")
#: a custom rule's name: it is the alert's `rule` and a configuration key
NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


@dataclass(frozen=True, slots=True)
class CustomRuleSettings(RuleSettings):
    mode: Mode = "shadow"
    severity: Severity = "warning"
    legal_basis: str = REGULATION
    behaviour: str = "违规使用医保基金"
    on_check: OnCheck = "warn"
    #: window_count | window_sum | duplicate | sequence | absence
    template: str = ""
    #: whose events are counted together: patient | doctor | institution
    key: KeyKind = "patient"
    event_types: tuple[str, ...] = ()
    #: which events take part (a bool expression); every event of `event_types` by default
    filter: str = "true"
    window_days: float | None = None
    window_hours: float | None = None
    #: sequence, absence: the A events (of `event_types`) and the B events (of
    #: `event_types_b`, `event_types` when empty), each a bool expression
    filter_a: str | None = None
    filter_b: str | None = None
    event_types_b: tuple[str, ...] = ()
    #: sequence, absence: a bool expression over `a.*` and `b.*` a pair must satisfy too
    join: str | None = None
    #: sequence, absence: how long after A a B may come (exactly one of the two)
    within_days: float | None = None
    within_hours: float | None = None
    #: window_count: at least this many matching events (or distinct `distinct_by` values)
    min_count: int | None = None
    #: window_count: count distinct values of this expression instead of events
    distinct_by: str | None = None
    #: window_sum: the number summed; duplicate: the value compared (a list: each element)
    value: str | None = None
    #: window_sum: at least this sum
    min_sum: float | None = None
    #: the violation amount in yuan: an expression per event, summed over the alert's events
    amount: str | None = None
    #: the alert's message: a string expression over `finding.*`; a plain sentence by default
    message: str | None = None

    def validate(self) -> None:
        RuleSettings.validate(self)
        if self.issue_commands:
            raise ConfigError("issue_commands: a custom rule issues no commands (alerts only)")
        if self.template not in TEMPLATES:
            raise ConfigError(f"template must be one of {', '.join(TEMPLATES)}")
        if self.key not in KEY_KINDS:
            raise ConfigError(f"key must be one of {', '.join(KEY_KINDS)}")
        if not self.event_types:
            raise ConfigError(f"event_types must name at least one of {', '.join(EVENT_TYPES)}")
        both = (("event_types", self.event_types), ("event_types_b", self.event_types_b))
        for field, types in both:
            for event_type in types:
                if event_type not in EVENT_TYPES:
                    raise ConfigError(
                        f"{field}: unknown event type {event_type!r}; "
                        f"known: {', '.join(sorted(EVENT_TYPES))}"
                    )
        if self.template in PAIRS:
            self._validate_pair()
            return
        for name in ("filter_a", "filter_b", "join", "within_days", "within_hours"):
            if getattr(self, name) is not None:
                raise ConfigError(f"{name} has no meaning in the {self.template} template")
        if self.event_types_b:
            raise ConfigError(f"event_types_b has no meaning in the {self.template} template")
        if (self.window_days is None) == (self.window_hours is None):
            raise ConfigError("give exactly one of window_days and window_hours")
        if self.window_days is not None:
            positive("window_days", self.window_days)
        if self.window_hours is not None:
            positive("window_hours", self.window_hours)
        wanted = {
            "window_count": ("min_count",),
            "window_sum": ("value", "min_sum"),
            "duplicate": ("value",),
        }[self.template]
        for name in wanted:
            if getattr(self, name) is None:
                raise ConfigError(f"{name} is required by the {self.template} template")
        unused = {
            "window_count": ("value", "min_sum"),
            "window_sum": ("min_count", "distinct_by"),
            "duplicate": ("min_count", "distinct_by", "min_sum"),
        }[self.template]
        for name in unused:
            if getattr(self, name) is not None:
                raise ConfigError(f"{name} has no meaning in the {self.template} template")
        if self.min_count is not None:
            positive("min_count", self.min_count)
        if self.min_sum is not None:
            positive("min_sum", self.min_sum)

    def _validate_pair(self) -> None:
        if self.filter != "true":
            raise ConfigError(
                f"filter has no meaning in the {self.template} template: use filter_a and filter_b"
            )
        for name in ("filter_a", "filter_b"):
            if getattr(self, name) is None:
                raise ConfigError(f"{name} is required by the {self.template} template")
        for name in ("window_days", "window_hours", "min_count", "distinct_by", "value", "min_sum"):
            if getattr(self, name) is not None:
                hint = ": use within_days or within_hours" if name.startswith("window") else ""
                raise ConfigError(f"{name} has no meaning in the {self.template} template{hint}")
        if (self.within_days is None) == (self.within_hours is None):
            raise ConfigError("give exactly one of within_days and within_hours")
        if self.within_days is not None:
            positive("within_days", self.within_days)
        if self.within_hours is not None:
            positive("within_hours", self.within_hours)

    @property
    def types_b(self) -> tuple[str, ...]:
        """The B events' types (sequence, absence)."""
        return self.event_types_b or self.event_types

    @property
    def all_event_types(self) -> tuple[str, ...]:
        """Every event type the rule reads (A's and B's for the pair templates), sorted."""
        return tuple(sorted({*self.event_types, *self.event_types_b}))

    @property
    def window(self) -> float:
        """The window (for sequence and absence, the `within` time) in seconds."""
        if self.within_days is not None:
            return self.within_days * DAY
        if self.within_hours is not None:
            return self.within_hours * HOUR
        if self.window_days is not None:
            return self.window_days * DAY
        return (self.window_hours or 0.0) * HOUR
