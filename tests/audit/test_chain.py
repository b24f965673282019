"""Appending to the audit chain: linked, hashed over the canonical encoding, idempotent."""

from __future__ import annotations

import copy
import itertools

import orjson

from claimstream.audit import AuditChain, new_state
from claimstream.audit.canonical import GENESIS, digest
from tests.audit.support import items, trail


def test_records_are_linked_and_numbered_per_partition() -> None:
    records = trail(partitions=2)
    for partition in (0, 1):
        own = [r for r in records if r["partition"] == partition]
        assert [r["seq"] for r in own] == list(range(len(own)))
        assert own[0]["prev_hash"] == GENESIS
        assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(own))
    assert {r["kind"] for r in records} == {"alert", "command", "review", "manual"}


def test_the_hash_does_not_depend_on_key_order_or_a_json_round_trip() -> None:
    (record, *_) = trail()
    shuffled = dict(reversed(list(orjson.loads(orjson.dumps(record)).items())))
    assert digest(shuffled) == record["hash"]
    shuffled["body"]["message"] += " "
    assert digest(shuffled) != record["hash"]


def test_a_redelivered_item_appends_nothing() -> None:
    chain = AuditChain()
    state = new_state(0)
    first = items()[0]
    assert chain.record(state, first) is not None
    before = copy.deepcopy(state)
    assert chain.record(state, first) is None
    assert state == before


def test_the_remembered_ids_are_bounded_by_event_time() -> None:
    chain = AuditChain(dedup_days=1)
    state = new_state(0)
    for day in range(1, 30):
        chain.append(state, "manual", f"act-{day}", {}, f"2026-03-{day:02d}T08:00:00+08:00")
    assert sorted(state["ids"]) == ["act-28", "act-29"]
    assert state["seq"] == 29


def test_a_restart_continues_the_chain_from_the_stored_state() -> None:
    chain = AuditChain()
    state = new_state(0)
    first = chain.append(state, "manual", "x", {"n": 1}, "2026-03-01T08:00:00+08:00")
    stored = orjson.loads(orjson.dumps(state))  # what the changelog keeps
    second = chain.append(stored, "manual", "y", {"n": 2}, "2026-03-01T09:00:00+08:00")
    assert first is not None and second is not None
    assert (second["seq"], second["prev_hash"]) == (1, first["hash"])
