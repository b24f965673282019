"""The simulator: contract-valid, reproducible events whose dispensings carry a price."""

from __future__ import annotations

from claimstream.detection.decode import decode_event
from claimstream.devtools.simulate import generate
from claimstream.model.rejection import Rejection


def test_every_event_is_contract_valid() -> None:
    refused = [e for e in generate(3000, seed=5) if isinstance(decode_event(e), Rejection)]
    assert refused == []


def test_the_same_seed_gives_the_same_events() -> None:
    assert list(generate(500, seed=3)) == list(generate(500, seed=3))


def test_every_dispensing_carries_a_unit_price() -> None:
    """So the demo's repeat_dispensing alerts have an amount in yuan."""
    dispensings = [e for e in generate(3000, seed=5) if e["event_type"] == "dispense"]
    assert dispensings
    assert all(e["unit_price"] > 0 for e in dispensings)
