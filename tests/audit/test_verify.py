"""verify(): an intact chain passes; a changed, removed or reordered record is named, and so
is a truncated tail when the head is known; exact copies (redelivery) are counted, not failed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from claimstream.audit import AuditChain, new_state, verify
from claimstream.audit.canonical import digest
from claimstream.audit.keys import HmacKey
from tests.audit.support import checkpoints_of, items, keyed_trail, legacy_trail, ring, trail

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


# --- keys and checkpoints: the four tamperings of issue #12 -----------------------------------


def rehashed(records: Records, start: int) -> Records:
    """Every record of `records[start]`'s chain from `start` on re-linked and re-hashed, as
    someone without the key would (the MACs stay what they were)."""
    chain = (records[start]["partition"], records[start].get("source"))
    previous = None
    for n, r in enumerate(records):
        if (r["partition"], r.get("source")) != chain:
            continue
        if n >= start:
            if previous is not None:
                r["prev_hash"] = previous["hash"]
            r["hash"] = digest(r)
        previous = r
    return records


def forged_after(records: Records, mac: str | None = "0" * 64) -> Records:
    """A record appended to the end of partition 0's chain, hashed and linked correctly."""
    last = [r for r in records if r["partition"] == 0][-1]
    fake = {**last, "seq": last["seq"] + 1, "record_id": "act-forged", "prev_hash": last["hash"]}
    fake["body"] = {"action": "unfreeze", "by": "nobody"}
    fake.pop("mac", None)
    if mac is None:
        fake.pop("key_id", None)
    else:
        fake["mac"] = mac
    fake["hash"] = digest(fake)
    return [*records, fake]


def test_an_untouched_keyed_trail_passes_with_nothing_to_warn_about() -> None:
    records = keyed_trail(partitions=2)
    report = verify(records, keys=ring(), checkpoints=checkpoints_of(records))
    assert report.ok and report.macs_verified == len(records)
    assert report.checkpoints == 2 and report.warnings == []


def test_records_removed_from_the_end_are_named_truncated() -> None:
    records = keyed_trail(partitions=2)
    checkpoints = checkpoints_of(records)
    del records[-2:]  # the last record of each partition
    report = verify(records, keys=ring(), checkpoints=checkpoints)
    problem = report.problem
    assert problem is not None and (problem.kind, problem.partition) == ("truncated", 0)
    assert "records were removed from its end" in problem.detail


def test_a_whole_chain_removed_is_named_dropped() -> None:
    records = keyed_trail(partitions=2)
    checkpoints = checkpoints_of(records)
    report = verify([r for r in records if r["partition"] == 0], checkpoints=checkpoints)
    problem = report.problem
    assert problem is not None and (problem.kind, problem.partition) == ("dropped", 1)


def test_an_edit_that_rehashes_the_rest_is_named_rewritten_at_the_edited_record() -> None:
    records = keyed_trail()
    checkpoints = checkpoints_of(records)
    records[3]["body"]["severity"] = "info"
    report = verify(rehashed(records, 3), keys=ring(), checkpoints=checkpoints)
    problem = report.problem
    assert problem is not None and (problem.kind, problem.position, problem.seq) == (
        "rewritten",
        4,
        3,
    )


def test_without_the_key_a_checkpoint_still_names_a_rehashed_rewrite() -> None:
    records = keyed_trail()
    checkpoints = checkpoints_of(records)
    records[3]["body"]["severity"] = "info"
    report = verify(rehashed(records, 3), checkpoints=checkpoints)
    problem = report.problem
    assert problem is not None and problem.kind == "rewritten"
    assert problem.seq == len(records) - 1  # the signed head: the rewrite is at or before it


def test_the_earliest_contradicted_checkpoint_brackets_a_rewrite() -> None:
    records = keyed_trail()
    early = checkpoints_of(records[:2], at="2026-03-09T00:00:00.000000Z")
    late = checkpoints_of(records[:5], at="2026-03-10T00:00:00.000000Z")
    records[3]["body"]["severity"] = "info"
    problem = verify(rehashed(records, 3), checkpoints=[*early, *late]).problem
    assert problem is not None and (problem.kind, problem.seq) == ("rewritten", 4)
    assert "after seq 1, which the checkpoint of 2026-03-09" in problem.detail


