"""The memory store holding states as their orjson bytes (`CLAIMSTREAM_COMPACT_STATE`)."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Awaitable, Iterable
from types import SimpleNamespace
from typing import Any

import faust
import orjson

from claimstream.kafka.topology import load_topology
from claimstream.stream.encoded import EncodedStates, EncodedStore, holds_bytes
from claimstream.stream.settings import Settings
from claimstream.stream.tables import TableWriter, state_table

STATE = {"seen": {"e1": 1.0}, "r": {"rule": {"rows": [[1.0, "e1", "2026-01-01T00:00:00Z"]]}}}


def app(store: str = "memory://") -> Any:
    return faust.App("encoded-test", broker="kafka://127.0.0.1:1", store=store, autodiscover=False)


def test_a_state_reads_back_equal_and_as_a_new_object() -> None:
    states = EncodedStates()
    states["P1"] = STATE
    first = states["P1"]
    assert first == STATE
    first["seen"]["e2"] = 2.0  # changed in place, not written back
    assert states["P1"] == STATE


def test_bytes_handed_over_are_kept_as_they_are() -> None:
    blob = orjson.dumps(STATE)
    states = EncodedStates()
    states["P1"] = blob
    assert states.raw["P1"] is blob
    assert states.get("P1") == STATE


def test_a_missing_key_gives_the_default_and_a_deleted_marker_gives_none() -> None:
    states = EncodedStates()
    states["gone"] = None
    assert states.get("absent", "default") == "default"
    assert states.get("gone", "default") is None
    assert "gone" in states and len(states) == 1


def test_only_the_encoded_tables_hold_bytes() -> None:
    a = app()
    encoded, _, _ = state_table(a, load_topology(), "state-patient", encoded=True)
    plain, _, _ = state_table(a, load_topology(), "state-doctor")
    assert isinstance(encoded.data, EncodedStore) and holds_bytes(encoded)
    assert not holds_bytes(plain)


class Publisher:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def send(self, records: Iterable[Any]) -> list[Awaitable[Any]]:
        self.sent.extend(records)
        return []


def test_the_writer_stores_the_bytes_it_sends_to_the_changelog() -> None:
    table, changelog, _ = state_table(app(), load_topology(), "state-patient", encoded=True)
    publisher = Publisher()
    writer = TableWriter(table, changelog, "settlement.dispensing.v1", publisher)  # type: ignore[arg-type]
    asyncio.run(writer.write({"P1": (STATE, 3)}))
    ((topic, key, blob, partition),) = publisher.sent
    assert (topic, key, partition) == (changelog, b"P1", 3)
    assert table.data.data.raw["P1"] == blob
    assert table.data["P1"] == STATE


def writer_of(table: Any, changelog: str) -> TableWriter:
    return TableWriter(table, changelog, "settlement.dispensing.v1", Publisher())  # type: ignore[arg-type]


def test_a_state_the_last_batch_wrote_is_read_back_as_the_object_written() -> None:
    table, changelog, _ = state_table(app(), load_topology(), "state-patient", encoded=True)
    writer = writer_of(table, changelog)
    state = orjson.loads(orjson.dumps(STATE))
    asyncio.run(writer.write({"P1": (state, 3)}, remember=True))
    assert writer.read("P1") is state


def test_a_remembered_state_is_handed_out_once() -> None:
    table, changelog, _ = state_table(app(), load_topology(), "state-patient", encoded=True)
    writer = writer_of(table, changelog)
    state = orjson.loads(orjson.dumps(STATE))
    asyncio.run(writer.write({"P1": (state, 3)}, remember=True))
    writer.read("P1")["seen"]["e2"] = 2.0  # changed by a batch that then failed unwritten
    again = writer.read("P1")
    assert again is not state and again == STATE


def test_a_state_written_since_the_remembering_write_is_read_from_the_store() -> None:
    table, changelog, _ = state_table(app(), load_topology(), "state-patient", encoded=True)
    writer = writer_of(table, changelog)
    asyncio.run(writer.write({"P1": (orjson.loads(orjson.dumps(STATE)), 3)}, remember=True))
    newer = {"seen": {}, "r": {}}
    asyncio.run(writer.write({"P1": (newer, 3)}))  # e.g. a sweep's, not remembered
    assert writer.read("P1") == newer


def test_a_key_deleted_since_the_remembering_write_reads_as_missing() -> None:
    table, changelog, _ = state_table(app(), load_topology(), "state-patient", encoded=True)
    writer = writer_of(table, changelog)
    asyncio.run(writer.write({"P1": (orjson.loads(orjson.dumps(STATE)), 3)}, remember=True))
    asyncio.run(writer.write({}, {"P1": 3}))
    assert writer.read("P1") is None


class Discarding:
    async def send(self, records: Iterable[Any]) -> list[Awaitable[Any]]:
        return []


#: a state of ~1 KB of JSON: orjson hands its bytes over in a 16 KB buffer (3.12 on)
BIG_STATE = {"seen": {f"event-{i}": float(i) for i in range(40)}}


def kept_per_state(put: Any, count: int = 200) -> float:
    """Bytes of memory per state still allocated after `put(key, BIG_STATE)` `count` times."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(count):
            put(f"P{i}", BIG_STATE)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return kept / count


