"""Event time across re-keying: source progress, the watermark, and ordered release."""

from __future__ import annotations

import math

import pytest

from claimstream.detection.align import (
    Aligner,
    Held,
    PendingBuffer,
    Progress,
    Reported,
    SourceOf,
)
from claimstream.detection.config import DetectionConfig
from claimstream.detection.engine import Engine, StepResult
from claimstream.model.partitioning import partition_for
from claimstream.testing import FIXED_NOW, consultation

HOUR = 3600.0


# -- progress and the watermark --------------------------------------------------------------


def test_one_record_alone_does_not_move_a_sources_progress() -> None:
    progress = Progress(idle_after=100)
    progress.observe("claims/0", 10.0, now=0)
    assert progress.progress == {}
    progress.observe("claims/0", 4_000_000_000.0, now=1)  # one record dated far ahead
    assert progress.progress == {"claims/0": 10.0}
    progress.observe("claims/0", 12.0, now=2)
    assert progress.progress == {"claims/0": 12.0}


def test_two_records_in_a_row_do_move_it() -> None:
    progress = Progress(idle_after=100)
    for ts in (10.0, 50.0, 60.0):
        progress.observe("claims/0", ts, now=0)
    assert progress.progress == {"claims/0": 50.0}


def test_the_watermark_is_the_least_progress_of_the_active_sources() -> None:
    progress = Progress(idle_after=100)
    for source, times in {"a": (10.0, 20.0, 30.0), "b": (5.0, 8.0, 9.0)}.items():
        for ts in times:
            progress.observe(source, ts, now=0)
    assert progress.watermark(["a", "b"], now=50) == 8.0
    assert progress.watermark(["a", "b", "c"], now=50) is None  # c has said nothing yet


def test_a_source_quiet_for_idle_after_stops_holding_the_watermark_back() -> None:
    progress = Progress(idle_after=100)
    for source, times in {"a": (10.0, 20.0), "b": (5.0, 8.0)}.items():
        for ts in times:
            progress.observe(source, ts, now=0)
    progress.observe("a", 30.0, now=150)
    assert progress.watermark(["a", "b"], now=150) == 20.0  # b idle: a alone
    assert progress.watermark(["a", "b"], now=300) == math.inf  # all quiet: nothing to wait for
    assert progress.floor(["a", "b"], now=300) == 5.0  # but idle keys expire no further


def test_the_aligned_side_holds_for_a_source_nobody_reported_and_skips_an_idle_one() -> None:
    reported = Reported()
    reported.set(0, "a", 20.0, idle=False)
    assert reported.watermark([0], ["a", "b"]) is None
    reported.set(0, "b", None, idle=True)
    assert reported.watermark([0], ["a", "b"]) == 20.0
    reported.set(0, "a", 5.0, idle=False)  # a re-read partition reports older progress
    assert reported.watermark([0], ["a"]) == 20.0


def test_a_report_counts_only_on_the_channel_it_came_by() -> None:
    """A marker read on partition 1 says nothing of events still unread on partition 2."""
    reported = Reported()
    reported.set(1, "a", 50.0, idle=False)
    reported.set(2, "a", 10.0, idle=False)
    assert reported.watermark([1, 2], ["a"]) == 10.0
    assert reported.watermark([1, 2, 3], ["a"]) is None  # nothing read on 3 yet


def test_an_events_source_is_its_family_and_the_partition_of_its_patient() -> None:
    event = consultation("c1", 0)
    assert SourceOf(8)(event) == f"consultations/{partition_for('P1', 8)}"


# -- the pending buffer ------------------------------------------------------------------------


def _held(ts: float, event_id: str, key: str = "D1") -> Held:
    return Held(ts, event_id, key, consultation(event_id, ts / HOUR), tag=None)


def test_held_events_come_out_per_key_in_time_and_id_order_once_due() -> None:
    buffer = PendingBuffer()
    for held in (_held(30, "c"), _held(10, "b"), _held(10, "a"), _held(5, "x", key="D2")):
        assert buffer.add(held)
    assert not buffer.add(_held(10, "a"))  # the same event again
    assert buffer.due(before=10) == ["D2"]
    assert buffer.due(before=31) == ["D1"]
    assert [h.event_id for h in buffer.take("D1", before=31)] == ["a", "b", "c"]
    assert len(buffer) == 1


# -- the aligner -----------------------------------------------------------------------------


def _aligner() -> Aligner:
    config = DetectionConfig.default().with_rule_changes(
        "doctor_consultation_rate", {"min_consultations": "3", "window_minutes": "120"}
    )
    return Aligner(Engine(config, lambda: FIXED_NOW), "doctor")


def _by_doctor(event_id: str, hours: float, patient: str = "P1") -> object:
    return consultation(event_id, hours, doctor_id="D1", patient_id=patient)


def test_a_doctors_events_reach_its_rules_in_event_time_order_whatever_the_arrival() -> None:
    outcomes = []
    for arrival in (["c3", "c1", "c2"], ["c1", "c2", "c3"]):
        aligner = _aligner()
        state = aligner.engine.new_state()
        times = {"c1": 0.0, "c2": 0.5, "c3": 1.0}
        for event_id in arrival:
            event = _by_doctor(event_id, times[event_id], patient=f"P{event_id}")
            assert isinstance(aligner.accept(state, "D1", event, f"s/{event_id}", None), Held)
        released = aligner.release(math.inf, lambda key, state=state: state)
        assert [h.event_id for h, _, _ in released] == ["c1", "c2", "c3"]
        alerts = [a for _, _, r in released if isinstance(r, StepResult) for a in r.alerts]
        outcomes.append([(a.alert_id, a.event_ids) for a in alerts])
    assert outcomes[0] == outcomes[1] and len(outcomes[0]) == 1


