"""`pending-<kind>`: the events an aligned processor holds, as table entries and back."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from claimstream.detection.align import Held
from claimstream.detection.config import DetectionConfig
from claimstream.detection.engine import Engine
from claimstream.detection.processor import BatchResult, KeyedProcessor
from claimstream.devtools.simulate import generate
from claimstream.model.records import Record
from claimstream.stream.detection import pending

TOPIC = "claimstream.repartition.doctor"


def visits(n: int) -> list[dict[str, Any]]:
    found = [e for e in generate(400, seed=4) if e["event_type"] == "consultation"]
    return found[:n]


def held_batch(*, partition: int = 3) -> tuple[KeyedProcessor, BatchResult, list[Record]]:
    proc = KeyedProcessor(
        Engine(DetectionConfig.default(), None),
        "doctor",
        {}.get,
        home_topics=frozenset(),
        partitions=8,
        align=True,
    )
    proc.assign([partition])
    records = [
        Record(
            v["doctor_id"].encode(),
            orjson.dumps(v),
            TOPIC,
            partition,
            offset,
            1_700_000_000.5 + offset,
            (("cs-source", f"consultations/{offset % 8}".encode()),),
        )
        for offset, v in enumerate(visits(3))
    ]
    return proc, proc.process(records), records


def test_a_waiting_event_reads_back_as_it_began_to_wait() -> None:
    _, result, records = held_batch()
    assert len(result.held) == 3
    writes, deletes = pending.changes(result)
    assert deletes == {}
    stored = {key: orjson.loads(orjson.dumps(value)) for key, (value, _) in writes.items()}
    back = sorted(pending.entries(stored.items(), frozenset({3})), key=lambda h: h.tag.offset)
    for held, before, record in zip(back, result.held, records, strict=True):
        assert (held.ts, held.event_id, held.key, held.home) == (
            before.ts,
            before.event_id,
            before.key,
            3,
        )
        assert held.event == before.event
        assert held.tag == record


def test_entries_are_written_to_their_repartition_partition_and_keyed_by_key_time_and_id() -> None:
    _, result, _ = held_batch(partition=5)
    writes, _ = pending.changes(result)
    for held in result.held:
        key = f"{held.key}\x1f{held.ts!r}\x1f{held.event_id}"
        assert writes[key][1] == 5


def test_only_the_assigned_partitions_entries_are_restored() -> None:
    _, result, _ = held_batch(partition=5)
    writes, _ = pending.changes(result)
    items = [(key, value) for key, (value, _) in writes.items()]
    assert list(pending.entries(items, frozenset({4}))) == []
    assert len(list(pending.entries(items, frozenset({5})))) == 3


def test_a_released_event_is_deleted_and_one_held_and_released_in_one_batch_is_never_written() -> (
    None
):
    proc, first, _ = held_batch()
    # everything is released: the watermark is infinite once every source is idle
    marker = orjson.dumps({f"consultations/{p}": [None, True] for p in range(8)})
    more = visits(4)[3]
    batch = [
        Record(more["doctor_id"].encode(), orjson.dumps(more), TOPIC, 3, 10, 0.0, ()),
        Record(None, None, TOPIC, 3, 11, 0.0, (("cs-marker", marker),)),
    ]
    second = proc.process(batch)
    assert len(second.released) == 4
    writes, deletes = pending.changes(second)
    assert writes == {}
    assert set(deletes) == {pending.entry_key(h) for h in first.held}
    assert set(deletes.values()) == {3}


def test_an_unreadable_entry_is_left_alone() -> None:
    bad = [("D1\x1f1.0\x1fe1", {"v": "not json", "t": TOPIC, "p": 3, "o": 0, "a": 0.0})]
    assert list(pending.entries(bad, frozenset({3}))) == []


def test_an_entry_without_a_source_header_comes_back_without_one() -> None:
    _, result, _ = held_batch()
    writes, _ = pending.changes(result)
    key, (value, _) = next(iter(writes.items()))
    value = {**value, "s": ""}
    (held,) = pending.entries([(key, value)], frozenset({3}))
    assert held.tag.headers == ()


def test_entries_at_or_before_their_keys_last_released_event_are_not_put_back() -> None:
    _, result, _ = held_batch()
    first, second, third = (
        dataclasses.replace(h, key="D1") for h in sorted(result.held, key=Held.order)
    )
    states = {"D1": {"rel": [second.ts, second.event_id]}}
    waiting, released = pending.split([third, first, second], states.get)
    assert (waiting, released) == ([third], [first, second])


def test_an_entry_of_a_key_without_a_stored_state_is_put_back() -> None:
    _, result, _ = held_batch()
    waiting, released = pending.split(result.held, {}.get)
    assert (len(waiting), released) == (3, [])


def test_a_waiting_trace_code_record_reads_back_as_its_codes_view() -> None:
    from claimstream.detection.decode import decode_event
    from claimstream.detection.tracecodes import slim, view
    from claimstream.model.events import Event

    line = next(e for e in generate(400, seed=4) if e["event_type"] == "dispense")
    event = decode_event({**line, "trace_codes": ["81234567890123456789", "81234567890123456790"]})
    assert isinstance(event, Event)
    proc = KeyedProcessor(
        Engine(DetectionConfig.default(), None),
        "trace_code",
        {}.get,
        home_topics=frozenset(),
        partitions=8,
        align=True,
    )
    proc.assign([5])
    code = "81234567890123456790"
    record = Record(
        code.encode(),
        orjson.dumps(slim(event, code)),
        "claimstream.repartition.trace_code",
        5,
        0,
        1_700_000_000.5,
        (("cs-source", b"dispensing/2"),),
    )
    (held,) = proc.process([record]).held
    writes, _ = pending.changes(BatchResult(held=[held]))
    stored = {key: orjson.loads(orjson.dumps(value)) for key, (value, _) in writes.items()}
    (back,) = pending.entries(stored.items(), frozenset({5}))
    assert (back.key, back.ts, back.event_id, back.home) == (code, event.ts, event.event_id, 5)
    assert back.event == view(event, code)


# -- across a SIGKILL: what a restart finds, and what it is sent again ------------------------

INPUT = "settlement.consultations.v1"


def consultations(hours: int) -> list[Record]:
    """One doctor's consultations, an hour apart, on input partition 0 (one source)."""
    out = []
    for hour in range(hours):
        value = orjson.dumps(
            {
                "event_id": f"c{hour}",
                "event_type": "consultation",
                "occurred_at": f"2026-03-{1 + hour // 24:02d}T{hour % 24:02d}:00:00+08:00",
                "patient_id": f"P{hour}",
                "institution_id": "H1",
                "doctor_id": "D1",
                "mode": "online",
            }
        )
        out.append(Record(f"P{hour}".encode(), value, INPUT, 0, hour, 0.0))
    return out


