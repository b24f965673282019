"""verify(): an intact chain passes; a changed, removed, reordered or duplicated record is
named, and so is a truncated tail when the head is known."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from claimstream.audit import verify
from claimstream.audit.canonical import digest
from tests.audit.support import trail

Records = list[dict[str, Any]]


def altered(records: Records) -> Records:
    records[3]["body"]["severity"] = "info"  # hash left as it was
    return records


def altered_and_rehashed(records: Records) -> Records:
    records[3]["body"]["severity"] = "info"
    records[3]["hash"] = digest(records[3])  # the next record still points at the original
    return records


def relinked(records: Records) -> Records:
    records[3]["prev_hash"] = "f" * 64
    records[3]["hash"] = digest(records[3])
    return records


def removed(records: Records) -> Records:
    del records[3]
    return records


def removed_two(records: Records) -> Records:
    del records[3:5]
    return records


def removed_first(records: Records) -> Records:
    del records[0]
    return records


def swapped(records: Records) -> Records:
    records[3], records[4] = records[4], records[3]
    return records


def moved_to_the_end(records: Records) -> Records:
    records.append(records.pop(2))
    return records


def duplicated(records: Records) -> Records:
    records.insert(4, dict(records[3]))
    return records


def not_an_object(records: Records) -> Records:
    records[3] = None  # type: ignore[call-overload]
    return records


# (tampering, problem kind, 1-based position named, seq named)
CASES: list[tuple[Callable[[Records], Records], str, int, int | None]] = [
    (altered, "changed", 4, 3),
    (altered_and_rehashed, "changed", 4, 3),
    (relinked, "changed", 4, 3),
    (removed, "removed", 4, 4),
    (removed_two, "removed", 4, 5),
    (removed_first, "removed", 1, 1),
    (swapped, "reordered", 4, 4),
    (moved_to_the_end, "reordered", 3, 3),
    (duplicated, "duplicated", 5, 3),
    (not_an_object, "malformed", 4, None),
]


def test_an_intact_chain_passes() -> None:
    report = verify(trail())
    assert report.ok and report.records == len(trail())
    assert report.render().startswith("OK: ")


@pytest.mark.parametrize(
    ("tamper", "kind", "position", "seq"), CASES, ids=[c[0].__name__ for c in CASES]
)
def test_tampering_is_caught_and_the_first_tampered_record_named(
    tamper: Callable[[Records], Records], kind: str, position: int, seq: int | None
) -> None:
    report = verify(tamper(trail()))
    assert not report.ok and report.problem is not None
    assert (report.problem.kind, report.problem.position, report.problem.seq) == (
        kind,
        position,
        seq,
    )
    assert report.records == position - 1  # everything before it checked out
    assert "TAMPERED" in report.render()


def test_partitions_are_chained_independently() -> None:
    records = trail(partitions=3)
    assert verify(records).ok
    assert verify(sorted(records, key=lambda r: (r["partition"], r["seq"]))).ok
    tampered = [r for r in records if not (r["partition"] == 1 and r["seq"] == 1)]
    problem = verify(tampered).problem
    assert problem is not None and (problem.kind, problem.partition) == ("removed", 1)


def test_a_partial_export_may_start_mid_chain() -> None:
    tail = trail()[3:]
    assert not verify(tail).ok
    assert verify(tail, from_genesis=False).ok


def test_a_known_head_catches_records_removed_from_the_end() -> None:
    records = trail()
    head = records[-1]["hash"]
    assert verify(records, heads={0: head}).ok
    report = verify(records[:-2], heads={0: head})
    assert report.problem is not None and report.problem.kind == "truncated"
    assert report.problem.seq == len(records) - 3  # the last record still there
    assert verify(records[:-2]).ok  # without the head the chain alone cannot tell
