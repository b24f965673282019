"""Event-time helpers: POSIX seconds in, RFC 3339 strings out.

Total over event time the contract accepts (`events.EARLIEST_YEAR`..`LATEST_YEAR`, any UTC
offset) and far beyond: they fail only outside `datetime`'s years 1..9999, which the decoder
never lets an event near (tests/model/test_timefmt.py checks this over the whole range).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

DAY = 86_400.0
HOUR = 3_600.0


def iso(ts: float, tz: tzinfo = UTC) -> str:
    """RFC 3339 with offset, seconds precision unless the instant has a fraction."""
    moment = datetime.fromtimestamp(ts, tz)
    return moment.isoformat(timespec="seconds" if moment.microsecond == 0 else "milliseconds")


def end_of_local_day(ts: float, tz: tzinfo) -> float:
    """The next local midnight after `ts` (exclusive end of that local calendar day)."""
    local = datetime.fromtimestamp(ts, tz)
    midnight = datetime(local.year, local.month, local.day, tzinfo=tz) + timedelta(days=1)
    return midnight.timestamp()
