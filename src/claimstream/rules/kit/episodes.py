"""Threshold episodes over a trailing window: "at least N ... within D" with one alert per
episode (high_frequency_consultation, special_exam_repeat, chronic_polypharmacy,
doctor_consultation_rate, diagnosis_cluster).

The trailing window of row i covers the rows with ts in (ts_i - window, ts_i] up to row i
itself. `count` turns such a slice into a number (rows, a sum, distinct patients...); it must
not decrease when a row is added, which holds for all of these. Row i *starts an episode* when
its count reaches the threshold and either the previous row's count was below it or the
previous row lies outside row i's window (a gap of a whole window ends an episode). An episode
lasts while the count stays at or above the threshold. One alert per episode: a start is
alerted unless a row of its episode already was. An out-of-order row can move a start earlier
than the row already alerted; that alert then stands for the episode and no second one is
sent, so the alert ids equal the in-order ones whenever the late row does not fall before the
episode's original start.

A group is the state of one window: {"rows": [row...], "alerted": [event_id...]}, rows sorted
by (ts, event_id) (`rules.kit.rows`), `alerted` the ids of the rows whose episode was alerted.
A redelivered row is already held: it changes nothing.

Expiry. Every event still to come is at or after the cutoff (the engine refuses older ones as
late), so it needs the rows of its own window, the rows after cutoff - window, and whether the
previous row's count was at the threshold. Only one held row before the cutoff can be a new
row's previous row: the last one, p, and its count is final (no row can still join its
window). When p's count is at or above the threshold, its window is kept too (one to two
windows in all, while an episode runs across the cutoff). When it is below, the rows of its
window before cutoff - window go: a part of a window counts no more than the whole (counts do
not decrease when a row is added), so p's count, recounted later, is still below. Ids alerted
of rows that go, go with them (only rows from a new row on are ever looked up).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from claimstream.rules.base import State
from claimstream.rules.kit.rows import (
    EVENT_ID,
    TS,
    Row,
    Rows,
    first_after,
    first_at,
    insert,
    ts_of,
)

Count = Callable[[Sequence[Row]], float]


def rows_count(rows: Sequence[Row]) -> float:
    """The count of a plain "at least N events" window."""
    return len(rows)


@dataclass(frozen=True, slots=True)
class Episodes:
    """One rule's window: its length (seconds), its threshold and how a window is counted."""

    window: float
    threshold: float
    count: Count = rows_count

    def add(self, group: State, row: Row) -> list[Rows]:
        """Hold `row` in `group`; the window of each episode start it creates, oldest first,
        its last row the start (nothing for a redelivery, or when no episode starts)."""
        inserted = insert(group.get("rows", ()), row)
        if inserted is None:
            return []
        rows, position = inserted
        group["rows"] = rows
        alerted: Sequence[str] = group.get("alerted", ())
        starts = self.starts(rows, position, alerted)
        if not starts:
            return []
        group["alerted"] = (*alerted, *(rows[index][EVENT_ID] for index, _ in starts))
        return [rows[start : index + 1] for index, start in starts]

    def starts(self, rows: Rows, position: int, alerted: Sequence[str]) -> list[tuple[int, int]]:
        """(index, window start) of each episode start, not yet in `alerted`, that the row
        just inserted at `position` of `rows` creates, oldest first (what `add` alerts). For a
        caller that keeps the rows itself: several rules over one row store (`rules.custom`)."""
        if position == len(rows) - 1:  # the newest row, the common case: no later row to recount
            threshold = self.threshold
            start = bisect.bisect_right(
                rows, rows[position][TS] - self.window, hi=position, key=ts_of
            )
            if self._count(rows, start, position) < threshold:
                return []  # below the threshold: it starts nothing
            if position > start and self._count_at(rows, position - 1) >= threshold:
                return []  # the episode goes on
            if rows[position][EVENT_ID] in alerted:
                return []
            return [(position, start)]
        return self._new_starts(rows, position, alerted)

    def expire(self, group: State, cutoff: float) -> None:
        """Drop what no row at or after `cutoff` needs (see the module docstring); a group left
        empty is emptied, so the caller can drop it."""
        rows: Rows = group.get("rows", ())
        first = self.first_kept(rows, cutoff)
        if first == 0:
            return
        kept = tuple(rows[first:])
        if not kept:
            group.clear()
            return
        group["rows"] = kept
        alerted = group.get("alerted")
        if alerted:
            still = kept_ids(alerted, kept)
            if still:
                group["alerted"] = still
            else:
                del group["alerted"]

    def first_kept(self, rows: Rows, cutoff: float) -> int:
        """The index of the first of `rows` that a row at or after `cutoff` may still need
        (see the module docstring): 0 when all stay, len(rows) when none does."""
        window = self.window
        if not rows or rows[0][TS] > cutoff - window:
            return 0  # every row is within a window of the cutoff: the common case
        first = first_after(rows, cutoff - window)  # >= 1
        last_before = first_at(rows, cutoff) - 1
        previous = rows[last_before][TS]
        if (
            previous > cutoff - window  # p is in the window of a row to come
            and rows[first - 1][TS] > previous - window  # and its window reaches what goes
            and self._count_at(rows, last_before) >= self.threshold
        ):
            first = first_after(rows, previous - window)  # p's count decides the next start
        return first

    @staticmethod
    def size(group: State) -> int:
        return len(group.get("rows", ()))

    def _new_starts(
        self, rows: Rows, position: int, alerted: Sequence[str]
    ) -> list[tuple[int, int]]:
        """(index, window start) of each not yet alerted episode start that the row inserted at
        `position` creates. Only rows from `position` to one window after it change count; a
        row outside that range can only lose its start (its predecessor's count rose), never
        gain one."""
        window, threshold = self.window, self.threshold
        if position == len(rows) - 1:
            end = position + 1  # the newest row: no row after it to recount
        else:
            end = bisect.bisect_left(rows, rows[position][TS] + window, key=ts_of)
        found = []
        for index in range(position, end):
            start = self._start(rows, index)
            if self._count(rows, start, index) < threshold:
                continue
            if index > start and self._count_at(rows, index - 1) >= threshold:
                continue  # the previous row is in this window and already at the threshold
            if not self._episode_alerted(rows, index, alerted):
                found.append((index, start))
        return found

    def _episode_alerted(self, rows: Rows, index: int, alerted: Sequence[str]) -> bool:
        """Whether a row of the episode starting at `index` was alerted already."""
        window, threshold = self.window, self.threshold
        for later in range(index, len(rows)):
            if later > index and (
                rows[later - 1][TS] <= rows[later][TS] - window
                or self._count_at(rows, later) < threshold
            ):
                return False
            if rows[later][EVENT_ID] in alerted:
                return True
        return False

    def _start(self, rows: Rows, index: int) -> int:
        """The first row of row `index`'s trailing window (ts > ts_index - window)."""
        return bisect.bisect_right(rows, rows[index][TS] - self.window, hi=index, key=ts_of)

    def count_of(self, rows: Rows, start: int, index: int) -> float:
        """`count` of rows[start..index]."""
        return self._count(rows, start, index)

    def count_at(self, rows: Rows, index: int) -> float:
        """`count` of row `index`'s trailing window."""
        return self._count(rows, self._start(rows, index), index)

    def _count(self, rows: Rows, start: int, index: int) -> float:
        """`count` of rows[start..index]; a plain row count needs no slice."""
        if self.count is rows_count:
            return index - start + 1
        return self.count(rows[start : index + 1])

    def _count_at(self, rows: Rows, index: int) -> float:
        return self._count(rows, self._start(rows, index), index)


def kept_ids(alerted: Sequence[str], kept: Rows) -> tuple[str, ...]:
    """The ids of `alerted` that are rows of `kept` (ids alerted of rows that went, go)."""
    ids = {row[EVENT_ID] for row in kept}
    return tuple(event_id for event_id in alerted if event_id in ids)
