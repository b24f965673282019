"""Reading an audit chain back and naming the first record that was tampered with.

Records are checked in the order given (topic or file order), each against the last record of
its chain before it. A chain is a partition (`partition`) or, for the stream's records, a
partition of one audited topic (`partition` and `source`); chains are independent, so the
order between records of different chains does not matter.

* `malformed`: not an object with the audit fields.
* `changed`: the record's content does not hash to its `hash`; or the link between two
  records is broken although both hash correctly: then the record was altered and rehashed.
  When the successor links to neither, its own `prev_hash` was rewritten and it is named;
  otherwise the predecessor is (its successor was chained to a different version of it).
* `removed`: a sequence number is skipped and never appears (the record after the gap is named,
  with the missing numbers); with `from_genesis` a chain must start at seq 0.
* `reordered`: the record stands where another one belongs: its sequence number is not the
  next one but the next one comes later, or it links to a record that comes later.
* `truncated`: the chain ends at a hash other than the head the caller knows (`heads`), so
  records were removed from the end, or the last one was changed and rehashed.

An exact copy of a record already read (same content, same hash) is not tampering: the stream
writes records at least once, and after a crash it recomputes the records of the inputs it had
not committed, identically (same state, same inputs in the same order), so they reach the topic
twice. Such copies are counted as `redelivered` and skipped; they add nothing and hide nothing
(a copy cannot fill a gap or restore a changed record). `strict` turns them into a
`duplicated` problem, for a trail that must not contain any.

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
#: a chain: (partition, source or None)
Chain = tuple[int, str | None]


def chain_name(chain: Chain) -> str:
    """`3` for a partition's chain, `3/alerts` for a partition of one audited topic."""
    partition, source = chain
    return str(partition) if source is None else f"{partition}/{source}"


@dataclass(frozen=True, slots=True)
class Problem:
    kind: ProblemKind
    position: int  # 1-based place in the input (the line number of a JSON-lines file)
    partition: int | None
    seq: int | None
    record_id: str | None
    detail: str
    source: str | None = None

    @property
    def chain(self) -> str | None:
        return None if self.partition is None else chain_name((self.partition, self.source))

    def render(self, unit: str = "record", where: str | None = None) -> str:
        """One line; `where` replaces "`unit` `position`" (e.g. a topic partition and offset)."""
        text = where or f"{unit} {self.position}"
        if self.partition is not None:
            label = "partition" if self.source is None else "chain"
            text += f" ({label} {self.chain}, seq {self.seq}, {self.record_id})"
        return f"{self.kind}: {text}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Head:
    records: int
    first_seq: int
    last_seq: int
    hash: str


