"""rules.kit.stays: a discharge and the later admissions it may pair with."""

from __future__ import annotations

import random
from typing import Any

import pytest

from claimstream.model.events import Event, Stay
from claimstream.rules.kit.stays import ADMISSION_ID, DIAGNOSIS_CODE, EVENT_ID, Row, StayPairs
from claimstream.testing import T0, admission, discharge

GAP_H = 24.0
PAIRS = StayPairs(GAP_H * 3600)


def same_letter(discharge_row: Row, admission_row: Row) -> bool:
    return bool(discharge_row[DIAGNOSIS_CODE][0] == admission_row[DIAGNOSIS_CODE][0])


def paired(
    events: list[Event], pairs: StayPairs = PAIRS, *, lateness_h: float = 0.0
) -> list[tuple[str, str]]:
    """(discharge id, admission id) of each pair, expiring after each event as the engine
    may when `lateness_h` is given."""
    state: dict[str, Any] = {}
    found, latest = [], float("-inf")
    for event in events:
        assert isinstance(event.body, Stay)
        found += [(d[EVENT_ID], a[EVENT_ID]) for d, a in pairs.add(state, event, event.body)]
        latest = max(latest, event.ts)
        if lateness_h:
            pairs.expire(state, latest - lateness_h * 3600)
    return found


def test_an_admission_pairs_with_the_latest_discharge_of_another_stay_within_the_gap() -> None:
    events = [
        discharge("d1", 0, stay="S1"),
        discharge("d2", 10, stay="S2"),
        admission("a3", 30, stay="S3"),
        admission("a4", 40, stay="S4"),
    ]
    assert paired(events) == [("d2", "a3")]  # a4 is 30 h after d2


@pytest.mark.parametrize(("gap_h", "pairs"), [(GAP_H - 1 / 60, 1), (GAP_H, 0)])
def test_the_gap_must_be_under_the_limit(gap_h: float, pairs: int) -> None:
    events = [discharge("d1", 0, stay="S1"), admission("a2", gap_h, stay="S2")]
    assert len(paired(events)) == pairs


def test_the_discharge_of_the_same_stay_is_passed_over() -> None:
    events = [discharge("d1", 0, stay="S1"), discharge("d2", 5, stay="S2")]
    assert paired([*events, admission("a2", 6, stay="S2")]) == [("d1", "a2")]


def test_only_matching_stays_pair() -> None:
    events = [
        discharge("d1", 0, stay="S1", diagnosis_code="I21.0"),
        discharge("d2", 5, stay="S2", diagnosis_code="J18.9"),
        admission("a3", 6, stay="S3", diagnosis_code="I21.9"),
    ]
    assert paired(events, StayPairs(GAP_H * 3600, same_letter)) == [("d1", "a3")]


def test_a_late_discharge_pairs_the_admissions_after_it_once_each() -> None:
    events = [admission("a2", 5, stay="S2"), admission("a3", 6, stay="S3")]
    late = discharge("d1", 0, stay="S1")
    assert paired([*events, late]) == [("d1", "a2"), ("d1", "a3")]
    assert paired([*events, late, discharge("d0", 1, stay="S0")]) == [
        ("d1", "a2"),
        ("d1", "a3"),
    ]


def test_a_redelivered_stay_event_changes_nothing() -> None:
    events = [discharge("d1", 0, stay="S1"), admission("a2", 5, stay="S2")]
    assert paired([*events, *events]) == [("d1", "a2")]


def _stays(seed: int, lateness_h: float) -> list[Event]:
    rng = random.Random(seed)
    t, events = 0.0, []
    for n in range(120):
        t += rng.uniform(0, 30)  # hours between stays: some readmissions within 24 h
        stay, diagnosis = f"S{n:03d}", rng.choice(["I21.0", "J18.9"])
        events.append(admission(f"a{n:03d}", t, stay=stay, diagnosis_code=diagnosis))
        t += rng.uniform(2, 100)
        events.append(discharge(f"d{n:03d}", t, stay=stay, diagnosis_code=diagnosis))
    jitter = {e.event_id: rng.uniform(0, lateness_h * 3600) for e in events}
    return sorted(events, key=lambda e: e.ts + jitter[e.event_id])


@pytest.mark.parametrize("matches", [None, same_letter], ids=["any", "same"])
@pytest.mark.parametrize("seed", range(8))
def test_expiring_at_the_cutoff_never_changes_the_pairs(matches: Any, seed: int) -> None:
    pairs = PAIRS if matches is None else StayPairs(GAP_H * 3600, matches)
    events = _stays(seed, lateness_h=6.0)
    kept = paired(events, pairs, lateness_h=6.0)
    assert kept == paired(events, pairs)
    assert len(kept) > 3


@pytest.mark.parametrize("seed", range(8))
def test_out_of_order_within_lateness_pairs_the_same_admissions(seed: int) -> None:
    in_order = sorted(_stays(seed, lateness_h=0.0), key=lambda e: (e.ts, e.event_id))
    shuffled = _stays(seed, lateness_h=6.0)
    assert sorted(a for _, a in paired(shuffled)) == sorted(a for _, a in paired(in_order))


def test_expiry_keeps_discharges_within_the_gap_and_admissions_from_the_cutoff() -> None:
    state: dict[str, Any] = {}
    for event in [discharge("d1", 0, stay="S1"), admission("a2", 30, stay="S2")]:
        assert isinstance(event.body, Stay)
        PAIRS.add(state, event, event.body)
    t0 = T0.timestamp()
    PAIRS.expire(state, t0 + 23.9 * 3600)
    assert PAIRS.size(state) == 2
    PAIRS.expire(state, t0 + 24 * 3600)
    assert [row[ADMISSION_ID] for row in state["admissions"]] == ["S2"]
    assert "discharges" not in state
    PAIRS.expire(state, t0 + 30.1 * 3600)
    assert state == {}