def test_lateness_is_judged_against_the_events_own_source_only() -> None:
    aligner = _aligner()
    state = aligner.engine.new_state()
    aligner.accept(state, "D1", _by_doctor("c1", 10.0), "consultations/1", None)
    # two hours behind c1, but from another input partition: waits for its turn
    from_elsewhere = aligner.accept(state, "D1", _by_doctor("c0", 8.0), "consultations/2", None)
    assert isinstance(from_elsewhere, Held)
    # two hours behind c1 on c1's own partition: late
    behind = aligner.accept(state, "D1", _by_doctor("cx", 8.0), "consultations/1", None)
    assert isinstance(behind, StepResult) and behind.rejection is not None
    assert behind.rejection.reason == "late" and "input partition 1" in behind.rejection.detail


def test_an_event_behind_what_its_key_released_is_applied_at_once_out_of_order() -> None:
    aligner = _aligner()
    state = aligner.engine.new_state()
    aligner.accept(state, "D1", _by_doctor("c2", 1.0), "consultations/1", None)
    aligner.release(math.inf, lambda key: state)
    outcome = aligner.accept(state, "D1", _by_doctor("c1", 0.5), "consultations/2", None)
    assert isinstance(outcome, StepResult) and outcome.changed
    assert aligner.unaligned == 1 and "c1" in state["seen"]


@pytest.mark.parametrize("again", ["held", "released"])
def test_a_redelivered_event_is_a_duplicate_held_or_released(again: str) -> None:
    aligner = _aligner()
    state = aligner.engine.new_state()
    event = _by_doctor("c1", 1.0)
    aligner.accept(state, "D1", event, "consultations/1", None)
    if again == "released":
        aligner.release(math.inf, lambda key: state)
    outcome = aligner.accept(state, "D1", event, "consultations/1", None)
    assert isinstance(outcome, StepResult) and outcome.duplicate


def test_a_sources_last_record_is_known_even_when_it_confirms_nothing() -> None:
    progress = Progress(idle_after=100)
    assert progress.last("claims/0") is None
    progress.observe("claims/0", 10.0, now=0)
    progress.observe("claims/0", 4_000_000_000.0, now=1)
    assert progress.last("claims/0") == 4_000_000_000.0
    assert progress.progress == {"claims/0": 10.0}


def test_a_redelivered_waiting_event_is_a_duplicate_not_late_behind_its_sources_later_ones() -> (
    None
):
    """After a restart the key's state already counts events read after the last commit; the
    waiting event read again is the same one, whatever its source's later events say."""
    aligner = _aligner()
    state = aligner.engine.new_state()
    early = _by_doctor("c1", 1.0)
    aligner.accept(state, "D1", early, "consultations/1", None)
    aligner.accept(state, "D1", _by_doctor("c2", 30.0), "consultations/1", None)
    outcome = aligner.accept(state, "D1", early, "consultations/1", None)
    assert isinstance(outcome, StepResult) and outcome.duplicate
    assert outcome.rejection is None


def _released_then_forgotten() -> tuple[Aligner, dict[str, object], object]:
    """c1 (offset 10, forwarded from input offset 100) and c2 (offset 11, input offset 101,
    30 h later, same source) read, both released, and c1's id gone from the key's dedup, as a
    backlog's event time leaves it behind."""
    aligner = _aligner()
    state = aligner.engine.new_state()
    early = _by_doctor("c1", 1.0)
    aligner.accept(state, "D1", early, "consultations/1", None, home=3, offset=10, read=100)
    aligner.accept(state, "D1", _by_doctor("c2", 30.0), "consultations/1", None, 3, 11, 101)
    aligner.release(math.inf, lambda key: state)
    del state["seen"]["c1"]
    return aligner, state, early


def test_a_released_event_read_again_after_a_restart_is_a_duplicate_once_its_id_is_forgotten() -> (
    None
):
    aligner, state, early = _released_then_forgotten()
    outcome = aligner.accept(state, "D1", early, "consultations/1", None, home=3, offset=10)
    assert isinstance(outcome, StepResult) and outcome.duplicate
    assert outcome.rejection is None


def test_the_same_event_at_a_new_offset_is_judged_as_a_new_record() -> None:
    """Only a record read again is known for a redelivery: a producer's second copy of the
    event, behind its source's later events, is late as before."""
    aligner, state, early = _released_then_forgotten()
    outcome = aligner.accept(state, "D1", early, "consultations/1", None, home=3, offset=12)
    assert isinstance(outcome, StepResult) and outcome.rejection is not None
    assert outcome.rejection.reason == "late"


def test_the_same_input_record_forwarded_again_after_a_restart_is_a_duplicate() -> None:
    """A restart reads the patient side's input again from its last commit and forwards what
    the patient states did not count yet, at new offsets of the repartition topic: the input
    offset the copy carries tells it for what it is, once its id is forgotten too."""
    aligner, state, early = _released_then_forgotten()
    outcome = aligner.accept(state, "D1", early, "consultations/1", None, 3, 12, read=100)
    assert isinstance(outcome, StepResult) and outcome.duplicate
    assert outcome.rejection is None


def test_an_event_from_a_later_input_record_is_judged_as_a_new_one() -> None:
    aligner, state, early = _released_then_forgotten()
    outcome = aligner.accept(state, "D1", early, "consultations/1", None, 3, 12, read=102)
    assert isinstance(outcome, StepResult) and outcome.rejection is not None
    assert outcome.rejection.reason == "late"


def test_an_input_offset_counts_for_its_own_source_only() -> None:
    aligner, state, early = _released_then_forgotten()
    outcome = aligner.accept(state, "D1", early, "consultations/2", None, 3, 12, read=100)
    assert isinstance(outcome, StepResult) and not outcome.duplicate