@dataclass(slots=True)
class VerifyReport:
    records: int = 0
    #: chain name (`chain_name`) -> its last record
    heads: dict[str, Head] = field(default_factory=dict)
    problem: Problem | None = None
    #: exact copies skipped: (position of the copy, position of the record it copies)
    redelivered: list[tuple[int, int]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def render(self, unit: str = "record", where: str | None = None) -> str:
        """One line; `unit` names a position ("line" for a JSON-lines file)."""
        copies = (
            f"; {len(self.redelivered)} redelivered exact cop"
            + ("y" if len(self.redelivered) == 1 else "ies")
            + " skipped"
            if self.redelivered
            else ""
        )
        if self.problem is not None:
            return (
                f"TAMPERED after {self.records} good record(s){copies}: "
                f"{self.problem.render(unit, where)}"
            )
        parts = ", ".join(
            f"{name}: seq {h.first_seq}..{h.last_seq} head {h.hash[:16]}"
            for name, h in sorted(self.heads.items(), key=lambda kv: _sort_key(kv[0]))
        )
        label = "partition(s)" if all("/" not in n for n in self.heads) else "chain(s)"
        return f"OK: {self.records} record(s) in {len(self.heads)} {label}{copies}" + (
            f"; {parts}" if parts else ""
        )


def _sort_key(name: str) -> tuple[int, str]:
    partition, _, source = name.partition("/")
    return int(partition), source


def verify(
    records: Iterable[Any],
    *,
    from_genesis: bool = True,
    heads: Mapping[int | str, str] | None = None,
    strict: bool = False,
) -> VerifyReport:
    """Check `records` in order; `heads` maps a chain (partition number, or `chain_name`) to
    its known head hash; `strict` reports exact copies as `duplicated` instead of skipping."""
    items = list(records)
    report = VerifyReport()
    index = _Index(items)
    last: dict[Chain, tuple[Mapping[str, Any], int]] = {}
    seen: dict[str, int] = {}
    for position, record in enumerate(items, start=1):
        problem = _check(record, position, last, seen, index, from_genesis)
        if problem is not None and problem.kind == "duplicated" and not strict:
            report.redelivered.append((position, seen[record["hash"]]))
            continue
        if problem is not None:
            report.problem = problem
            report.records = min(report.records, problem.position - 1)
            return report
        chain = _chain(record)
        name = chain_name(chain)
        previous = report.heads.get(name)
        report.heads[name] = Head(
            records=(previous.records if previous else 0) + 1,
            first_seq=previous.first_seq if previous else record["seq"],
            last_seq=record["seq"],
            hash=record["hash"],
        )
        last[chain] = (record, position)
        seen[record["hash"]] = position
        report.records += 1
    known = {str(k): v for k, v in (heads or {}).items()}
    for name, expected in sorted(known.items(), key=lambda kv: _sort_key(kv[0])):
        head = report.heads.get(name)
        if head is None or head.hash != expected:
            found = [(c, v) for c, v in last.items() if chain_name(c) == name]
            tail, at = found[0][1] if found else (None, len(items))
            partition, _, source = name.partition("/")
            report.problem = Problem(
                "truncated",
                at,
                int(partition),
                tail["seq"] if tail else None,
                tail["record_id"] if tail else None,
                f"the chain ends at {head.hash[:16] if head else 'nothing'}, "
                f"not at the known head {expected[:16]}",
                source or None,
            )
            break
    return report


def _chain(record: Mapping[str, Any]) -> Chain:
    source = record.get("source")
    return record["partition"], source if isinstance(source, str) else None


class _Index:
    """Where each (chain, seq) and each hash occurs, to tell a gap from a reordering."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self.seqs: dict[tuple[Chain, int], list[int]] = {}
        self.hashes: dict[str, list[int]] = {}
        self.chains: dict[Chain, list[int]] = {}
        for position, record in enumerate(items, start=1):
            if _malformed(record) is None:
                chain = _chain(record)
                self.seqs.setdefault((chain, record["seq"]), []).append(position)
                self.hashes.setdefault(record["hash"], []).append(position)
                self.chains.setdefault(chain, []).append(position)

    def next_in_chain(self, chain: Chain, position: int, not_hash: str) -> Mapping[str, Any] | None:
        """The next record of the chain after `position` that is not a copy of `not_hash`."""
        for p in self.chains.get(chain, ()):
            if p > position and self.items[p - 1]["hash"] != not_hash:
                record: Mapping[str, Any] = self.items[p - 1]
                return record
        return None

    def seq_later(self, chain: Chain, seq: int, position: int) -> bool:
        return any(p > position for p in self.seqs.get((chain, seq), ()))

    def hash_later(self, value: str, position: int) -> bool:
        return any(p > position for p in self.hashes.get(value, ()))


def _check(
    record: Any,
    position: int,
    last: dict[Chain, tuple[Mapping[str, Any], int]],
    seen: Mapping[str, int],
    index: _Index,
    from_genesis: bool,
) -> Problem | None:
    why = _malformed(record)
    if why is not None:
        return Problem("malformed", position, None, None, None, why)
    chain = _chain(record)
    partition, seq = record["partition"], record["seq"]

    def problem(kind: ProblemKind, detail: str) -> Problem:
        return Problem(kind, position, partition, seq, record["record_id"], detail, chain[1])

    if digest(record) != record["hash"]:
        return problem("changed", "its content does not match its hash")
    if record["hash"] in seen:
        return problem("duplicated", f"an exact copy of the record at {seen[record['hash']]}")
    if chain not in last:
        if seq == 0 and record["prev_hash"] != GENESIS:
            return problem("changed", "seq 0 does not start from the genesis hash")
        if from_genesis and seq != 0:
            if index.seq_later(chain, 0, position):
                return problem("reordered", "the chain's first record (seq 0) comes later")
            return problem("removed", f"the chain starts at seq {seq}: 0..{seq - 1} missing")
        return None
    previous, previous_position = last[chain]
    expected = previous["seq"] + 1
    if seq < expected:
        return problem("reordered", f"seq {seq} comes after seq {previous['seq']}")
    if seq > expected:
        if index.seq_later(chain, expected, position):
            return problem("reordered", f"seq {expected} should come before it and comes later")
        missing = f"{expected}" if seq == expected + 1 else f"{expected}..{seq - 1}"
        return problem("removed", f"seq {missing} missing before it")
    if record["prev_hash"] != previous["hash"]:
        if index.hash_later(record["prev_hash"], position):
            return problem("reordered", "it links to a record that comes after it")
        following = index.next_in_chain(chain, position, record["hash"])
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
            chain[1],
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
    source = record.get("source")
    if source is not None and (not isinstance(source, str) or not source or "/" in source):
        return "field 'source' not a name"
    return None