def test_a_state_the_writer_stores_takes_about_its_json_in_memory() -> None:
    table, changelog, _ = state_table(app(), load_topology(), "state-patient", encoded=True)
    writer = TableWriter(table, changelog, "settlement.dispensing.v1", Discarding())  # type: ignore[arg-type]
    table.data  # noqa: B018 - the store, built before the measure

    def put(key: str, state: Any) -> None:
        asyncio.run(writer.write({key: (state, 0)}))

    assert kept_per_state(put) < 2 * len(orjson.dumps(BIG_STATE))


def test_the_changelog_records_of_a_batch_take_about_their_json_in_memory() -> None:
    table, changelog, _ = state_table(app(), load_topology(), "state-doctor")  # objects kept
    publisher = Publisher()  # holds the records, as the producer does until they are sent
    writer = TableWriter(table, changelog, "settlement.dispensing.v1", publisher)  # type: ignore[arg-type]
    table.data  # noqa: B018 - the store, built before the measure

    def put(key: str, state: Any) -> None:
        asyncio.run(writer.write({key: (state, 0)}))

    per_state = kept_per_state(put)
    sent = len(publisher.sent)
    assert sent == 200 and per_state < 2 * len(orjson.dumps(BIG_STATE))


def test_a_state_the_store_encodes_takes_about_its_json_in_memory() -> None:
    states = EncodedStates()

    def put(key: str, state: Any) -> None:
        states[key] = state

    assert kept_per_state(put) < 2 * len(orjson.dumps(BIG_STATE))


def changelog_event(key: str, value: Any, partition: int = 0) -> Any:
    raw = None if value is None else orjson.dumps(value)
    message = SimpleNamespace(value=raw, partition=partition)
    return SimpleNamespace(key=key, value=value, message=message)


def test_a_recovered_changelog_record_is_kept_as_the_bytes_it_arrived_as() -> None:
    table, _, _ = state_table(app(), load_topology(), "state-patient", encoded=True)
    event = changelog_event("P1", STATE, partition=2)
    table.data.apply_changelog_batch([event], to_key=lambda k: k, to_value=lambda v: v)
    assert table.data.data.raw["P1"] is event.message.value
    assert table.data["P1"] == STATE


def test_a_recovered_deletion_removes_the_key() -> None:
    table, _, _ = state_table(app(), load_topology(), "state-patient", encoded=True)
    batch = [changelog_event("P1", STATE), changelog_event("P1", None)]
    table.data.apply_changelog_batch(batch, to_key=lambda k: k, to_value=lambda v: v)
    assert "P1" not in table.data


def test_compact_state_is_on_by_default_and_can_be_turned_off() -> None:
    assert Settings().compact_state is True
    assert Settings.from_env({"CLAIMSTREAM_COMPACT_STATE": "false"}).compact_state is False
