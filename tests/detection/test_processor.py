"""The stream's hot path without faust: one batch of records through `KeyedProcessor`."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from claimstream.detection.config import DetectionConfig
from claimstream.detection.engine import Engine
from claimstream.detection.processor import KeyedProcessor
from claimstream.devtools.simulate import generate
from claimstream.model.records import Record
from claimstream.rules.base import State

INPUT = "settlement.dispensing.v1"


def processor(states: dict[str, State] | None = None) -> KeyedProcessor:
    store = {} if states is None else states
    return KeyedProcessor(
        Engine(DetectionConfig.default(), time.time),
        "patient",
        store.get,
        home_topics=frozenset({INPUT}),
        forwards=True,
    )


def record(value: bytes | None, key: bytes | None, offset: int = 0) -> Record:
    return Record(key, value, INPUT, 2, offset, time.time())


def events(n: int = 400) -> list[dict[str, Any]]:
    return list(generate(n, seed=4))


def test_bad_messages_become_dead_letters_with_origin() -> None:
    out = processor().process([record(b"{oops", b"P1", 7), record(None, b"P1", 8)])
    assert [(d.reason, d.origin["offset"]) for d in out.dead_letters] == [
        ("not_json", 7),
        ("not_json", 8),
    ]
    assert out.dead_letters[0].origin == {"topic": INPUT, "partition": 2, "offset": 7}
    assert out.dead_letters[0].raw == b"{oops"


@pytest.mark.parametrize("key", [None, b"someone-else"])
def test_a_wrongly_keyed_event_is_forwarded_not_processed(key: bytes | None) -> None:
    raw = events(1)[0]
    out = processor().process([record(orjson.dumps(raw), key)])
    assert [(f.kind, f.key) for f in out.forwards] == [("patient", raw["patient_id"])]
    assert out.events == 0 and not out.writes


def test_each_changed_key_is_written_once_per_batch() -> None:
    batch = [record(orjson.dumps(e), e["patient_id"].encode(), i) for i, e in enumerate(events())]
    out = processor().process(batch)
    touched = {r.key.decode() for r in batch if r.key}
    assert set(out.writes) <= touched
    assert len(out.writes) == len(set(out.writes))
    assert all(partition == 2 for _, partition in out.writes.values())


def test_a_batch_in_slices_stops_between_them_and_gives_the_whole_batch_s_result() -> None:
    batch = [record(orjson.dumps(e), e["patient_id"].encode(), i) for i, e in enumerate(events())]
    whole = processor().process(batch)
    steps = processor().slices(batch, 64)
    stops = 0
    while True:
        try:
            next(steps)
        except StopIteration as done:
            sliced = done.value
            break
        stops += 1
    assert stops == (len(batch) - 1) // 64
    assert [e.alert.alert_id for e in sliced.alerts] == [e.alert.alert_id for e in whole.alerts]
    assert {k: orjson.dumps(s) for k, (s, _) in sliced.writes.items()} == {
        k: orjson.dumps(s) for k, (s, _) in whole.writes.items()
    }
    assert len(sliced.forwards) == len(whole.forwards) and sliced.events == whole.events


def test_a_redelivered_batch_changes_nothing() -> None:
    states: dict[str, State] = {}
    proc = processor(states)
    batch = [record(orjson.dumps(e), e["patient_id"].encode(), i) for i, e in enumerate(events())]
    first = proc.process(batch)
    for key, (state, _) in first.writes.items():
        states[key] = state
    again = proc.process(batch)
    assert not again.writes and not again.alerts and not again.commands
    assert again.duplicates > 0


def test_an_exception_in_one_event_dead_letters_it_and_the_batch_goes_on() -> None:
    def broken(key: str) -> State | None:
        if key == "P000002":
            raise RuntimeError("store unavailable")
        return None

    proc = KeyedProcessor(
        Engine(DetectionConfig.default(), time.time),
        "patient",
        broken,
        home_topics=frozenset({INPUT}),
    )
    batch = [record(orjson.dumps(e), e["patient_id"].encode(), i) for i, e in enumerate(events())]
    out = proc.process(batch)
    errors = [d for d in out.dead_letters if d.reason == "processing_error"]
    assert errors and all("store unavailable" in d.detail for d in errors)
    assert out.events > len(errors)


def _dispense(event_id: str, occurred_at: str, patient: str = "P1", inst: str = "H1") -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id,
            "event_type": "dispense",
            "occurred_at": occurred_at,
            "patient_id": patient,
            "institution_id": inst,
            "drug_code": "INS",
            "days_supply": 30,
            "quantity": 4,
            "chronic": True,
        }
    )


NOW = 1_780_272_000.0  # 2026-06-01T00:00:00Z


def at_clock(now: float, states: dict[str, State] | None = None) -> KeyedProcessor:
    store = {} if states is None else states
    return KeyedProcessor(
        Engine(DetectionConfig.default(), lambda: now),
        "patient",
        store.get,
        home_topics=frozenset({INPUT}),
        forwards=True,
    )


def test_an_event_further_ahead_of_the_clock_than_the_skew_is_a_future_timestamp() -> None:
    out = at_clock(NOW).process(
        [
            record(_dispense("ok", "2026-06-01T08:09:00+08:00"), b"P1", 1),  # 9 min ahead
            record(_dispense("ahead", "2026-06-01T08:11:00+08:00"), b"P1", 2),  # 11 min
        ]
    )
    assert [(d.reason, d.origin["offset"]) for d in out.dead_letters] == [("future_timestamp", 2)]
    assert "10 min ahead" in out.dead_letters[0].detail
    assert out.events == 1


def test_an_event_outside_the_plausible_range_is_dead_lettered_by_the_worker_too() -> None:
    out = at_clock(NOW).process([record(_dispense("old", "1999-12-31T23:00:00Z"), b"P1")])
    assert [d.reason for d in out.dead_letters] == ["implausible_timestamp"]
    assert not out.writes and not out.forwards


def test_a_key_whose_event_raised_processes_its_next_event(monkeypatch: pytest.MonkeyPatch) -> None:
    from claimstream.rules.repeat_dispensing import RepeatDispensing

    real = RepeatDispensing.on_event

    def flaky(self: RepeatDispensing, state: State, event: Any) -> Any:
        findings = real(self, state, event)
        if event.event_id == "boom":
            raise ValueError("a datum no check foresaw")
        return findings

    monkeypatch.setattr(RepeatDispensing, "on_event", flaky)
    states: dict[str, State] = {}
    proc = at_clock(NOW, states)
    first = proc.process([record(_dispense("a", "2026-03-01T08:00:00+08:00"), b"P1", 1)])
    states.update({k: s for k, (s, _) in first.writes.items()})
    stored = orjson.dumps(states["P1"])
    poisoned = proc.process(
        [record(_dispense("boom", "2026-03-02T08:00:00+08:00", inst="H3"), b"P1", 2)]
    )
    assert [(d.reason, d.raw) for d in poisoned.dead_letters] == [
        ("processing_error", _dispense("boom", "2026-03-02T08:00:00+08:00", inst="H3"))
    ]
    assert orjson.dumps(states["P1"]) == stored and not poisoned.forwards
    after = proc.process([record(_dispense("b", "2026-03-03T08:00:00+08:00", inst="H2"), b"P1", 3)])
    assert after.dead_letters == []
    assert [e.alert.event_ids for e in after.alerts] == [("a", "b")]


def test_forwarded_events_carry_their_source_partition_and_its_progress() -> None:
    proc = processor()
    batch = [
        record(orjson.dumps(e), e["patient_id"].encode(), i)
        for i, e in enumerate(events(40))
        if e["event_type"] == "consultation"
    ]
    out = proc.process(batch)
    doctor = [f for f in out.forwards if f.kind == "doctor"]
    assert doctor
    for forward in doctor:
        headers = dict(forward.headers)
        assert headers["cs-source"] == b"consultations/2"
    assert "cs-progress" not in dict(doctor[0].headers)  # one record confirms nothing yet
    assert float(dict(doctor[-1].headers)["cs-progress"]) > 0


def test_forwarded_events_carry_the_offset_of_the_input_record_they_come_from() -> None:
    batch = [
        record(orjson.dumps(e), e["patient_id"].encode(), 100 + i)
        for i, e in enumerate(events(40))
        if e["event_type"] == "consultation"
    ]
    out = processor().process(batch)
    by_id = {orjson.loads(r.value)["event_id"]: r.offset for r in batch}
    doctor = [f for f in out.forwards if f.kind == "doctor"]
    assert doctor
    for forward in doctor:
        offset = by_id[orjson.loads(forward.value)["event_id"]]
        assert dict(forward.headers)["cs-offset"] == str(offset).encode()


def test_an_event_rekeyed_through_the_patient_topic_is_forwarded_without_an_input_offset() -> None:
    """Its offset is the patient repartition topic's, not its source's: it would say nothing."""
    visit = next(e for e in events(40) if e["event_type"] == "consultation")
    rekeyed = Record(
        visit["patient_id"].encode(),
        orjson.dumps(visit),
        "claimstream.repartition.patient",
        2,
        7,
        time.time(),
    )
    out = processor().process([rekeyed])
    doctor = [f for f in out.forwards if f.kind == "doctor"]
    assert doctor and all("cs-offset" not in dict(f.headers) for f in doctor)


def test_one_record_dated_far_ahead_does_not_move_the_sweep_watermark() -> None:
    clock = [NOW]
    proc = KeyedProcessor(
        Engine(DetectionConfig.default(), lambda: clock[0]),
        "patient",
        {}.get,
        home_topics=frozenset({INPUT}),
    )
    days = ["2026-03-01", "2026-03-02", "2099-01-01", "2026-03-03"]
    proc.process(
        [
            record(
                _dispense(f"e{i}", f"{day}T08:00:00+08:00", patient=f"P{i}"), f"P{i}".encode(), i
            )
            for i, day in enumerate(days)
        ]
    )
    assert proc.sweep_mark(2) is None  # the other topics of partition 2 may still speak
    clock[0] += 61  # they have been quiet for a minute: idle
    assert proc.sweep_mark(2) == 1772409600.0


def test_an_event_late_for_its_patient_still_goes_to_its_doctors_rules() -> None:
    """Each kind judges lateness itself: a patient made "ahead" by one odd event must not
    keep its later events from its doctor's and institution's rules."""

    def consult(event_id: str, occurred_at: str) -> bytes:
        raw = {"event_id": event_id, "event_type": "consultation", "occurred_at": occurred_at}
        return orjson.dumps(
            {**raw, "patient_id": "P1", "institution_id": "H1", "doctor_id": "D1", "mode": "online"}
        )

    out = at_clock(NOW).process(
        [
            record(consult("ahead", "2026-05-01T08:00:00+08:00"), b"P1", 1),
            record(consult("normal", "2026-03-01T08:00:00+08:00"), b"P1", 2),
        ]
    )
    assert [d.reason for d in out.dead_letters] == ["late"]
    assert [orjson.loads(f.value)["event_id"] for f in out.forwards if f.kind == "doctor"] == [
        "ahead",
        "normal",
    ]


def test_an_aligned_processor_releases_once_the_watermark_has_passed_by_the_slack() -> None:
    config = DetectionConfig.default(allowed_lateness_hours=1.0, alignment_slack_minutes=10.0)
    proc = KeyedProcessor(
        Engine(config, None), "doctor", {}.get, home_topics=frozenset(), partitions=1, align=True
    )
    proc.assign([0])
    visit = next(e for e in events(40) if e["event_type"] == "consultation")
    topic = "claimstream.repartition.doctor"
    source = (("cs-source", b"consultations/0"),)
    held = proc.process(
        [Record(visit["doctor_id"].encode(), orjson.dumps(visit), topic, 0, 0, 0.0, source)]
    )
    assert [h.event_id for h in held.held] == [visit["event_id"]]
    ts = held.held[0].ts

    def marker(progress: float, offset: int) -> Record:
        body = orjson.dumps({"consultations/0": [progress, False]})
        return Record(None, None, topic, 0, offset, 0.0, (("cs-marker", body),))

    assert proc.process([marker(ts + 9 * 60, 1)]).released == []  # within the slack: waits
    released = proc.process([marker(ts + 11 * 60, 2)]).released  # 1 h lateness not needed
    assert [h.event_id for h in released] == [visit["event_id"]]


#: a chronic dispensing not followed by another of the same drug within a day
MISSED = {
    "missed": {
        "template": "absence",
        "event_types": ["dispense"],
        "filter_a": "event.chronic",
        "filter_b": "true",
        "join": "a.drug_code == b.drug_code",
        "within_days": 1,
        "mode": "enforce",
    }
}


def test_an_absence_found_by_the_sweep_comes_out_of_the_next_batch_with_its_key_s_state() -> None:
    """The sweep writes nothing for a key whose timer fell due: its alert and its state leave
    together in the next batch, so a stop in between leaves the timer to be found again."""
    clock = [NOW]
    store: dict[str, State] = {}
    config = DetectionConfig.default().with_custom(MISSED)
    proc = KeyedProcessor(
        Engine(config, lambda: clock[0]), "patient", store.get, home_topics=frozenset({INPUT})
    )
    first = proc.process(
        [
            record(_dispense("d1", "2026-03-01T08:00:00+08:00", patient="P1"), b"P1", 0),
            record(_dispense("x", "2026-03-05T08:00:00+08:00", patient="P2"), b"P2", 1),
            record(_dispense("y", "2026-03-06T08:00:00+08:00", patient="P2"), b"P2", 2),
        ]
    )
    store.update({key: state for key, (state, _) in first.writes.items()})
    assert not [e for e in first.alerts if e.alert.rule == "missed"]
    assert proc.sweep_mark(2) is None  # the other input topics of the partition may speak
    clock[0] += 61  # now they are idle: the sweep mark is 03-05, past P1's deadline
    writes, deletes = proc.sweep(["P1", "P2"], store.get, lambda key: 2)
    assert "P1" not in writes and "P1" not in deletes
    after = proc.process([])
    assert [e.alert.event_ids for e in after.alerts if e.alert.rule == "missed"] == [("d1",)]
    assert "P1" in after.writes
    assert proc.process([]).alerts == []  # handed out once


def test_a_dispensing_goes_to_the_trace_code_topic_once_per_code_as_its_codes_view() -> None:
    from claimstream.detection.decode import decode_event
    from claimstream.detection.tracecodes import view

    raw = {**orjson.loads(_dispense("e1", "2026-03-01T08:00:00+08:00")), "trace_codes": ["A", "B"]}
    out = processor().process([record(orjson.dumps(raw), b"P1")])
    coded = [f for f in out.forwards if f.kind == "trace_code"]
    assert [f.key for f in coded] == ["A", "B"]
    event = decode_event(raw)
    for forward in coded:
        assert decode_event(forward.value) == view(event, forward.key)  # type: ignore[arg-type]
        assert dict(forward.headers)["cs-source"] == b"dispensing/2"


def test_a_dispensing_without_codes_goes_to_no_trace_code_topic() -> None:
    out = processor().process([record(_dispense("e1", "2026-03-01T08:00:00+08:00"), b"P1")])
    assert out.writes and not [f for f in out.forwards if f.kind == "trace_code"]


def test_input_read_again_after_a_restart_is_a_duplicate_even_when_its_ids_are_forgotten() -> None:
    """A restart reads from the last commit; the patient's stored state may be days of event
    time ahead by then (a backlog), its dedup no longer holding those ids: the records it has
    applied are copies, not late events."""

    def consult(n: int) -> bytes:
        at = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(hours=6 * n)
        return orjson.dumps(
            {
                "event_id": f"c{n}",
                "event_type": "consultation",
                "occurred_at": at.isoformat(),
                "patient_id": "P1",
                "institution_id": "H1",
                "doctor_id": "D1",
                "mode": "offline",
            }
        )

    batch = [record(consult(n), b"P1", offset=n) for n in range(40)]
    states: dict[str, State] = {}
    first = at_clock(NOW, states).process(batch)
    states.update({key: state for key, (state, _) in first.writes.items()})
    assert "c0" not in states["P1"]["seen"]  # a day's dedup has let the first ones go

    again = at_clock(NOW, states).process(batch)

    assert not again.dead_letters and not again.writes and not again.alerts
    assert again.duplicates == len(batch)
