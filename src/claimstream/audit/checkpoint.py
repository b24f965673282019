"""Signed checkpoints: the heads of a partition's chains at a moment, kept outside Kafka.

A checkpoint (one JSON document, schema `audit-checkpoint.v1`):

    {"schema": "audit-checkpoint.v1", "partition": 3, "written_at": "2026-03-01T01:12:00.123456Z",
     "chains": {"3/alerts": {"records": 42, "head": "<hash of seq 41>"}, "3/commands": {...}},
     "key_id": "ed25519-<16 hex>", "signature": "<base64 Ed25519 signature>"}

`signature` is over the RFC 8785 encoding of every other field. `records` is the number of
records of the chain up to and including `head` (seq 0..records-1). Whoever holds the public
key can check that the trail still contains that head at that place: a chain ending earlier
was truncated, a chain missing was dropped, a different hash there was rewritten and re-hashed
(`claimstream.audit.verify`).

`Checkpointer` is what the stream's audit agent calls after storing a batch's chain states:
it remembers each partition's heads and writes a checkpoint for a partition whose heads changed
when its last one is `interval` seconds old (wall time); `flush` writes what is pending (from a
timer, and with `force` at shutdown). A checkpoint only ever names heads of records the agent
has already delivered (it is called after delivery and after the state is stored). A store that
fails (disk full) is logged and retried at the next call: the trail itself goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from claimstream.audit.canonical import jcs
from claimstream.audit.keys import PublicKeys, Signer
from claimstream.audit.store import CheckpointStore

log = logging.getLogger(__name__)
CHECKPOINT_SCHEMA = "audit-checkpoint.v1"
#: chain name -> (records, head hash)
Heads = dict[str, tuple[int, str]]
_HEX = frozenset("0123456789abcdef")


def chain_name(partition: int, source: str | None) -> str:
    """`3` for a partition's chain, `3/alerts` for a partition of one audited topic."""
    return str(partition) if source is None else f"{partition}/{source}"


def heads_of(state: Mapping[str, Any]) -> Heads:
    """The heads of a chain state (`claimstream.audit.chain`) or of a partition state of the
    stream (`claimstream.audit.intake`: several chains); chains with no record are left out."""
    partition = state["partition"]
    chains = state["chains"].values() if "chains" in state else (state,)
    return {
        chain_name(partition, chain.get("source")): (chain["seq"], chain["head"])
        for chain in chains
        if chain["seq"] > 0
    }


