"""claimstream.kafka.suspensions: what the worker's feed makes of the commands topic's records
(the consuming loop is exercised by tests/integration/test_suspended_doctor.py)."""

from __future__ import annotations

import orjson

from claimstream.kafka.suspensions import SuspensionsFeed
from claimstream.reference.suspensions import Suspensions
from tests.reference.test_suspensions import command, ts


def feed() -> SuspensionsFeed:
    return SuspensionsFeed("127.0.0.1:1", Suspensions())


def test_a_doctors_suspend_record_is_in_force_for_his_later_events() -> None:
    f = feed()
    assert f.handle(orjson.dumps(command("SUSPEND", "2026-03-01T10:00:00+08:00", "c1")))
    assert f.suspensions.suspension("D1", ts(11)) is not None
    assert f.suspensions.suspension("D1", ts(9)) is None


def test_records_that_are_not_commands_change_nothing_and_do_not_stop_the_feed() -> None:
    f = feed()
    for raw in (None, b"not json", b"[1, 2]", orjson.dumps({"action": "FREEZE"})):
        assert not f.handle(raw)
    assert f.read == 4 and len(f.suspensions) == 0