def test_a_record_appended_without_the_key_is_named_forged() -> None:
    records = keyed_trail(partitions=2)
    checkpoints = checkpoints_of(records)
    report = verify(forged_after(records), keys=ring(), checkpoints=checkpoints)
    problem = report.problem
    assert problem is not None and (problem.kind, problem.record_id) == ("forged", "act-forged")


def test_an_unkeyed_record_appended_to_a_keyed_chain_is_forged_even_without_the_key() -> None:
    problem = verify(forged_after(keyed_trail(), mac=None)).problem
    assert problem is not None and problem.kind == "forged"
    assert "no MAC although its chain is keyed" in problem.detail


def test_without_the_key_a_forged_append_is_reported_as_unattested() -> None:
    records = keyed_trail()
    report = verify(forged_after(records), checkpoints=checkpoints_of(records))
    assert report.ok  # nothing can tell it from the writer's without the key...
    assert report.unattested == {"0": 1}  # ...and the report says so
    assert any("no signature vouches for them" in w for w in report.warnings)


def test_a_record_under_a_key_not_in_the_ring_is_forged() -> None:
    records = keyed_trail(key=HmacKey.from_secret(b"x" * 32))
    problem = verify(records, keys=ring()).problem
    assert problem is not None and problem.kind == "forged"
    assert "is not in the HMAC key ring" in problem.detail


def test_records_under_a_rotated_key_verify_with_the_whole_ring() -> None:
    new = b"n" * 32
    old_part = keyed_trail()[:4]
    state = {"partition": 0, "seq": 4, "head": old_part[-1]["hash"], "wm": None, "ids": {}}
    rotated = AuditChain(key=ring(new).current)
    more = [
        rotated.append(state, "manual", f"act-{n}", {}, "2026-03-10T08:00:00+08:00") for n in (1, 2)
    ]
    records = [*old_part, *(r for r in more if r is not None)]
    report = verify(records, keys=ring(new))
    assert report.ok and report.macs_verified == 6
    assert {r["key_id"] for r in records} == set(ring(new).ids)


def test_a_legacy_trail_verifies_with_an_unkeyed_warning() -> None:
    report = verify(legacy_trail())
    assert report.ok and report.unkeyed == len(legacy_trail())
    assert "WARNING: 8 record(s) carry no MAC (unkeyed" in report.render()


def test_a_legacy_prefix_continued_by_keyed_records_verifies() -> None:
    old = legacy_trail()
    state = {"partition": 0, "seq": len(old), "head": old[-1]["hash"], "wm": None, "ids": {}}
    chain = AuditChain(key=ring().current)
    new = chain.append(state, "manual", "act-cut", {}, "2026-03-10T08:00:00+08:00")
    assert new is not None and new["schema"] == "audit.v2"
    report = verify([*old, new], keys=ring(), checkpoints=checkpoints_of([*old, new]))
    assert report.ok and (report.unkeyed, report.macs_verified) == (len(old), 1)
    assert report.warnings == [
        f"{len(old)} record(s) carry no MAC (unkeyed: an audit.v1 trail from before the key, "
        "or a development worker); every one of them is covered by a signed checkpoint"
    ]


def test_require_mac_refuses_an_unkeyed_record() -> None:
    problem = verify(legacy_trail(), require_mac=True).problem
    assert problem is not None and (problem.kind, problem.position) == ("forged", 1)


def test_a_trail_checked_without_checkpoints_says_what_it_cannot_see() -> None:
    report = verify(keyed_trail())
    assert report.ok
    assert any(w.startswith("no checkpoints given") for w in report.warnings)
    assert any(w.startswith("8 MAC(s) not checked") for w in report.warnings)
