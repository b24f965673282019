"""The rule catalogue: one module per rule, registered here by name.

To add a rule: write `rules/<name>.py` with a `Rule` subclass and its `Settings`, and add it to
`RULES`. Nothing else changes: the engine, config, replay and the worker read this registry.
"""

from __future__ import annotations

from typing import Any

from claimstream.rules.base import Rule
from claimstream.rules.high_frequency_consultation import HighFrequencyConsultation
from claimstream.rules.readmission_24h import Readmission24h
from claimstream.rules.repeat_dispensing import RepeatDispensing

RULES: dict[str, type[Rule[Any]]] = {
    rule.name: rule
    for rule in (
        RepeatDispensing,
        HighFrequencyConsultation,
        Readmission24h,
    )
}
