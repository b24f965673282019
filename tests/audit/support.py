"""A small audit trail made of real outputs: alerts and commands of a replay, a review, an
unfreeze, over two partitions."""

from __future__ import annotations

from typing import Any

from claimstream.audit import AuditChain, new_state
from claimstream.model.outputs import Scope
from claimstream.sanctions import ManualUnfreeze, Verdict
from claimstream.testing import dispense, run


def items() -> list[Any]:
    result = run(
        [
            dispense("a", 0, inst="H1"),
            dispense("b", 48, inst="H2"),
            dispense("c", 96, inst="H3"),
            dispense("d", 30 * 24, inst="H4", drug="MET"),
            dispense("e", 31 * 24, inst="H5", drug="MET"),
        ]
    )
    alert = result.alerts[0]
    review = Verdict(alert.alert_id, "confirmed", "li.reviewer", "2026-03-09T10:00:00+08:00")
    lift = ManualUnfreeze(
        Scope("patient", "P1", "INS"), "appeal upheld", "wang", "2026-03-09T11:00:00+08:00"
    )
    return [*result.alerts, *result.commands, review, lift]


def trail(partitions: int = 1) -> list[dict[str, Any]]:
    chain = AuditChain()
    states = [new_state(p) for p in range(partitions)]
    records = []
    for n, item in enumerate(items()):
        record = chain.record(states[n % partitions], item)
        assert record is not None
        records.append(record)
    return records
