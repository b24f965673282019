"""Reading an audit trail back and naming the first place it was tampered with.

Records are checked in the order given (topic or file order), each against the last record of
its chain before it. A chain is a partition (`partition`) or, for the stream's records, a
partition of one audited topic (`partition` and `source`); chains are independent, so the
order between records of different chains does not matter. Then the chains are checked
against the signed checkpoints (`checkpoints`, already verified: `claimstream.audit.checkpoint`)
and against the heads the caller knows (`heads`).

* `malformed`: not an object with the audit fields.
* `changed`: the record's content does not hash to its `hash`; or the link between two
  records is broken although both hash correctly: then the record was altered and rehashed.
  When the successor links to neither, its own `prev_hash` was rewritten and it is named;
  otherwise the predecessor is (its successor was chained to a different version of it).
* `removed`: a sequence number is skipped and never appears (the record after the gap is named,
  with the missing numbers); with `from_genesis` a chain must start at seq 0.
* `reordered`: the record stands where another one belongs: its sequence number is not the
  next one but the next one comes later, or it links to a record that comes later.
* `rewritten` (re-hashed rewrite): the record was changed and it and everything after it
  re-hashed, so the links hold: its MAC does not verify although a checkpoint attests its
  place or a later record of its chain is authentic; or, without the HMAC key, the record at a
  checkpointed head does not have the signed hash (the rewrite is at or before it).
* `forged` (forged append): the record's MAC does not verify (or its key is not in the ring)
  and nothing authentic follows it, beyond what the checkpoints attest; or it carries no MAC
  although its chain is keyed before it (a downgrade), or `require_mac` is set.
* `truncated` (tail truncation): a chain ends before the head a checkpoint attests, or at a
  hash other than the head the caller knows (`heads`).
* `dropped` (a dropped chain): a checkpoint attests records of a chain the trail has none of.

An exact copy of a record already read (same content, same hash) is not tampering: the stream
writes records at least once, and after a crash it recomputes the records of the inputs it had
not committed, identically (same state, same inputs in the same order), so they reach the topic
twice. Such copies are counted as `redelivered` and skipped; they add nothing and hide nothing
(a copy cannot fill a gap or restore a changed record). `strict` turns them into a
`duplicated` problem, for a trail that must not contain any.

What is not checked is said, not hidden (`VerifyReport.warnings`): records without a MAC
(legacy `audit.v1` trails, the unkeyed development mode), MACs not checked because no HMAC key
was given, no checkpoint given (then truncation and dropped chains cannot be seen), records
after the latest checkpoint that no signature or MAC vouches for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from claimstream.audit.canonical import GENESIS, LEGACY_SCHEMA, SCHEMAS, hashed_bytes
from claimstream.audit.checkpoint import Checkpoint, Claim
from claimstream.audit.keys import HmacKeyRing

ProblemKind = Literal[
    "malformed",
    "changed",
    "removed",
    "reordered",
    "duplicated",
    "truncated",
    "dropped",
    "rewritten",
    "forged",
]
_FIELDS = {"partition": int, "seq": int, "kind": str, "record_id": str, "prev_hash": str}
_HEX = frozenset("0123456789abcdef")
#: a chain: (partition, source or None)
Chain = tuple[int, str | None]


def chain_name(chain: Chain) -> str:
    """`3` for a partition's chain, `3/alerts` for a partition of one audited topic."""
    partition, source = chain
    return str(partition) if source is None else f"{partition}/{source}"


