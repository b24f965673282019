"""The RocksDB store as our tables use it: a state is read back whatever event is current."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import faust
import pytest
from faust.streams import _current_event

from claimstream.kafka.topology import load_topology
from claimstream.stream.codec import PartitionPointer, _At
from claimstream.stream.tables import state_table

pytest.importorskip("rocksdict", reason="the rocksdb extra (installed by the dev extra)")

SOURCE = "settlement.dispensing.v1"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    app = faust.App(
        "tables-test",
        broker="kafka://127.0.0.1:1",  # never connected
        store="rocksdb://",
        datadir=str(tmp_path),
        autodiscover=False,
    )
    table, _, _ = state_table(app, load_topology(), "state-patient")
    yield table.data
    table.data._dbs.clear()  # closes the databases (rocksdict closes on collection)


def write(store: Any, partition: int, key: str, value: Any) -> None:
    with PartitionPointer(SOURCE).writing_to(partition):
        store[key] = value


def test_a_state_written_to_one_partition_is_read_while_an_event_of_another_is_current(
    store: Any,
) -> None:
    write(store, 3, "P1", {"n": 1})
    current = _At(SOURCE, 1)
    token = _current_event.set(weakref.ref(current))  # type: ignore[arg-type]
    try:
        assert store.get("P1") == {"n": 1}
    finally:
        _current_event.reset(token)


def test_a_key_of_another_partition_is_in_the_table_while_an_event_is_current(
    store: Any,
) -> None:
    write(store, 2, "P2", {"n": 2})
    with PartitionPointer(SOURCE).writing_to(0):
        assert "P2" in store
        assert "P3" not in store


def test_a_state_is_stored_in_the_database_of_the_partition_it_was_written_to(
    store: Any,
) -> None:
    write(store, 5, "P5", {"n": 5})
    assert store._db_for_partition(5).get(b"P5") == b'{"n":5}'
    assert store._db_for_partition(4).get(b"P5") is None


def test_the_table_files_live_under_the_data_directory(store: Any, tmp_path: Path) -> None:
    write(store, 0, "P0", {"n": 0})
    assert store.partition_path(0).is_relative_to(tmp_path)
    assert store.partition_path(0).relative_to(tmp_path) == Path("v1/tables/state-patient-0.db")
