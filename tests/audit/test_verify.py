"""verify(): an intact chain passes; a changed, removed or reordered record is named, and so
is a truncated tail when the head is known; exact copies (redelivery) are counted, not failed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from claimstream.audit import AuditChain, new_state, verify
from claimstream.audit.canonical import digest
from tests.audit.support import items, trail

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


def test_an_exact_copy_is_redelivery_not_tampering() -> None:
    report = verify(duplicated(trail()))
    assert report.ok and report.redelivered == [(5, 4)]
    assert report.records == len(trail())
    assert "1 redelivered exact copy skipped" in report.render()
    strict = verify(duplicated(trail()), strict=True)
    assert strict.problem is not None
    assert (strict.problem.kind, strict.problem.position, strict.problem.seq) == (
        "duplicated",
        5,
        3,
    )


def test_a_recomputed_tail_after_a_crash_passes() -> None:
    """The records of an uncommitted batch written again, identically, after the originals."""
    records = trail()
    replayed = [*records[:6], *(dict(r) for r in records[3:6]), *records[6:]]
    report = verify(replayed)
    assert report.ok and [c for c, _ in report.redelivered] == [7, 8, 9]
    # a copy cannot stand in for a removed record
    assert not verify([*records[:3], *records[2:3], *records[4:]]).ok


def test_a_changed_copy_is_still_caught() -> None:
    records = trail()
    copy = dict(records[3], body={**records[3]["body"], "severity": "info"})
    report = verify([*records[:5], copy, *records[5:]])
    assert report.problem is not None and report.problem.kind == "changed"
    assert report.problem.position == 6


def stream_trail() -> list[dict[str, Any]]:
    """Two sources in one partition, chained separately and interleaved."""
    chain = AuditChain(dedup_days=None)
    states = {s: new_state(0, s) for s in ("alerts", "commands")}
    out = []
    for n, item in enumerate(items()):
        source = "alerts" if n % 2 else "commands"
        record = chain.record(states[source], item, origin={"topic": source, "offset": n})
        assert record is not None
        out.append(record)
    return out


def test_sources_of_one_partition_are_chained_independently() -> None:
    records = stream_trail()
    report = verify(records)
    assert report.ok and sorted(report.heads) == ["0/alerts", "0/commands"]
    assert "in 2 chain(s)" in report.render()
    head = report.heads["0/alerts"].hash
    assert verify(records, heads={"0/alerts": head}).ok
    assert not verify(records[:-1], heads={"0/alerts": records[-1]["hash"]}).ok
    del records[2]  # seq 1 of the commands chain
    problem = verify(records).problem
    assert problem is not None and (problem.kind, problem.chain) == ("removed", "0/commands")
    assert "chain 0/commands, seq 2" in problem.render()
