from __future__ import annotations

import random
import time
from datetime import UTC, datetime

import pytest

from claimstream.freezes.base import FreezeRegistry
from claimstream.freezes.memory import MemoryRegistry
from claimstream.model.outputs import Command, Scope
from claimstream.sanctions.ledger import FreezeLedger, compare

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


async def test_an_unfreeze_dated_before_a_freeze_began_does_not_lift_it() -> None:
    registry = MemoryRegistry()
    freeze = command("f1", until=NOW + 3600)  # effective NOW - 60
    late = Command(
        "u-late", "UNFREEZE", freeze.scope, iso(NOW - 3600), None, "expiry", "escalation", ()
    )
    await registry.apply([freeze], NOW)
    assert await registry.apply([late], NOW) == ["superseded"]
    assert [f.command["command_id"] for f in await registry.active(NOW)] == ["f1"]


# -- the contract: the registry holds what the ledger of the same commands says is in force ----
#
# Shared with tests/integration/test_registry_redis.py, which runs it against a real
# redis-server. Times are relative to the wall clock because Redis expires keys by it.

DAY = 86_400.0
SCOPES = (
    Scope("institution", "H1"),
    Scope("patient", "P1", "INS"),
    Scope("patient", "P1"),
)
Step = list[Command]  # one `apply` call


def contract_command(
    name: str, action: str, start: float, end: float | None = None, scope: Scope = SCOPES[0]
) -> Command:
    """A command of `scope`, times in days from `base` (set by `contract_sequences`)."""
    return Command(
        command_id=f"cmd-{name}",
        action=action,  # type: ignore[arg-type]
        scope=scope,
        effective_from=iso(_base + start * DAY),
        expires_at=None if end is None else iso(_base + end * DAY),
        reason="contract",
        rule="contract",
        alert_ids=(),
    )


_base = float(int(time.time()))


def named_sequences() -> dict[str, list[Step]]:
    """Sequences of `apply` calls with a name; applied at `_base` (now), days relative to it."""
    c = contract_command
    return {
        "freeze in force": [[c("f", "FREEZE", -0.5, 0.5)]],
        "freeze expired before it arrived": [[c("f", "FREEZE", -2, -1)]],
        "freeze not yet in force": [[c("f", "FREEZE", 0.5, 1)]],
        "unfreeze lifts it": [[c("f", "FREEZE", -1, 1)], [c("u", "UNFREEZE", -0.5)]],
        # the race: the UNFREEZE of yesterday's freeze, dated midnight, reaches the topic after
        # this morning's FREEZE: it must not lift this morning's
        "late unfreeze does not lift a later freeze": [
            [c("f-today", "FREEZE", -0.25, 0.5)],
            [c("u-midnight", "UNFREEZE", -0.5)],
        ],
        "late unfreeze in the same batch": [
            [c("f-today", "FREEZE", -0.25, 0.5), c("u-midnight", "UNFREEZE", -0.5)]
        ],
        "unfreeze at the very moment the freeze began lifts it": [
            [c("f", "FREEZE", -0.25, 0.5)],
            [c("u", "UNFREEZE", -0.25)],
        ],
        "redelivered freeze after the unfreeze": [
            [c("f", "FREEZE", -1, 1)],
            [c("u", "UNFREEZE", -0.5)],
            [c("f", "FREEZE", -1, 1)],
        ],
        "redelivered unfreeze after a new freeze": [
            [c("u", "UNFREEZE", -1)],
            [c("f", "FREEZE", -0.5, 1)],
            [c("u", "UNFREEZE", -1)],
        ],
        "redelivery inside one batch": [[c("f", "FREEZE", -1, 1), c("f", "FREEZE", -1, 1)]],
        "shorter freeze does not shorten a longer": [
            [c("long", "FREEZE", -1, 2)],
            [c("short", "FREEZE", -0.5, 0.5)],
        ],
        "longer freeze extends a shorter": [
            [c("short", "FREEZE", -1, 0.5)],
            [c("long", "FREEZE", -0.5, 2)],
        ],
        "freeze does not lift a suspension": [
            [c("s", "SUSPEND", -2)],
            [c("f", "FREEZE", -1, 3)],
        ],
        "suspension replaces a freeze": [[c("f", "FREEZE", -1, 3)], [c("s", "SUSPEND", -0.5)]],
        "a person lifts a suspension": [[c("s", "SUSPEND", -2)], [c("u", "UNFREEZE", -1)]],
        "drug and whole-subject scopes are separate keys": [
            [
                c("d", "FREEZE", -1, 1, SCOPES[1]),
                c("w", "SUSPEND", -1, scope=SCOPES[2]),
                c("u", "UNFREEZE", -0.5, scope=SCOPES[2]),
            ]
        ],
    }