def parse_chain_name(name: str) -> Chain:
    partition, _, source = name.partition("/")
    return int(partition), source or None


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
    #: records whose MAC was checked and verified
    macs_verified: int = 0
    #: records that carry a MAC not checked (no HMAC key given)
    macs_unchecked: int = 0
    #: records without a MAC (legacy audit.v1, unkeyed development trail)
    unkeyed: int = 0
    #: checkpoints the trail was checked against, and per chain the strongest claim
    checkpoints: int = 0
    attested: dict[str, Claim] = field(default_factory=dict)
    #: per chain, records after what the checkpoints attest (only with checkpoints)
    unattested: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem is None

    def render(self, unit: str = "record", where: str | None = None) -> str:
        """The verdict on one line, then one `WARNING:` line per thing that was not checked;
        `unit` names a position ("line" for a JSON-lines file)."""
        copies = (
            f"; {len(self.redelivered)} redelivered exact cop"
            + ("y" if len(self.redelivered) == 1 else "ies")
            + " skipped"
            if self.redelivered
            else ""
        )
        if self.problem is not None:
            verdict = (
                f"TAMPERED after {self.records} good record(s){copies}: "
                f"{self.problem.render(unit, where)}"
            )
        else:
            parts = ", ".join(
                f"{name}: seq {h.first_seq}..{h.last_seq} head {h.hash[:16]}"
                for name, h in sorted(self.heads.items(), key=lambda kv: _sort_key(kv[0]))
            )
            label = "partition(s)" if all("/" not in n for n in self.heads) else "chain(s)"
            proof = []
            if self.macs_verified:
                proof.append(f"{self.macs_verified} MAC(s) verified")
            if self.checkpoints:
                latest = max(c.written_at for c in self.attested.values())
                proof.append(f"{self.checkpoints} checkpoint(s) matched, latest {latest}")
            verdict = (
                f"OK: {self.records} record(s) in {len(self.heads)} {label}{copies}"
                + (f"; {'; '.join(proof)}" if proof else "")
                + (f"; {parts}" if parts else "")
            )
        return "\n".join([verdict, *(f"WARNING: {w}" for w in self.warnings)])


def _sort_key(name: str) -> tuple[int, str]:
    partition, _, source = name.partition("/")
    return int(partition), source


def verify(
    records: Iterable[Any],
    *,
    from_genesis: bool = True,
    heads: Mapping[int | str, str] | None = None,
    strict: bool = False,
    keys: HmacKeyRing | None = None,
    checkpoints: Iterable[Checkpoint] | None = None,
    require_mac: bool = False,
) -> VerifyReport:
    """Check `records` in order.

    `heads` maps a chain (partition number, or `chain_name`) to its known head hash; `strict`
    reports exact copies as `duplicated` instead of skipping them; `keys` checks every MAC;
    `checkpoints` (signatures already verified; None: none given) are checked claim by claim;
    `require_mac` refuses records without a MAC."""
    return _Verifier(
        list(records),
        from_genesis=from_genesis,
        strict=strict,
        keys=keys,
        checkpoints=None if checkpoints is None else list(checkpoints),
        require_mac=require_mac,
    ).run(heads or {})


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

    def later_in_chain(self, chain: Chain, position: int) -> list[Mapping[str, Any]]:
        return [self.items[p - 1] for p in self.chains.get(chain, ()) if p > position]

    def seq_later(self, chain: Chain, seq: int, position: int) -> bool:
        return any(p > position for p in self.seqs.get((chain, seq), ()))

    def hash_later(self, value: str, position: int) -> bool:
        return any(p > position for p in self.hashes.get(value, ()))