def utc_stamp(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def signed_checkpoint(
    partition: int, heads: Heads, written_at: str, signer: Signer
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "schema": CHECKPOINT_SCHEMA,
        "partition": partition,
        "written_at": written_at,
        "chains": {
            name: {"records": records, "head": head}
            for name, (records, head) in sorted(heads.items())
        },
        "key_id": signer.key_id,
    }
    document["signature"] = signer.sign(jcs(document))
    return document


@dataclass(frozen=True, slots=True)
class Claim:
    """One chain's head as a checkpoint signed it."""

    chain: str
    records: int
    head: str
    written_at: str
    where: str


@dataclass(frozen=True, slots=True)
class Checkpoint:
    partition: int
    written_at: str
    key_id: str
    heads: Heads
    where: str

    def claims(self) -> list[Claim]:
        return [
            Claim(name, records, head, self.written_at, self.where)
            for name, (records, head) in sorted(self.heads.items())
        ]


CheckpointProblem = Literal["malformed", "forged", "unknown_key"]


class CheckpointError(ValueError):
    """A checkpoint that cannot be trusted: `malformed`, `forged` (its signature does not
    verify) or `unknown_key` (signed by a key the verifier was not given)."""

    def __init__(self, kind: CheckpointProblem, where: str, detail: str) -> None:
        super().__init__(f"checkpoint {where}: {detail}")
        self.kind = kind
        self.where = where


def read_checkpoint(raw: bytes, keys: PublicKeys, where: str) -> Checkpoint:
    """The checkpoint in `raw` once its signature is checked, else `CheckpointError`."""
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise CheckpointError("malformed", where, "not JSON") from None
    why = _malformed(document)
    if why is not None:
        raise CheckpointError("malformed", where, why)
    signed = {k: v for k, v in document.items() if k != "signature"}
    try:
        content = jcs(signed)
    except ValueError as exc:
        raise CheckpointError("malformed", where, f"not canonical JSON: {exc}") from None
    verdict = keys.verify(document["key_id"], document["signature"], content)
    if verdict is None:
        raise CheckpointError(
            "unknown_key",
            where,
            f"signed by {document['key_id']}, not one of the public keys given "
            f"({', '.join(keys.ids) or 'none'})",
        )
    if not verdict:
        raise CheckpointError(
            "forged", where, f"its signature does not verify with {document['key_id']}"
        )
    heads = {name: (claim["records"], claim["head"]) for name, claim in document["chains"].items()}
    return Checkpoint(
        document["partition"], document["written_at"], document["key_id"], heads, where
    )


def _malformed(document: Any) -> str | None:
    if not isinstance(document, dict):
        return "not a JSON object"
    if document.get("schema") != CHECKPOINT_SCHEMA:
        return f"schema is not {CHECKPOINT_SCHEMA}"
    partition = document.get("partition")
    if not isinstance(partition, int) or isinstance(partition, bool) or partition < 0:
        return "partition missing or not a number"
    for name in ("written_at", "key_id", "signature"):
        if not isinstance(document.get(name), str):
            return f"{name} missing or not text"
    chains = document.get("chains")
    if not isinstance(chains, dict):
        return "chains missing or not an object"
    for name, claim in chains.items():
        if not isinstance(claim, dict):
            return f"chain {name}: not an object"
        records, head = claim.get("records"), claim.get("head")
        if not isinstance(records, int) or isinstance(records, bool) or records < 1:
            return f"chain {name}: records missing or not a positive number"
        if not isinstance(head, str) or len(head) != 64 or not set(head) <= _HEX:
            return f"chain {name}: head is not a SHA-256 hex digest"
    return None


class Checkpointer:
    """Writes a signed checkpoint of each partition's chains at most every `interval` seconds
    (wall time), when its heads changed."""

    def __init__(
        self,
        signer: Signer,
        store: CheckpointStore,
        *,
        interval: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signer = signer
        self.store = store
        self.interval = interval
        self.clock = clock
        self.written = 0
        self.failures = 0
        self._pending: dict[int, Heads] = {}
        self._last_heads: dict[int, Heads] = {}
        self._last_time: dict[int, float] = {}

    def observe(self, states: Mapping[int, Mapping[str, Any]]) -> list[str]:
        """After a batch's chain states were stored (partition -> state): note each
        partition's heads, then write the checkpoints that are due. Returns where they went."""
        for partition, state in states.items():
            heads = heads_of(state)
            if heads and heads != self._last_heads.get(partition):
                self._pending[partition] = heads
            else:
                self._pending.pop(partition, None)
        return self.flush()

    def flush(self, *, force: bool = False) -> list[str]:
        """Write each pending partition's checkpoint whose last one is `interval` old (all of
        them with `force`)."""
        now = self.clock()
        written: list[str] = []
        for partition in sorted(self._pending):
            last = self._last_time.get(partition)
            if not force and last is not None and now - last < self.interval:
                continue
            heads = self._pending[partition]
            document = signed_checkpoint(partition, heads, utc_stamp(now), self.signer)
            try:
                where = self.store.write(partition, document["written_at"], jcs(document))
            except OSError as exc:
                self.failures += 1
                log.error(
                    "audit checkpoint of partition %d not written (%s: %s); retried at the "
                    "next batch or tick",
                    partition,
                    type(exc).__name__,
                    exc.strerror or exc,
                )
                continue
            del self._pending[partition]
            self._last_heads[partition] = heads
            self._last_time[partition] = now
            self.written += 1
            written.append(where)
        return written

    @property
    def pending(self) -> list[int]:
        return sorted(self._pending)
