"""claimstream.reference.suspensions: the doctors' suspensions in force, from the commands."""

from __future__ import annotations

from datetime import datetime

from claimstream.reference.suspensions import Suspensions
from claimstream.testing import SHANGHAI


def command(action: str, at: str, command_id: str, doctor: str = "D1") -> dict[str, object]:
    return {
        "command_id": command_id,
        "action": action,
        "scope": {"kind": "doctor", "id": doctor},
        "effective_from": at,
        "expires_at": None,
    }


def ts(hour: int) -> float:
    return datetime(2026, 3, 1, hour, tzinfo=SHANGHAI).timestamp()


def test_a_suspension_is_in_force_from_its_effective_time_with_no_end() -> None:
    held = Suspensions.from_commands([command("SUSPEND", "2026-03-01T09:00:00+08:00", "s")])
    assert held.suspension("D1", ts(8)) is None
    suspension = held.suspension("D1", ts(9))
    assert suspension is not None and suspension.command_id == "s"
    assert held.suspension("D2", ts(10)) is None
    assert len(held) == 1


def test_a_redelivered_command_counts_once() -> None:
    held = Suspensions()
    suspend = command("SUSPEND", "2026-03-01T09:00:00+08:00", "s")
    lift = command("UNFREEZE", "2026-03-01T11:00:00+08:00", "u")
    assert [held.apply(c) for c in (suspend, lift, suspend)] == [True, True, False]
    assert held.suspension("D1", ts(12)) is None


def test_a_second_suspension_after_a_lift_is_in_force_again() -> None:
    held = Suspensions.from_commands(
        [
            command("SUSPEND", "2026-03-01T09:00:00+08:00", "s1"),
            command("UNFREEZE", "2026-03-01T10:00:00+08:00", "u1"),
            command("SUSPEND", "2026-03-01T12:00:00+08:00", "s2"),
        ]
    )
    assert held.suspension("D1", ts(11)) is None
    found = held.suspension("D1", ts(13))
    assert found is not None and found.command_id == "s2"


def test_commands_that_are_not_a_doctors_suspension_or_its_lift_are_ignored() -> None:
    drug = {**command("SUSPEND", "2026-03-01T09:00:00+08:00", "d")}
    drug["scope"] = {"kind": "doctor", "id": "D1", "drug_code": "X"}
    unreadable = command("SUSPEND", "yesterday", "y")
    held = Suspensions()
    assert not held.apply(command("FREEZE", "2026-03-01T09:00:00+08:00", "f"))
    assert not held.apply(drug)
    assert not held.apply(unreadable)
    assert not held.apply({"action": "SUSPEND"})
    assert held.suspension("D1", ts(12)) is None
