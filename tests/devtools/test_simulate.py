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


def test_trace_codes_are_off_unless_asked_for() -> None:
    assert not [e for e in generate(3000, seed=5) if "trace_codes" in e]


def test_asked_for_a_share_of_dispensings_carries_a_valid_code_per_pack() -> None:
    from claimstream.devtools.simulate import Simulator

    events = list(Simulator(3000, seed=5, trace_codes=0.5).events())
    coded = [e for e in events if "trace_codes" in e]
    assert 0 < len(coded) < len([e for e in events if e["event_type"] == "dispense"])
    assert all(len(e["trace_codes"]) == max(1, int(e["quantity"])) for e in coded)
    assert [e for e in events if isinstance(decode_event(e), Rejection)] == []


def test_the_injected_resale_is_found_by_trace_code_reuse() -> None:
    from claimstream.devtools.simulate import Simulator
    from claimstream.testing import run

    sim = Simulator(3000, seed=5, trace_codes=0.5)
    events = [decode_event(e) for e in sim.events()]
    found = run([e for e in events if not isinstance(e, Rejection)]).alerts
    reused = {a.details["trace_code"] for a in found if a.rule == "trace_code_reuse"}
    assert reused == set(sim.injected["trace_code_reuse"]) != set()


def test_drifting_institutions_change_only_claims_grades_and_the_drifters_amounts() -> None:
    plain = list(generate(3000, seed=5))
    drifting = list(generate(3000, seed=5, drifting=2))
    assert len(plain) == len(drifting)
    for before, after in zip(plain, drifting, strict=True):
        if before["event_type"] != "claim":
            assert after == before
            continue
        scaled = before["institution_id"] in ("H006", "H007")
        factor = 1.8 if scaled else 1.0
        assert after["total_amount"] == round(before["total_amount"] * factor, 2)
        same = {k: v for k, v in after.items() if k not in ("institution_level", "total_amount")}
        assert set(same) <= set(before)
    assert {e.get("institution_level") for e in drifting if e["event_type"] == "claim"} == {
        "tertiary",
        "secondary",
        None,  # H001-H005: graded by the registry
    }