def random_sequences(count: int, seed: int = 5) -> list[list[Step]]:
    """Random command sequences over three scopes, with redeliveries and random batching."""
    rng = random.Random(seed)
    out: list[list[Step]] = []
    for n in range(count):
        commands: list[Command] = []
        for i in range(rng.randint(1, 9)):
            if commands and rng.random() < 0.2:
                commands.append(rng.choice(commands))  # redelivery
                continue
            scope = rng.choice(SCOPES)
            start = rng.randint(-12, 4) / 4
            action = rng.choices(("FREEZE", "UNFREEZE", "SUSPEND"), (6, 3, 1))[0]
            end = start + rng.randint(1, 12) / 4 if action == "FREEZE" else None
            commands.append(contract_command(f"{n}-{i}", action, start, end, scope))
        steps: list[Step] = []
        while commands:
            size = rng.randint(1, 3)
            steps.append(commands[:size])
            commands = commands[size:]
        out.append(steps)
    return out


async def check_against_ledger(
    registry: FreezeRegistry, steps: list[Step], later: tuple[float, ...] = ()
) -> None:
    """Apply `steps` to `registry` at `_base` and assert it holds what the ledger holds, then
    and `later` (days after; only for a registry whose clock the test drives)."""
    ledger = FreezeLedger()
    for step in steps:
        outcomes = await registry.apply(step, _base)
        ledgered = [ledger.apply(c) for c in step]
        # what is in force must agree; outcomes may differ where only expired entries do (the
        # registry does not keep a result that expired already, the ledger does), but a
        # redelivery is one for both
        assert [o == "duplicate" for o in outcomes] == [o == "duplicate" for o in ledgered]
    for now in (_base, *(_base + d * DAY for d in later)):
        expected = ledger.active(now)
        held = [f.command for f in await registry.active(now)]
        agreement = compare(expected, held)
        assert agreement.ok, (agreement, [c.command_id for c in expected.values()], held)
        for scope in SCOPES:
            found = await registry.lookup(scope.kind, scope.id, scope.drug_code, now=now)
            assert [f.command["command_id"] for f in found] == [
                c.command_id for c in ledger.lookup(scope, now)
            ]


@pytest.mark.parametrize("name", list(named_sequences()))
async def test_memory_registry_equals_the_ledger(name: str) -> None:
    await check_against_ledger(MemoryRegistry(), named_sequences()[name], (0.3, 1, 2.5, 400))


async def test_memory_registry_equals_the_ledger_on_random_sequences() -> None:
    for steps in random_sequences(400):
        await check_against_ledger(MemoryRegistry(), steps, (0.3, 1, 2.5, 400))


async def test_a_suspension_never_expires() -> None:
    registry = MemoryRegistry()
    await registry.apply([contract_command("s", "SUSPEND", -1)], _base)
    later = _base + 3 * 365 * DAY
    assert [f.action for f in await registry.active(later)] == ["SUSPEND"]


async def test_a_late_earlier_freeze_does_not_lift_a_later_suspension() -> None:
    c = contract_command
    registry = MemoryRegistry()
    await registry.apply([c("s-today", "SUSPEND", -0.5)], _base)
    await registry.apply([c("f-yesterday", "FREEZE", -1.5, 1)], _base)  # arrives late
    assert [f.action for f in await registry.active(_base)] == ["SUSPEND"]
