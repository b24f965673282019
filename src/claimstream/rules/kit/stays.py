"""Stay pairs: a discharge and the later admissions it may pair with (readmission_24h,
split_hospitalization).

An admission pairs with the latest discharge at or before it (in event time) of another stay
(another admission_id) that `matches` it, when the gap from that discharge to the admission is
under `max_gap`. Each admission pairs at most once: its row is flagged when it does.

Out of order, both ways: an admission is compared when it arrives; a discharge arriving after
admissions it precedes re-compares those within `max_gap` after it (later ones are too far from
it, and it cannot change what a later discharge pairs them with). Either way the admissions
that pair, and so the alert ids, are those of the in-order stream: the latest discharge before
an admission is the closest, so if any discharge held earlier paired with it, so does that one.
The discharge an alert names can differ: an admission that already paired with an earlier
discharge keeps that pair. A redelivered admission or discharge is already held and changes
nothing.

State: {"discharges": [row...], "admissions": [row...]}, each sorted by (ts, event_id) (see
`rules.kit.rows`), row layout below. A discharge is kept while an admission at or after the
cutoff can still pair with it (ts + max_gap > cutoff), an admission while a discharge at or
after the cutoff can still precede it (ts >= cutoff).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from claimstream.model.events import Event, Stay
from claimstream.rules.base import State
from claimstream.rules.kit.rows import (
    Row,
    Rows,
    first_after,
    first_at,
    insert,
    keep_after,
    keep_from,
    replace,
)

# a row: one admission or discharge
(
    TS,
    EVENT_ID,
    INSTITUTION_ID,
    ADMISSION_ID,
    DIAGNOSIS_CODE,
    OCCURRED_AT,
    DOCTOR_ID,
    DEPARTMENT_ID,
    ALERTED,  # on an admission: it has paired
) = range(9)

#: (discharge row, admission row) -> whether they may pair; the default: any two stays
Matches = Callable[[Row, Row], bool]


def any_stays(discharge: Row, admission: Row) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class StayPairs:
    """One rule's pairing: the gap (seconds) it must be under, and which stays may pair."""

    max_gap: float
    matches: Matches = any_stays

    def add(self, state: State, event: Event, stay: Stay) -> list[tuple[Row, Row]]:
        """Hold an admission or discharge; the (discharge, admission) pairs it completes."""
        row = (
            event.ts,
            event.event_id,
            event.institution_id,
            stay.admission_id,
            stay.diagnosis_code,
            event.occurred_at,
            event.doctor_id,
            event.department_id,
            False,
        )
        discharges: Rows = state.get("discharges", ())
        admissions: Rows = state.get("admissions", ())
        if event.event_type == "admission":
            inserted = insert(admissions, row)
            if inserted is None:
                return []
            admissions, start = inserted
            state["admissions"] = admissions
            end = start + 1
        else:  # a discharge can only pair with admissions after it
            inserted = insert(discharges, row)
            if inserted is None:
                return []
            discharges = state["discharges"] = inserted[0]
            start = first_at(admissions, event.ts)
            end = first_at(admissions, event.ts + self.max_gap)
        pairs = []
        for index in range(start, end):
            admission = admissions[index]
            if admission[ALERTED]:
                continue
            discharge = self._latest_discharge(discharges, admission)
            if discharge is not None and admission[TS] - discharge[TS] < self.max_gap:
                admissions = replace(admissions, index, (*admission[:ALERTED], True))
                pairs.append((discharge, admission))
        if pairs:
            state["admissions"] = admissions
        return pairs

    def _latest_discharge(self, discharges: Rows, admission: Row) -> Row | None:
        """The latest discharge at or before `admission` of another stay that matches it."""
        for index in range(first_after(discharges, admission[TS]) - 1, -1, -1):
            discharge = discharges[index]
            if discharge[ADMISSION_ID] != admission[ADMISSION_ID] and self.matches(
                discharge, admission
            ):
                return discharge
        return None

    def expire(self, state: State, cutoff: float) -> None:
        discharges = keep_after(state.get("discharges", ()), cutoff - self.max_gap)
        admissions = keep_from(state.get("admissions", ()), cutoff)
        state.clear()
        if discharges:
            state["discharges"] = discharges
        if admissions:
            state["admissions"] = admissions

    @staticmethod
    def size(state: State) -> int:
        return len(state.get("discharges", ())) + len(state.get("admissions", ()))
