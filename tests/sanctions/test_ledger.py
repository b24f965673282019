"""FreezeLedger: which freezes are in force, from the commands alone, as the registry keeps them."""

from __future__ import annotations

import pytest

from claimstream.model.outputs import Command, Scope
from claimstream.sanctions import FreezeLedger, compare
from tests.sanctions.support import at, ts

INST = Scope("institution", "H1")


def cmd(
    name: str,
    action: str,
    start: float,
    end: float | None = None,
    scope: Scope = INST,
) -> Command:
    return Command(
        command_id=f"cmd-{name}",
        action=action,  # type: ignore[arg-type]
        scope=scope,
        effective_from=at(start),
        expires_at=None if end is None else at(end),
        reason="test",
        rule="test",
        alert_ids=(),
    )


# (commands in topic order, day asked, command ids in force for H1)
CASES = [
    ([cmd("f", "FREEZE", 0, 1)], 0.5, ["cmd-f"]),
    ([cmd("f", "FREEZE", 0, 1)], 1.0, []),  # expired at its expires_at
    ([cmd("f", "FREEZE", 0, 1)], -0.1, []),  # not effective yet
    ([cmd("f", "FREEZE", 0, 1), cmd("u", "UNFREEZE", 0.2)], 0.5, []),
    ([cmd("s", "SUSPEND", 0), cmd("f", "FREEZE", 1, 2)], 3, ["cmd-s"]),  # FREEZE can't lift it
    ([cmd("s", "SUSPEND", 0)], 900, ["cmd-s"]),  # no expiry
    ([cmd("s", "SUSPEND", 0), cmd("u", "UNFREEZE", 5)], 6, []),  # a person lifted it
    ([cmd("long", "FREEZE", 0, 5), cmd("short", "FREEZE", 1, 2)], 3, ["cmd-long"]),
    ([cmd("short", "FREEZE", 0, 2), cmd("long", "FREEZE", 1, 5)], 3, ["cmd-long"]),
    ([cmd("old", "FREEZE", 0, 1), cmd("new", "FREEZE", 2, 3)], 2.5, ["cmd-new"]),
    ([cmd("f", "FREEZE", 0, 1), cmd("s", "SUSPEND", 0.5)], 2, ["cmd-s"]),
    # an UNFREEZE dated before a freeze began (it reached the topic late) does not lift it
    ([cmd("f", "FREEZE", 1, 2), cmd("u", "UNFREEZE", 0.7)], 1.5, ["cmd-f"]),
    ([cmd("f", "FREEZE", 1, 2), cmd("u", "UNFREEZE", 1)], 1.5, []),
    # an UNFREEZE seen again (redelivery) does not lift a later freeze
    ([cmd("u", "UNFREEZE", 0), cmd("f", "FREEZE", 1, 3), cmd("u", "UNFREEZE", 0)], 2, ["cmd-f"]),
    # a FREEZE dated before the entry held (it reached the topic late) never lifts a later
    # SUSPEND nor shortens a later, longer FREEZE; one lasting longer than the held one wins
    ([cmd("s", "SUSPEND", 1), cmd("f", "FREEZE", 0, 2)], 1.5, ["cmd-s"]),
    ([cmd("s", "SUSPEND", 1), cmd("f", "FREEZE", 0, 2)], 3, ["cmd-s"]),
    ([cmd("later", "FREEZE", 1, 3), cmd("early", "FREEZE", 0, 2)], 2.5, ["cmd-later"]),
    ([cmd("later", "FREEZE", 1, 2), cmd("early", "FREEZE", 0, 3)], 2.5, ["cmd-early"]),
]


@pytest.mark.parametrize(("commands", "day", "active"), CASES)
def test_what_is_in_force(commands: list[Command], day: float, active: list[str]) -> None:
    ledger = FreezeLedger.rebuild(commands)
    assert [c.command_id for c in ledger.lookup(INST, ts(day))] == active


def test_rebuild_from_the_topics_json_gives_the_same_ledger() -> None:
    commands = [
        cmd("f", "FREEZE", 0, 1),
        cmd("d", "FREEZE", 0, 30, Scope("patient", "P1", "INS")),
        cmd("s", "SUSPEND", 0.5, scope=Scope("doctor", "D1")),
    ]
    from_objects = FreezeLedger.rebuild(commands)
    from_json = FreezeLedger.rebuild(c.to_dict() for c in commands)
    assert from_objects.active(ts(0.7)) == from_json.active(ts(0.7))
    assert list(from_json.active(ts(0.7))) == [
        "doctor:D1",
        "institution:H1",
        "patient:P1:INS",
    ]


def test_a_drug_lookup_sees_the_whole_subject_and_the_drug() -> None:
    ledger = FreezeLedger.rebuild(
        [
            cmd("d", "FREEZE", 0, 30, Scope("patient", "P1", "INS")),
            cmd("s", "SUSPEND", 1, scope=Scope("patient", "P1")),
        ]
    )
    found = ledger.lookup(Scope("patient", "P1", "INS"), ts(2))
    assert [c.command_id for c in found] == ["cmd-s", "cmd-d"]
    assert [c.command_id for c in ledger.lookup(Scope("patient", "P1", "OTHER"), ts(2))] == [
        "cmd-s"
    ]


def test_each_command_applies_once() -> None:
    ledger = FreezeLedger()
    assert ledger.apply(cmd("f", "FREEZE", 0, 1)) == "applied"
    assert ledger.apply(cmd("f", "FREEZE", 0, 1)) == "duplicate"
    assert ledger.apply(cmd("g", "FREEZE", 0, 0.5)) == "superseded"


def test_prune_forgets_expired_entries_and_old_ids() -> None:
    ledger = FreezeLedger.rebuild([cmd("f", "FREEZE", 0, 1), cmd("s", "SUSPEND", 0)])
    ledger.prune(ts(40), keep_ids_seconds=30 * 86_400)
    assert list(ledger.entries) == ["institution:H1"] and ledger.applied == {}


def test_compare_names_every_disagreement() -> None:
    ledger = FreezeLedger.rebuild(
        [
            cmd("a", "FREEZE", 0, 2, Scope("institution", "H1")),
            cmd("b", "FREEZE", 0, 2, Scope("institution", "H2")),
            cmd("c", "SUSPEND", 0, scope=Scope("doctor", "D1")),
        ]
    )
    registry = [
        cmd("a", "FREEZE", 0, 2, Scope("institution", "H1")).to_dict(),
        cmd("x", "SUSPEND", 0, scope=Scope("doctor", "D1")).to_dict(),
        cmd("y", "FREEZE", 0, 2, Scope("patient", "P9")).to_dict(),
    ]
    agreement = compare(ledger.active(ts(1)), registry)
    assert not agreement.ok
    assert agreement.missing == ("institution:H2",)
    assert agreement.unexpected == ("patient:P9",)
    assert agreement.different == ("doctor:D1",)
    assert compare(ledger.active(ts(1)), [c.to_dict() for c in ledger.active(ts(1)).values()]).ok