def rekeyed(result: BatchResult, first_offset: int) -> list[Record]:
    """The patient processor's doctor forwards as the doctor processor reads them."""
    forwards = [f for f in result.forwards if f.kind == "doctor"]
    return [
        Record(f.key.encode(), f.value, TOPIC, 0, first_offset + i, 0.0, f.headers)
        for i, f in enumerate(forwards)
    ]


def worker(kind: str, states: dict[str, Any]) -> KeyedProcessor:
    proc = KeyedProcessor(
        Engine(DetectionConfig.default(), None),
        kind,  # type: ignore[arg-type]
        states.get,
        home_topics=frozenset({INPUT}) if kind == "patient" else frozenset(),
        forwards=kind == "patient",
        partitions=1,
        align=kind != "patient",
    )
    proc.assign([0])
    return proc


def test_a_restart_that_forwards_an_input_batch_again_dead_letters_none_of_it() -> None:
    """The patient agent's forwards are delivered before its key states; a SIGKILL in between
    leaves the input uncommitted and the patient states without the batch, so the restarted
    worker forwards the same events again, at new offsets of the repartition topic. By then the
    first worker's doctor side had released most of them, stored its key's state and, the key
    being busy, dropped the oldest ids from its dedup (it keeps a day of event time)."""
    batch = consultations(80)  # 80 hours of one source: days of event time, as in a backlog
    stored: dict[str, Any] = {}  # what the first worker's doctor side delivered
    table: dict[str, Any] = {}  # `pending-doctor`
    forwards = worker("patient", {}).process(batch)  # its patient states: never delivered
    first = worker("doctor", {}).process(rekeyed(forwards, 0))
    assert first.released and not first.dead_letters
    writes, _ = pending.changes(first)
    table.update({key: value for key, (value, _) in writes.items()})
    stored.update({key: orjson.loads(orjson.dumps(s)) for key, (s, _) in first.writes.items()})
    assert "c0" not in stored["D1"]["seen"]  # released, and forgotten by the dedup

    # the restart: states and waiting events restored, the input read again from its commit
    again = worker("patient", {}).process(batch)
    successor = worker("doctor", stored)
    waiting, _ = pending.split(pending.entries(table.items(), frozenset({0})), stored.get)
    successor.restore(waiting)
    second = successor.process(rekeyed(again, 80))

    assert [d.reason for d in second.dead_letters] == []
    assert second.duplicates == 80
    assert second.alerts == [] and second.released == []
