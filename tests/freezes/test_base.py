"""The registry's key scheme: a scope's key is its own, whatever its ids hold."""

from __future__ import annotations

from datetime import UTC, datetime

from claimstream.freezes.base import freeze_key
from claimstream.freezes.memory import MemoryRegistry
from claimstream.model.outputs import Command, Scope

NOW = datetime(2026, 3, 1, tzinfo=UTC).timestamp()


def freeze(scope: Scope) -> Command:
    return Command(
        command_id=f"cmd-{scope.key()}",
        action="FREEZE",
        scope=scope,
        effective_from="2026-02-28T23:00:00+00:00",
        expires_at="2026-03-02T00:00:00+00:00",
        reason="test",
        rule="repeat_dispensing",
        alert_ids=("alr-1",),
    )


def test_keys_of_valid_ids_read_as_documented() -> None:
    assert freeze_key("claimstream", "patient", "PV", "XA10AE04") == (
        "claimstream:freeze:patient:PV:XA10AE04"
    )
    assert freeze_key("claimstream", "institution", "H1") == "claimstream:freeze:institution:H1"


async def test_a_freeze_of_a_patient_for_a_drug_does_not_freeze_a_patient_named_with_a_colon() -> (
    None
):
    registry = MemoryRegistry()
    await registry.apply([freeze(Scope("patient", "PV", "XA10AE04"))], NOW)
    assert await registry.lookup("patient", "PV:XA10AE04", now=NOW) == []
    assert [f.key for f in await registry.lookup("patient", "PV", "XA10AE04", now=NOW)] == [
        "claimstream:freeze:patient:PV:XA10AE04"
    ]


async def test_a_patient_named_with_a_colon_frozen_whole_leaves_the_other_patients_drug() -> None:
    registry = MemoryRegistry()
    await registry.apply([freeze(Scope("patient", "PV:XA10AE04"))], NOW)
    assert await registry.lookup("patient", "PV", "XA10AE04", now=NOW) == []
    (found,) = await registry.lookup("patient", "PV:XA10AE04", now=NOW)
    assert found.key == "claimstream:freeze:patient:PV%3AXA10AE04"