class _Verifier:
    def __init__(
        self,
        items: list[Any],
        *,
        from_genesis: bool,
        strict: bool,
        keys: HmacKeyRing | None,
        checkpoints: list[Checkpoint] | None,
        require_mac: bool,
    ) -> None:
        self.items = items
        self.from_genesis = from_genesis
        self.strict = strict
        self.keys = keys
        self.checkpoints = checkpoints
        self.require_mac = require_mac
        self.index = _Index(items)
        self.report = VerifyReport()
        self.last: dict[Chain, tuple[Mapping[str, Any], int]] = {}
        self.seen: dict[str, int] = {}
        #: accepted records: (chain, seq) -> (hash, position)
        self.placed: dict[tuple[Chain, int], tuple[str, int]] = {}
        #: chains that had a record with a MAC
        self.keyed: set[Chain] = set()
        #: unkeyed records, by chain: their seqs
        self.unkeyed_seqs: dict[Chain, list[int]] = {}
        #: chain -> the claims of every checkpoint about it, fewest records first
        self.claims: dict[Chain, list[Claim]] = {}
        for checkpoint in checkpoints or ():
            for claim in checkpoint.claims():
                self.claims.setdefault(parse_chain_name(claim.chain), []).append(claim)
        for found in self.claims.values():
            found.sort(key=lambda c: (c.records, c.written_at))
        self.attested = {chain: found[-1].records for chain, found in self.claims.items()}

    def run(self, heads: Mapping[int | str, str]) -> VerifyReport:
        report = self.report
        for position, record in enumerate(self.items, start=1):
            problem = self._check(record, position)
            if problem is not None and problem.kind == "duplicated" and not self.strict:
                report.redelivered.append((position, self.seen[record["hash"]]))
                continue
            if problem is not None:
                report.problem = problem
                report.records = min(report.records, problem.position - 1)
                return report
            self._accept(record, position)
        report.problem = self._check_claims() or self._check_heads(heads)
        self._summarise()
        return report

    def _accept(self, record: Mapping[str, Any], position: int) -> None:
        report = self.report
        chain = _chain(record)
        name = chain_name(chain)
        previous = report.heads.get(name)
        report.heads[name] = Head(
            records=(previous.records if previous else 0) + 1,
            first_seq=previous.first_seq if previous else record["seq"],
            last_seq=record["seq"],
            hash=record["hash"],
        )
        self.last[chain] = (record, position)
        self.seen[record["hash"]] = position
        self.placed[(chain, record["seq"])] = (record["hash"], position)
        report.records += 1

    def _check(self, record: Any, position: int) -> Problem | None:
        why = _malformed(record)
        if why is not None:
            return Problem("malformed", position, None, None, None, why)
        chain = _chain(record)
        partition, seq = record["partition"], record["seq"]

        def problem(kind: ProblemKind, detail: str) -> Problem:
            return Problem(kind, position, partition, seq, record["record_id"], detail, chain[1])

        try:
            content = hashed_bytes(record)
        except ValueError as exc:
            return problem("malformed", f"cannot be encoded canonically: {exc}")
        if hashlib.sha256(content).hexdigest() != record["hash"]:
            return problem("changed", "its content does not match its hash")
        if record["hash"] in self.seen:
            return problem(
                "duplicated", f"an exact copy of the record at {self.seen[record['hash']]}"
            )
        found = self._check_mac(record, content, chain, position)
        if found is not None:
            return problem(*found)
        if chain not in self.last:
            if seq == 0 and record["prev_hash"] != GENESIS:
                return problem("changed", "seq 0 does not start from the genesis hash")
            if self.from_genesis and seq != 0:
                if self.index.seq_later(chain, 0, position):
                    return problem("reordered", "the chain's first record (seq 0) comes later")
                return problem("removed", f"the chain starts at seq {seq}: 0..{seq - 1} missing")
            return None
        previous, previous_position = self.last[chain]
        expected = previous["seq"] + 1
        if seq < expected:
            return problem("reordered", f"seq {seq} comes after seq {previous['seq']}")
        if seq > expected:
            if self.index.seq_later(chain, expected, position):
                return problem("reordered", f"seq {expected} should come before it and comes later")
            missing = f"{expected}" if seq == expected + 1 else f"{expected}..{seq - 1}"
            return problem("removed", f"seq {missing} missing before it")
        if record["prev_hash"] != previous["hash"]:
            if self.index.hash_later(record["prev_hash"], position):
                return problem("reordered", "it links to a record that comes after it")
            following = self.index.next_in_chain(chain, position, record["hash"])
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

    def _check_mac(
        self, record: Mapping[str, Any], content: bytes, chain: Chain, position: int
    ) -> tuple[ProblemKind, str] | None:
        """(kind, detail) when the record's MAC, or its lack of one, gives it away."""
        seq = record["seq"]
        if "mac" not in record or record["schema"] == LEGACY_SCHEMA:
            if chain in self.keyed:
                return "forged", "it carries no MAC although its chain is keyed before it"
            if self.require_mac:
                return "forged", "it carries no MAC (every record must have one)"
            self.report.unkeyed += 1
            self.unkeyed_seqs.setdefault(chain, []).append(seq)
            return None
        self.keyed.add(chain)
        if self.keys is None:
            self.report.macs_unchecked += 1
            return None
        if self._authentic(record, content):
            self.report.macs_verified += 1
            return None
        key = self.keys.get(record["key_id"])
        why = (
            f"its MAC does not verify with {key.key_id}"
            if key is not None
            else f"its key {record['key_id']} is not in the HMAC key ring "
            f"({', '.join(self.keys.ids)})"
        )
        attested = self.attested.get(chain, 0)
        if seq < attested:
            claim = self.claims[chain][-1]
            return "rewritten", (
                f"{why}: it was changed and re-hashed, with what follows it (the checkpoint of "
                f"{claim.written_at} attests this chain up to seq {attested - 1})"
            )
        later = self.index.later_in_chain(chain, position)
        if any(r.get("mac") is not None and self._authentic(r) for r in later):
            return "rewritten", f"{why}: it was changed and re-hashed (a later record is authentic)"
        where = (
            f"after seq {attested - 1}, the latest checkpoint's head" if attested else "unattested"
        )
        return "forged", (
            f"{why}: not written by the trail's writer; appended ({where}), or the tail from "
            f"here rewritten"
        )

    def _authentic(self, record: Mapping[str, Any], content: bytes | None = None) -> bool:
        assert self.keys is not None
        key = self.keys.get(record.get("key_id", ""))
        mac = record.get("mac")
        if key is None or not isinstance(mac, str):
            return False
        try:
            data = hashed_bytes(record) if content is None else content
        except ValueError:
            return False
        return key.check(data, mac)

    def _check_claims(self) -> Problem | None:
        if not self.claims:
            return None
        used = {c.where for found in self.claims.values() for c in found}
        self.report.checkpoints = len(used)
        for chain in sorted(self.claims, key=lambda c: (c[0], c[1] or "")):
            found = self.claims[chain]
            self.report.attested[chain_name(chain)] = found[-1]
            problem = self._check_chain_claims(chain, found)
            if problem is not None:
                return problem
        return None

    def _check_chain_claims(self, chain: Chain, claims: list[Claim]) -> Problem | None:
        name = chain_name(chain)
        head = self.report.heads.get(name)
        partition, source = chain
        if head is None:
            claim = claims[-1]
            return Problem(
                "dropped",
                len(self.items),
                partition,
                None,
                None,
                f"the checkpoint of {claim.written_at} attests {claim.records} record(s) of "
                f"this chain and the trail has none: the whole chain was removed",
                source,
            )
        matched: Claim | None = None
        for claim in claims:
            seq = claim.records - 1
            if head.last_seq < seq:
                last, position = self.last[chain]
                return Problem(
                    "truncated",
                    position,
                    partition,
                    last["seq"],
                    last["record_id"],
                    f"the chain ends at seq {head.last_seq}, but the checkpoint of "
                    f"{claim.written_at} attests {claim.records} record(s) (head "
                    f"{claim.head[:16]} at seq {seq}): records were removed from its end",
                    source,
                )
            placed = self.placed.get((chain, seq))
            if placed is None:  # before the start of a partial trail: nothing to compare
                continue
            value, position = placed
            if value != claim.head:
                record = self.items[position - 1]
                since = (
                    f" (after seq {matched.records - 1}, which the checkpoint of "
                    f"{matched.written_at} attests)"
                    if matched is not None
                    else ""
                )
                return Problem(
                    "rewritten",
                    position,
                    partition,
                    seq,
                    record["record_id"],
                    f"it hashes to {value[:16]}, but the checkpoint of {claim.written_at} "
                    f"signed {claim.head[:16]} for seq {seq}: the chain was changed at or "
                    f"before seq {seq}{since} and re-hashed",
                    source,
                )
            matched = claim
        return None

    def _check_heads(self, heads: Mapping[int | str, str]) -> Problem | None:
        known = {str(k): v for k, v in heads.items()}
        for name, expected in sorted(known.items(), key=lambda kv: _sort_key(kv[0])):
            head = self.report.heads.get(name)
            if head is None or head.hash != expected:
                found = [(c, v) for c, v in self.last.items() if chain_name(c) == name]
                tail, at = found[0][1] if found else (None, len(self.items))
                partition, _, source = name.partition("/")
                return Problem(
                    "truncated",
                    at,
                    int(partition),
                    tail["seq"] if tail else None,
                    tail["record_id"] if tail else None,
                    f"the chain ends at {head.hash[:16] if head else 'nothing'}, "
                    f"not at the known head {expected[:16]}",
                    source or None,
                )
        return None

    def _summarise(self) -> None:
        """What was not checked, as warnings."""
        report = self.report
        if report.problem is not None:
            return
        with_checkpoints = self.checkpoints is not None
        if with_checkpoints:
            for name, head in report.heads.items():
                attested = self.attested.get(parse_chain_name(name), 0)
                beyond = head.last_seq + 1 - max(attested, head.first_seq)
                if beyond > 0:
                    report.unattested[name] = beyond
        if report.unkeyed:
            exposed = sum(
                1
                for chain, seqs in self.unkeyed_seqs.items()
                for seq in seqs
                if seq >= self.attested.get(chain, 0)
            )
            text = (
                f"{report.unkeyed} record(s) carry no MAC (unkeyed: an audit.v1 trail from "
                f"before the key, or a development worker)"
            )
            if exposed:
                text += (
                    f"; {exposed} of them are covered by no checkpoint either, so an edit "
                    f"that re-hashes everything after it would go unnoticed"
                )
            else:
                text += "; every one of them is covered by a signed checkpoint"
            report.warnings.append(text)
        if report.macs_unchecked:
            report.warnings.append(
                f"{report.macs_unchecked} MAC(s) not checked: no HMAC key given "
                f"(--hmac-key-file, CLAIMSTREAM_AUDIT_HMAC_KEY_FILE)"
            )
        if not with_checkpoints:
            report.warnings.append(
                "no checkpoints given (--checkpoints DIR, CLAIMSTREAM_AUDIT_CHECKPOINT_DIR): "
                "records removed from the end of a chain, or a whole chain removed, cannot be "
                "detected"
            )
        elif report.unattested:
            total = sum(report.unattested.values())
            chains = ", ".join(sorted(report.unattested, key=_sort_key)[:5]) + (
                ", ..." if len(report.unattested) > 5 else ""
            )
            vouched = (
                "their MACs verify, but had some been removed from the end nothing would show"
                if not report.macs_unchecked and report.macs_verified
                else "no signature vouches for them"
            )
            report.warnings.append(
                f"{total} record(s) come after what the latest checkpoints attest ({chains}): "
                f"{vouched}"
            )


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
    schema = record.get("schema")
    if schema not in SCHEMAS:
        return f"field 'schema' is not one of {', '.join(SCHEMAS)}"
    source = record.get("source")
    if source is not None and (not isinstance(source, str) or not source or "/" in source):
        return "field 'source' not a name"
    if schema != LEGACY_SCHEMA and ("mac" in record or "key_id" in record):
        mac, key_id = record.get("mac"), record.get("key_id")
        if not isinstance(mac, str) or len(mac) != 64 or not set(mac) <= _HEX:
            return "field 'mac' missing or not an HMAC-SHA-256 hex digest"
        if not isinstance(key_id, str) or not key_id:
            return "field 'key_id' missing or not text"
    return None
