"""Who an alert counts against and how much money it is about."""

from __future__ import annotations

import dataclasses

import pytest

from claimstream.model.outputs import Subject
from claimstream.sanctions import Escalation, LadderSettings
from claimstream.sanctions.subjects import amount_of
from tests.sanctions.support import alert, summaries, ts

FIELDS = LadderSettings().amount_fields


def test_the_alerts_own_amount_comes_first() -> None:
    priced = dataclasses.replace(alert("a1", 0, amount=9_999.0), amount=1_250.5)
    assert amount_of(priced, FIELDS) == 1_250.5


@pytest.mark.parametrize("amount", [None, 0.0])
def test_an_alert_without_an_amount_falls_back_to_its_details(amount: float | None) -> None:
    old = dataclasses.replace(alert("a1", 0, amount=3_000.0), amount=amount)
    assert amount_of(old, FIELDS) == 3_000.0


def test_an_alert_with_neither_is_about_no_money() -> None:
    assert amount_of(alert("a1", 0), FIELDS) == 0.0


@pytest.mark.parametrize(("second", "suspended"), [(40_000.0, False), (40_000.01, True)])
def test_the_suspend_threshold_adds_up_the_alerts_amounts(second: float, suspended: bool) -> None:
    engine = Escalation()
    state = engine.new_state(Subject("patient", "P1"))
    engine.on_alert(state, dataclasses.replace(alert("a1", 0), amount=60_000.0), ts(0))
    decisions = engine.on_alert(state, dataclasses.replace(alert("a2", 60), amount=second), ts(60))
    assert (("SUSPEND", "escalation") in summaries(decisions)) is suspended
