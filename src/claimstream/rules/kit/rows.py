"""Rows: how a rule keeps the events it needs, sorted, in state the garbage collector can ignore.

A row is a plain tuple whose first two fields are the event time (`TS`) and the event id
(`EVENT_ID`); a rule names the rest with index constants (its *layout*):

    # a row: one chronic-drug dispensing
    TS, EVENT_ID, DRUG_CODE, OCCURRED_AT, INSTITUTION_ID = range(5)

Rows are kept sorted by (ts, event_id), so the order, and so every result, does not depend on
arrival order, and a redelivered event is found where it would go.

Why tuples and constants, not NamedTuples (measured, Python 3.11). A tuple of numbers and
strings is untracked by Python's cyclic garbage collector after the first collection it
survives; a list, or a NamedTuple instance (a tuple subclass), stays tracked for as long as it
lives and every full collection visits it. State of a busy stream is mostly rows, so tracked
rows made the collector the largest single cost of detection. orjson, which writes the state to
the changelog, refuses NamedTuple instances anyway. Reading a field by a module constant
(`row[DRUG_CODE]`) costs about 6 % more than a literal index in a tight loop (573 vs 540 ns to
count the distinct drugs of 20 rows), a class attribute (`row[Row.DRUG_CODE]`) 46 % more, and a
NamedTuple view (`Row._make(row).drug_code`) eight times as much; `operator.itemgetter(DRUG_CODE)`
costs the same as a literal.

Rows and the sequences holding them are replaced, never changed in place, except long sequences
(`TUPLE_MAX`), which are lists. A state read back from a changelog holds lists instead (JSON
has only arrays); every function here reads both, and what it writes is tuples again.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

Row = Sequence[Any]
Rows = Sequence[Row]

#: the two fields every row starts with
TS, EVENT_ID = 0, 1

#: Row sequences shorter than this are tuples. The few longer ones (a busy doctor's day of
#: consultations) are lists: copying a long tuple on every insert costs more than the
#: collector saves on a handful of keys.
TUPLE_MAX = 32

#: the event time of a row, as a C-level key for bisect
ts_of = itemgetter(TS)


def optional(row: Row, index: int) -> Any:
    """Field `index` of `row`, or None for a row written before the field was appended.

    A field added at the end of a layout, read through this, needs no state version bump:
    the rows held before the upgrade stay in use and read as None there.
    """
    return row[index] if len(row) > index else None


def order(row: Row) -> tuple[float, str]:
    """The sort key of a row: (ts, event_id)."""
    return (row[TS], row[EVENT_ID])


def insert(rows: Rows, row: Row, *, fresh: bool = False) -> tuple[Rows, int] | None:
    """`rows` with `row` inserted in (ts, event_id) order, and its position; None when its id is
    already there. A short sequence comes back as a new tuple, a long one as a list (the same
    list, changed in place, when it was one, unless `fresh`: then a new one, for a rule whose
    undo copy shares its sequences, `Rule.shallow_state`): the caller stores what it gets."""
    ts, row_id = row[TS], row[EVENT_ID]
    if not rows:
        return (row,), 0
    last = rows[-1]
    if last[TS] < ts or (last[TS] == ts and last[EVENT_ID] < row_id):
        position = len(rows)  # in order: the common case, no search
        if type(rows) is tuple and position < TUPLE_MAX:
            return (*rows, row), position
    else:
        position = bisect.bisect_left(rows, (ts, row_id), key=order)
        if position < len(rows) and rows[position][EVENT_ID] == row_id:
            return None
    if len(rows) < TUPLE_MAX:
        return (*rows[:position], row, *rows[position:]), position
    held = rows if type(rows) is list and not fresh else list(rows)
    held.insert(position, row)
    return held, position


def replace(rows: Rows, index: int, row: Row) -> Rows:
    """`rows` with the row at `index` replaced by `row` (to flag it, say); a list is changed
    in place, a tuple copied."""
    if type(rows) is list:
        rows[index] = row
        return rows
    return (*rows[:index], row, *rows[index + 1 :])


def first_at(rows: Rows, ts: float) -> int:
    """The index of the first row at or after `ts` (len(rows) when none is)."""
    return bisect.bisect_left(rows, ts, key=ts_of)


def first_after(rows: Rows, ts: float, hi: int | None = None) -> int:
    """The index of the first row after `ts`, looking no further than `hi`."""
    return bisect.bisect_right(rows, ts, hi=len(rows) if hi is None else hi, key=ts_of)


def keep_from(rows: Rows, ts: float) -> Rows:
    """The rows at or after `ts`: `rows` itself when all stay (the common case, decided by
    the first row), else a tuple."""
    if not rows or rows[0][TS] >= ts:
        return rows
    return tuple(rows[first_at(rows, ts) :])


def keep_after(rows: Rows, ts: float) -> Rows:
    """The rows after `ts`: `rows` itself when all stay, else a tuple."""
    if not rows or rows[0][TS] > ts:
        return rows
    return tuple(rows[first_after(rows, ts) :])
