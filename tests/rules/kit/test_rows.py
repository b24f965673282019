"""rules.kit.rows: sorted rows of plain tuples (lists when read back from JSON or long)."""

from __future__ import annotations

import sys

from claimstream.rules import RULES
from claimstream.rules.kit import rows as rows_kit
from claimstream.rules.kit import stays


def test_insert_keeps_order_refuses_a_held_id_and_switches_to_a_list_when_long() -> None:
    rows: rows_kit.Rows = ()
    for ts, event_id in [(5.0, "e"), (1.0, "a"), (5.0, "d"), (9.0, "z")]:
        inserted = rows_kit.insert(rows, (ts, event_id))
        assert inserted is not None
        rows = inserted[0]
    assert rows == ((1.0, "a"), (5.0, "d"), (5.0, "e"), (9.0, "z"))
    assert rows_kit.insert(rows, (5.0, "d")) is None
    assert rows_kit.insert([list(r) for r in rows], (5.0, "e")) is None  # as read from JSON
    long_rows = tuple((float(i), f"e{i:03d}") for i in range(rows_kit.TUPLE_MAX))
    inserted = rows_kit.insert(long_rows, (3.5, "x"))
    assert inserted is not None
    as_list, position = inserted
    assert isinstance(as_list, list) and position == 4 and as_list[4] == (3.5, "x")
    assert rows_kit.replace(as_list, 0, (0.0, "new")) is as_list and as_list[0] == (0.0, "new")
    assert rows_kit.replace(rows, 0, (0.0, "b")) == ((0.0, "b"), *rows[1:])


def test_a_cut_that_keeps_every_row_hands_back_the_rows_themselves() -> None:
    rows = [[1.0, "a"], [2.0, "b"]]  # as read from JSON
    assert rows_kit.keep_from(rows, 1.0) is rows and rows_kit.keep_after(rows, 0.5) is rows
    assert rows_kit.keep_from(rows, 1.5) == ([2.0, "b"],)
    assert rows_kit.keep_after(rows, 1.0) == ([2.0, "b"],)


def test_every_row_layout_starts_with_the_event_time_and_the_event_id() -> None:
    modules = {sys.modules[rule.__module__] for rule in RULES.values()} | {stays}
    layouts = [m for m in modules if hasattr(m, "TS")]
    assert len(layouts) >= 10
    for module in layouts:
        assert (module.TS, module.EVENT_ID) == (rows_kit.TS, rows_kit.EVENT_ID), module
