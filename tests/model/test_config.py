"""Every rule's common settings: money and law among them, validated like the rest."""

from __future__ import annotations

import pytest

from claimstream.model.config import (
    REGULATION,
    ConfigError,
    RuleSettings,
    env_flag,
    replace_checked,
)


def test_the_base_defaults_cite_the_regulation_and_warn() -> None:
    settings = RuleSettings()
    settings.validate()
    assert (settings.legal_basis, settings.on_check) == (REGULATION, "warn")


@pytest.mark.parametrize("decision", ["warn", "hold", "reject"])
def test_on_check_takes_the_three_decisions_from_text(decision: str) -> None:
    changed = replace_checked(RuleSettings(), {"on_check": decision}, where="r")
    assert changed.on_check == decision


def test_on_check_refuses_pass_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"r\.on_check must be one of warn, hold, reject"):
        replace_checked(RuleSettings(), {"on_check": "pass"}, where="r")


def test_a_blank_behaviour_is_refused() -> None:
    with pytest.raises(ConfigError, match="behaviour must be non-empty"):
        replace_checked(RuleSettings(), {"behaviour": " "}, where="r")


@pytest.mark.parametrize(("raw", "expected"), [("Yes", True), (" off ", False), ("", True)])
def test_an_env_flag_reads_yes_and_no_words_and_empty_is_the_default(
    raw: str, expected: bool
) -> None:
    assert env_flag({"X": raw}, "X", default=True) is expected


def test_an_env_flag_that_is_neither_names_the_variable_and_quotes_the_value() -> None:
    with pytest.raises(ConfigError, match=r"^X must be true or false, got 'Maybe'$"):
        env_flag({"X": "Maybe"}, "X", default=True)
