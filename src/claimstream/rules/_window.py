"""Helpers the catalogue's rules share: sorted rows, and threshold episodes over a trailing
window.

A row is a sequence whose first two fields are the event time and a unique id (the event id),
kept sorted by (ts, id) so that the order, and so every result, does not depend on arrival order.

Rows and the sequences holding them are written as tuples and replaced, never changed in place:
a tuple of numbers and strings is untracked by Python's cyclic garbage collector after the first
collection it survives, whereas a list stays tracked for as long as it lives and every full
collection visits it. State of a busy stream is mostly rows, so lists there made the collector
the largest single cost of detection. A state read back from a changelog holds lists instead
(JSON has only arrays); every function here reads both, and what it writes is tuples again.

Episodes. The trailing window of row i covers the rows with ts in (ts_i - window, ts_i] up to
row i itself. `count` turns such a slice into a number (rows, a sum, distinct patients...); it
must not decrease when a row is added, which holds for all of these. Row i *starts an episode*
when its count reaches the threshold and either the previous row's count was below it or the
previous row lies outside row i's window (a gap of a whole window ends an episode). One alert
per episode: a start is alerted unless a row of its episode already was. An out-of-order row
can move a start earlier than the row already alerted; that alert then stands for the episode
and no second one is sent, so the alert ids equal the in-order ones whenever the late row does
not fall before the episode's original start.

Expiry keeps rows with ts >= cutoff - 2 * window: rows of new events (ts >= cutoff) need the
rows one window back, and the previous row's count needs one more window.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any

Row = Sequence[Any]
Rows = Sequence[Row]
Count = Callable[[Sequence[Row]], float]


def order(row: Row) -> tuple[float, str]:
    return (row[0], row[1])


#: Row sequences shorter than this are tuples. The few longer ones (a busy doctor's day of
#: consultations) are lists: copying a long tuple on every insert costs more than the
#: collector saves on a handful of keys.
TUPLE_MAX = 32


def insert(rows: Rows, row: Row) -> tuple[Rows, int] | None:
    """`rows` with `row` inserted in (ts, id) order, and its position; None when its id is
    already there. A short sequence comes back as a new tuple, a long one as a list (the same
    list, changed in place, when it was one): the caller stores what it gets."""
    ts, row_id = row[0], row[1]
    if rows and (rows[-1][0] < ts or (rows[-1][0] == ts and rows[-1][1] < row_id)):
        position = len(rows)  # in order: the common case, no search
    else:
        position = bisect.bisect_left(rows, (ts, row_id), key=order)
        if position < len(rows) and rows[position][1] == row_id:
            return None
    if len(rows) < TUPLE_MAX:
        return (*rows[:position], row, *rows[position:]), position
    held = rows if type(rows) is list else list(rows)
    held.insert(position, row)
    return held, position


def replace(rows: Rows, index: int, row: Row) -> Rows:
    """`rows` with the row at `index` replaced by `row` (to flag it, say); a list is changed
    in place, a tuple copied."""
    if type(rows) is list:
        rows[index] = row
        return rows
    return (*rows[:index], row, *rows[index + 1 :])


def rows_count(rows: Sequence[Row]) -> float:
    return len(rows)


def new_episodes(
    rows: Rows,
    position: int,
    window: float,
    threshold: float,
    count: Count,
    alerted: Sequence[str],
) -> list[tuple[int, int]]:
    """(index, window start) of each episode start the row inserted at `position` creates.

    Only rows from `position` to one window after it change count; a row outside that range
    can only lose its start (its predecessor's count rose), never gain one.
    """
    if position == len(rows) - 1:
        end = position + 1  # the newest row: no row after it to recount
    else:
        end = bisect.bisect_left(rows, rows[position][0] + window, key=_TS)
    found = []
    for index in range(position, end):
        start = _start(rows, index, window)
        if _count(rows, start, index, count) < threshold:
            continue
        if index > start and _count_at(rows, index - 1, window, count) >= threshold:
            continue  # the previous row is in this window and already at the threshold
        if not _episode_alerted(rows, index, window, threshold, count, alerted):
            found.append((index, start))
    return found


def _count(rows: Rows, start: int, index: int, count: Count) -> float:
    """`count` of rows[start..index]; a plain row count needs no slice."""
    if count is rows_count:
        return index - start + 1
    return count(rows[start : index + 1])


#: the event time of a row, as a C-level key for bisect
_TS = itemgetter(0)


def _start(rows: Rows, index: int, window: float) -> int:
    """The first row of row `index`'s trailing window (ts > ts_index - window)."""
    return bisect.bisect_right(rows, rows[index][0] - window, hi=index, key=_TS)


def _count_at(rows: Rows, index: int, window: float, count: Count) -> float:
    return _count(rows, _start(rows, index, window), index, count)


def _episode_alerted(
    rows: Rows,
    index: int,
    window: float,
    threshold: float,
    count: Count,
    alerted: Sequence[str],
) -> bool:
    """Whether a row of the episode starting at `index` was alerted already."""
    for later in range(index, len(rows)):
        if later > index and (
            rows[later - 1][0] <= rows[later][0] - window
            or _count_at(rows, later, window, count) < threshold
        ):
            return False
        if rows[later][1] in alerted:
            return True
    return False


def nothing_expires(rows: Rows | None, keep_from: float) -> bool:
    """Whether `expire_rows` would keep every row (the common case, decided by the first)."""
    return bool(rows) and rows[0][0] >= keep_from  # type: ignore[index]


def expire_rows(rows: Rows, cutoff: float, keep: float) -> tuple[Row, ...]:
    """The rows with ts >= cutoff - keep (rows are sorted, so a bisect finds the first)."""
    return tuple(rows[bisect.bisect_left(rows, cutoff - keep, key=_TS) :])
