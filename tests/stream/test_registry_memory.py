from __future__ import annotations

from datetime import UTC, datetime

from claimstream.core.outputs import Command, Scope
from claimstream.registry.memory import MemoryRegistry

NOW = datetime(2026, 3, 1, tzinfo=UTC).timestamp()


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def command(
    cid: str,
    action: str = "FREEZE",
    *,
    kind: str = "patient",
    id_: str = "P1",
    drug: str | None = "INS",
    until: float | None = NOW + 3600,
) -> Command:
    return Command(
        command_id=cid,
        action=action,  # type: ignore[arg-type]
        scope=Scope(kind, id_, drug),  # type: ignore[arg-type]
        effective_from=iso(NOW - 60),
        expires_at=None if until is None else iso(until),
        reason="test",
        rule="repeat_dispensing",
        alert_ids=("alr-1",),
    )


async def test_freeze_is_visible_until_it_expires() -> None:
    registry = MemoryRegistry()
    assert await registry.apply([command("c1")], NOW) == ["applied"]
    found = await registry.lookup("patient", "P1", "INS", now=NOW)
    assert [f.key for f in found] == ["claimstream:freeze:patient:P1:INS"]
    assert found[0].command["command_id"] == "c1"
    assert await registry.lookup("patient", "P1", "OTHER", now=NOW) == []
    assert await registry.lookup("patient", "P1", "INS", now=NOW + 3601) == []


async def test_a_redelivered_command_is_applied_once() -> None:
    registry = MemoryRegistry()
    await registry.apply([command("c1"), command("u1", "UNFREEZE", until=None)], NOW)
    # the freeze arrives again (Kafka redelivery): it must not re-freeze after the unfreeze
    assert await registry.apply([command("c1")], NOW + 1) == ["duplicate"]
    assert await registry.lookup("patient", "P1", "INS", now=NOW + 1) == []


async def test_whole_subject_freeze_answers_for_every_drug() -> None:
    registry = MemoryRegistry()
    await registry.apply([command("c1", kind="institution", id_="H1", drug=None)], NOW)
    found = await registry.lookup("institution", "H1", "ANY", now=NOW)
    assert [f.key for f in found] == ["claimstream:freeze:institution:H1"]


async def test_suspend_never_expires_and_a_shorter_freeze_does_not_replace_it() -> None:
    registry = MemoryRegistry()
    await registry.apply([command("s1", "SUSPEND", until=None)], NOW)
    assert await registry.apply([command("c2", until=NOW + 60)], NOW) == ["superseded"]
    found = await registry.lookup("patient", "P1", "INS", now=NOW + 10 * 86400)
    assert [f.action for f in found] == ["SUSPEND"]


async def test_a_longer_freeze_is_not_shortened() -> None:
    registry = MemoryRegistry()
    await registry.apply([command("c1", until=NOW + 7200)], NOW)
    assert await registry.apply([command("c2", until=NOW + 60)], NOW) == ["superseded"]
    assert await registry.lookup("patient", "P1", "INS", now=NOW + 3600) != []


async def test_an_already_expired_freeze_is_not_stored() -> None:
    registry = MemoryRegistry()
    assert await registry.apply([command("c1", until=NOW - 1)], NOW) == ["expired"]
    assert await registry.active(NOW) == []
