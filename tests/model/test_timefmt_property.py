"""Every calendar and formatting helper is total over the event times the decoder accepts.

The decoder lets through occurred_at written with a year from `EARLIEST_YEAR` to `LATEST_YEAR`
and any UTC offset up to a day. Here any such spelling, in any zone, and with a year of rule
horizon on either side (a FREEZE's expiry, a month's end), goes through the helpers without
raising; a year beyond the range is refused by the decoder, never handed on.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from claimstream.detection.decode import decode_event
from claimstream.model.events import EARLIEST_YEAR, LATEST_YEAR, Event
from claimstream.model.rejection import Rejection
from claimstream.model.timefmt import DAY, end_of_local_day, iso
from claimstream.sanctions.points import year_of

ZONES = [
    ZoneInfo(name)
    for name in (
        "UTC",
        "Asia/Shanghai",
        "Pacific/Kiritimati",
        "Pacific/Pago_Pago",
        "America/St_Johns",
    )
]
HORIZON = 400 * DAY

offsets = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


@st.composite
def spellings(draw: st.DrawFn, years: st.SearchStrategy[int]) -> str:
    moment = datetime(
        draw(years),
        draw(st.integers(1, 12)),
        draw(st.integers(1, 28)),
        draw(st.integers(0, 23)),
        draw(st.integers(0, 59)),
        draw(st.integers(0, 59)),
        draw(st.sampled_from([0, 1, 500_000, 999_999])),
        tzinfo=draw(offsets),
    )
    text = moment.isoformat()
    return text.replace("+00:00", "Z") if draw(st.booleans()) else text


def event_with(occurred_at: str) -> Event | Rejection:
    return decode_event(
        {
            "event_id": "e1",
            "event_type": "consultation",
            "occurred_at": occurred_at,
            "patient_id": "P1",
            "institution_id": "H1",
            "mode": "online",
        }
    )


edge_years = st.sampled_from([EARLIEST_YEAR, LATEST_YEAR]) | st.integers(EARLIEST_YEAR, LATEST_YEAR)


@settings(max_examples=400, database=None, deadline=None)
@given(spellings(edge_years), st.sampled_from(ZONES), st.floats(-HORIZON, HORIZON))
def test_helpers_never_raise_on_an_accepted_time_or_a_horizon_around_it(
    text: str, zone: ZoneInfo, shift: float
) -> None:
    event = event_with(text)
    assert isinstance(event, Event), event
    for ts in (event.ts, event.ts + shift):
        assert iso(ts)
        assert iso(ts, zone)
        assert end_of_local_day(ts, zone) > ts
        assert EARLIEST_YEAR - 2 <= year_of(ts, zone) <= LATEST_YEAR + 2


outside = st.integers(1, EARLIEST_YEAR - 1) | st.integers(LATEST_YEAR + 1, 9999)


@settings(max_examples=200, database=None, deadline=None)
@given(spellings(outside))
def test_a_year_outside_the_contract_is_refused_as_implausible(text: str) -> None:
    refused = event_with(text)
    assert isinstance(refused, Rejection) and refused.reason == "implausible_timestamp"
