"""A small audit trail made of real outputs: alerts and commands of a replay, a review, an
unfreeze, over two partitions; unkeyed, keyed or legacy (audit.v1); and its checkpoints."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson

from claimstream.audit import AuditChain, new_state
from claimstream.audit.canonical import GENESIS, jcs
from claimstream.audit.checkpoint import Checkpoint, read_checkpoint, signed_checkpoint
from claimstream.audit.keys import HmacKey, HmacKeyRing, PublicKeys, Signer
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


# --- keys, keyed trails, checkpoints --------------------------------------------------------

#: fixed test keys (never used outside tests)
SECRET = bytes(range(32))
SEED = base64.b64encode(bytes(range(100, 132))).decode()


def ring(*more: bytes) -> HmacKeyRing:
    return HmacKeyRing((HmacKey.from_secret(SECRET), *(HmacKey.from_secret(m) for m in more)))


def signer() -> Signer:
    return Signer.from_seed(SEED, "test seed")


def public() -> PublicKeys:
    return PublicKeys.of([signer().public_key])


def keyed_trail(partitions: int = 1, key: HmacKey | None = None) -> list[dict[str, Any]]:
    """The support trail with a MAC on every record (the ring's first key by default)."""
    chain = AuditChain(key=key or ring().current)
    states = [new_state(p) for p in range(partitions)]
    records = []
    for n, item in enumerate(items()):
        record = chain.record(states[n % partitions], item)
        assert record is not None
        records.append(record)
    return records


def legacy_trail() -> list[dict[str, Any]]:
    """The support trail as the code before the key wrote it: audit.v1, orjson sorted keys."""
    heads: dict[int, str] = {}
    records = []
    for record in trail():
        old = {k: v for k, v in record.items() if k != "hash"}
        old["schema"] = "audit.v1"
        old["prev_hash"] = heads.get(old["partition"], GENESIS)
        old["hash"] = hashlib.sha256(orjson.dumps(old, option=orjson.OPT_SORT_KEYS)).hexdigest()
        heads[old["partition"]] = old["hash"]
        records.append(old)
    return records


def checkpoints_of(
    records: list[dict[str, Any]], at: str = "2026-03-10T00:00:00.000000Z"
) -> list[Checkpoint]:
    """One signed (and read back) checkpoint per partition of what `records` holds."""
    heads: dict[int, dict[str, tuple[int, str]]] = {}
    for r in records:
        name = str(r["partition"]) if "source" not in r else f"{r['partition']}/{r['source']}"
        heads.setdefault(r["partition"], {})[name] = (r["seq"] + 1, r["hash"])
    out = []
    for partition, found in sorted(heads.items()):
        document = signed_checkpoint(partition, found, at, signer())
        out.append(read_checkpoint(jcs(document), public(), f"cp-{partition}"))
    return out
