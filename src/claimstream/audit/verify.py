"""Reading an audit chain back and naming the first record that was tampered with.

Records are checked in the order given (topic or file order), each against the last record of
its partition before it:

* `malformed`: not an object with the audit fields.
* `changed`: the record's content does not hash to its `hash`; or the link between two
  records is broken although both hash correctly: then the record was altered and rehashed.
  When the successor links to neither, its own `prev_hash` was rewritten and it is named;
  otherwise the predecessor is (its successor was chained to a different version of it).
* `removed`: a sequence number is skipped and never appears (the record after the gap is named,
  with the missing numbers); with `from_genesis` a partition must start at seq 0.
* `reordered`: the record stands where another one belongs: its sequence number is not the
  next one but the next one comes later, or it links to a record that comes later.
* `duplicated`: an exact copy of a record already read.
* `truncated`: the partition ends at a hash other than the head the caller knows (`heads`),
  so records were removed from the end, or the last one was changed and rehashed.

The chain alone cannot show a consistent rewrite of everything after some point; `heads`
(the head hashes published elsewhere, e.g. the appender's state) closes that gap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from claimstream.audit.canonical import GENESIS, digest

ProblemKind = Literal["malformed", "changed", "removed", "reordered", "duplicated", "truncated"]
_FIELDS = {"partition": int, "seq": int, "kind": str, "record_id": str, "prev_hash": str}


@dataclass(frozen=True, slots=True)
class Problem:
    kind: ProblemKind
    position: int  # 1-based place in the input (the line number of a JSON-lines file)
    partition: int | None
    seq: int | None
    record_id: str | None
    detail: str

    def render(self, unit: str = "record") -> str:
        where = f"{unit} {self.position}"
        if self.partition is not None:
            where += f" (partition {self.partition}, seq {self.seq}, {self.record_id})"
        return f"{self.kind}: {where}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Head:
    records: int
    first_seq: int
    last_seq: int
    hash: str


@dataclass(slots=True)
class VerifyReport:
    records: int = 0
    heads: dict[int, Head] = field(default_factory=dict)
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def render(self, unit: str = "record") -> str:
        """One line; `unit` names a position ("line" for a JSON-lines file)."""
        if self.problem is not None:
            return f"TAMPERED after {self.records} good record(s): {self.problem.render(unit)}"
        parts = ", ".join(
            f"partition {p}: seq {h.first_seq}..{h.last_seq} head {h.hash[:16]}"
            for p, h in sorted(self.heads.items())
        )
        return f"OK: {self.records} record(s) in {len(self.heads)} partition(s)" + (
            f"; {parts}" if parts else ""
        )


def verify(
    records: Iterable[Any],
    *,
    from_genesis: bool = True,
    heads: Mapping[int, str] | None = None,
) -> VerifyReport:
    items = list(records)
    report = VerifyReport()
    index = _Index(items)
    last: dict[int, tuple[Mapping[str, Any], int]] = {}
    seen: set[str] = set()
    for position, record in enumerate(items, start=1):
        problem = _check(record, position, last, seen, index, from_genesis)
        if problem is not None:
            report.problem = problem
            report.records = min(report.records, problem.position - 1)
            return report
        partition = record["partition"]
        previous = report.heads.get(partition)
        report.heads[partition] = Head(
            records=(previous.records if previous else 0) + 1,
            first_seq=previous.first_seq if previous else record["seq"],
            last_seq=record["seq"],
            hash=record["hash"],
        )
        last[partition] = (record, position)
        seen.add(record["hash"])
        report.records += 1
    for partition, expected in sorted((heads or {}).items()):
        head = report.heads.get(partition)
        if head is None or head.hash != expected:
            tail, at = last.get(partition, (None, len(items)))
            report.problem = Problem(
                "truncated",
                at,
                partition,
                tail["seq"] if tail else None,
                tail["record_id"] if tail else None,
                f"the partition ends at {head.hash[:16] if head else 'nothing'}, "
                f"not at the known head {expected[:16]}",
            )
            break
    return report


class _Index:
    """Where each (partition, seq) and each hash occurs, to tell a gap from a reordering."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self.seqs: dict[tuple[int, int], list[int]] = {}
        self.hashes: dict[str, list[int]] = {}
        self.partitions: dict[int, list[int]] = {}
        for position, record in enumerate(items, start=1):
            if _malformed(record) is None:
                self.seqs.setdefault((record["partition"], record["seq"]), []).append(position)
                self.hashes.setdefault(record["hash"], []).append(position)
                self.partitions.setdefault(record["partition"], []).append(position)

    def next_in_partition(self, partition: int, position: int) -> Mapping[str, Any] | None:
        later = [p for p in self.partitions.get(partition, ()) if p > position]
        return self.items[later[0] - 1] if later else None

    def seq_later(self, partition: int, seq: int, position: int) -> bool:
        return any(p > position for p in self.seqs.get((partition, seq), ()))

    def hash_later(self, value: str, position: int) -> bool:
        return any(p > position for p in self.hashes.get(value, ()))


def _check(
    record: Any,
    position: int,
    last: dict[int, tuple[Mapping[str, Any], int]],
    seen: set[str],
    index: _Index,
    from_genesis: bool,
) -> Problem | None:
    why = _malformed(record)
    if why is not None:
        return Problem("malformed", position, None, None, None, why)
    partition, seq = record["partition"], record["seq"]

    def problem(kind: ProblemKind, detail: str) -> Problem:
        return Problem(kind, position, partition, seq, record["record_id"], detail)

    if record["hash"] in seen:
        return problem("duplicated", "an exact copy of a record read before")
    if digest(record) != record["hash"]:
        return problem("changed", "its content does not match its hash")
    if partition not in last:
        if seq == 0 and record["prev_hash"] != GENESIS:
            return problem("changed", "seq 0 does not start from the genesis hash")
        if from_genesis and seq != 0:
            if index.seq_later(partition, 0, position):
                return problem("reordered", "the partition's first record (seq 0) comes later")
            return problem("removed", f"the partition starts at seq {seq}: 0..{seq - 1} missing")
        return None
    previous, previous_position = last[partition]
    expected = previous["seq"] + 1
    if seq < expected:
        return problem("reordered", f"seq {seq} comes after seq {previous['seq']}")
    if seq > expected:
        if index.seq_later(partition, expected, position):
            return problem("reordered", f"seq {expected} should come before it and comes later")
        missing = f"{expected}" if seq == expected + 1 else f"{expected}..{seq - 1}"
        return problem("removed", f"seq {missing} missing before it")
    if record["prev_hash"] != previous["hash"]:
        if index.hash_later(record["prev_hash"], position):
            return problem("reordered", "it links to a record that comes after it")
        following = index.next_in_partition(partition, position)
        if following is not None and following["prev_hash"] != record["hash"]:
            # its successor does not link to it either: its own link was rewritten
            return problem("changed", "its link to the record before it was rewritten")
        return Problem(
            "changed",
            previous_position,
            partition,
            previous["seq"],
            previous["record_id"],
            f"the next record (seq {seq}) was chained to a different version of it",
        )
    return None


def _malformed(record: Any) -> str | None:
    if not isinstance(record, Mapping):
        return "not a JSON object"
    for name, kind in _FIELDS.items():
        value = record.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            return f"field {name!r} missing or not {kind.__name__}"
    value = record.get("hash")
    if not isinstance(value, str) or len(value) != 64:
        return "field 'hash' missing or not a SHA-256 hex digest"
    return None
