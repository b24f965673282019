"""Custom rules: rules a supervisor writes at run time, as configuration.

A custom rule is a template (`templates`: `window_count`, `window_sum`, `duplicate`;
`pairs`: `sequence`, `absence`) with its
parameters and CEL expressions (`expressions`) in the detection configuration's
`[custom_rules.NAME]` tables (`settings.CustomRuleSettings`), beside the named lists of strings
its expressions may read (`[custom_lists]`, and the reference data's, `reference_lists`).
It travels on the control topic like any setting (`claimstream rules add FILE`), and the
engine runs it beside the built-in rules, with their guarantees. `docs/custom-rules.md` is the
reference and the workflow (write, diff on history, shadow, enforce).

`check` compiles and type-checks a rule's expressions (`DetectionConfig` calls it when a
configuration is loaded: an invalid expression is a `ConfigError` naming the rule and the
setting); `build` makes the rules of a configuration for an engine, and `share` what the engine
runs for them (the window rules that hold the same rows share one row store). Both compile each text
once per environment (`expressions._compile` is cached), never per event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from claimstream.model.config import ConfigError
from claimstream.reference.loader import ReferenceData
from claimstream.rules.base import Rule, RuleContext
from claimstream.rules.custom.expressions import (
    Result,
    compile_event_expression,
    compile_message,
    compile_pair_expression,
    reference_lists,
    valid_list_name,
)
from claimstream.rules.custom.pairs import PAIR_CLASSES
from claimstream.rules.custom.settings import NAME, CustomRuleSettings
from claimstream.rules.custom.templates import TEMPLATE_CLASSES, CustomRule, share

__all__ = ["CustomRuleSettings", "all_lists", "build", "check", "check_lists", "share"]

Lists = Mapping[str, tuple[str, ...]]


def all_lists(reference: ReferenceData, custom: Lists) -> dict[str, tuple[str, ...]]:
    """The lists expressions see: the reference data's, then the configuration's own."""
    return {**reference_lists(reference), **custom}


def check_lists(custom: Lists, reference: ReferenceData) -> None:
    """`ConfigError` for a custom list with a bad name, a reference list's name, or a value
    that is not a list of strings."""
    taken = reference_lists(reference)
    for name, values in custom.items():
        if not valid_list_name(name):
            raise ConfigError(
                f"custom_lists.{name}: a list name is lower-case letters, digits and _"
            )
        if name in taken:
            raise ConfigError(f"custom_lists.{name}: the reference data has a list of that name")
        if not all(isinstance(v, str) for v in values):
            raise ConfigError(f"custom_lists.{name} must be a list of strings")


def check(
    name: str, settings: CustomRuleSettings, lists: Lists, builtin: Mapping[str, Any]
) -> None:
    """Compile and type-check the rule's expressions (`ConfigError` naming the setting)."""
    if not NAME.fullmatch(name):
        raise ConfigError(
            f"custom_rules.{name}: a rule name is 1 to 64 lower-case letters, digits and _, "
            "starting with a letter"
        )
    if name in builtin:
        raise ConfigError(f"custom_rules.{name}: a built-in rule has that name")
    where = f"custom_rules.{name}"
    types: dict[str, tuple[str, ...]] = {"amount": settings.all_event_types}
    expressions: list[tuple[str, str, Result]] = [("filter", settings.filter, "bool")]
    if settings.filter_a is not None:
        expressions.append(("filter_a", settings.filter_a, "bool"))
    if settings.filter_b is not None:
        types["filter_b"] = settings.types_b
        expressions.append(("filter_b", settings.filter_b, "bool"))
    if settings.distinct_by is not None:
        expressions.append(("distinct_by", settings.distinct_by, "any"))
    if settings.value is not None:
        result: Result = "number" if settings.template == "window_sum" else "any"
        expressions.append(("value", settings.value, result))
    if settings.amount is not None:
        expressions.append(("amount", settings.amount, "number"))
    for field, text, result in expressions:
        compile_event_expression(
            text,
            event_types=types.get(field, settings.event_types),
            lists=lists,
            result=result,
            where=f"{where}.{field}",
        )
    if settings.join is not None:
        compile_pair_expression(
            settings.join,
            a_types=settings.event_types,
            b_types=settings.types_b,
            lists=lists,
            where=f"{where}.join",
        )
    if settings.message is not None:
        compile_message(settings.message, where=f"{where}.message")


def build(
    rules: Mapping[str, CustomRuleSettings], custom_lists: Lists, context: RuleContext
) -> list[Rule[Any]]:
    """The enabled custom rules of a configuration, for an engine, in name order."""
    lists = all_lists(context.reference, custom_lists)
    return [
        build_rule(name, settings, context, lists)
        for name, settings in sorted(rules.items())
        if settings.enabled
    ]


def build_rule(
    name: str, settings: CustomRuleSettings, context: RuleContext, lists: Lists
) -> Rule[Any]:
    """The rule `name` of the configuration: its template's class, named and routed by the
    settings (the engine reads `name`, `key_kind` and `event_types` from the class)."""
    base = {**TEMPLATE_CLASSES, **PAIR_CLASSES}[settings.template]
    cls = type(
        f"{base.__name__}_{name}",
        (base,),
        {
            "name": name,
            "key_kind": settings.key,
            "event_types": frozenset(settings.all_event_types),
            "__module__": base.__module__,
        },
    )
    rule: Rule[Any] = cast(type[CustomRule], cls)(settings, context, lists)
    return rule
