"""Signed checkpoints: what they say, who can check them, when the Checkpointer writes them."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from claimstream.audit.canonical import jcs
from claimstream.audit.checkpoint import (
    Checkpointer,
    CheckpointError,
    heads_of,
    read_checkpoint,
    signed_checkpoint,
)
from claimstream.audit.intake import AuditIntake
from claimstream.audit.keys import Signer
from claimstream.audit.store import DirectoryStore
from tests.audit.support import public, signer
from tests.audit.test_intake import inputs

HEAD = "ab" * 32
AT = "2026-03-10T00:00:00.000000Z"


def document() -> dict:
    return signed_checkpoint(3, {"3/alerts": (42, HEAD)}, AT, signer())


def test_a_checkpoint_reads_back_with_the_public_key_alone() -> None:
    checkpoint = read_checkpoint(jcs(document()), public(), "cp")
    assert (checkpoint.partition, checkpoint.written_at) == (3, AT)
    assert [(c.chain, c.records, c.head) for c in checkpoint.claims()] == [("3/alerts", 42, HEAD)]


def test_a_changed_claim_no_longer_verifies() -> None:
    changed = document()
    changed["chains"]["3/alerts"]["records"] = 40  # someone hides the last two records
    with pytest.raises(CheckpointError) as caught:
        read_checkpoint(orjson.dumps(changed), public(), "cp")
    assert caught.value.kind == "forged"


def test_a_checkpoint_signed_by_another_key_is_unknown_not_forged() -> None:
    other = signed_checkpoint(3, {"3/alerts": (42, HEAD)}, AT, Signer.generate())
    with pytest.raises(CheckpointError) as caught:
        read_checkpoint(jcs(other), public(), "cp")
    assert caught.value.kind == "unknown_key"


def test_a_checkpoint_that_is_not_one_is_malformed() -> None:
    with pytest.raises(CheckpointError) as caught:
        read_checkpoint(b'{"schema": "audit-checkpoint.v1"}', public(), "cp")
    assert caught.value.kind == "malformed"


def test_the_heads_of_a_stream_partition_state_name_each_source_chain() -> None:
    result = AuditIntake(lambda p: None).process(inputs(partition=2))
    heads = heads_of(result.states[2])
    assert sorted(heads) == ["2/actions", "2/alerts", "2/commands"]
    assert all(records > 0 and len(head) == 64 for records, head in heads.values())


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def state(seq: int) -> dict:
    return {"partition": 0, "seq": seq, "head": f"{seq:064x}", "wm": None, "ids": {}}


def test_the_first_change_is_written_at_once_and_the_next_after_the_interval(
    tmp_path: Path,
) -> None:
    clock = Clock()
    writer = Checkpointer(signer(), DirectoryStore(tmp_path), interval=60, clock=clock)
    assert len(writer.observe({0: state(1)})) == 1
    clock.now += 30
    assert writer.observe({0: state(2)}) == [] and writer.pending == [0]
    clock.now += 30
    assert len(writer.flush()) == 1 and writer.pending == []
    (latest,) = DirectoryStore(tmp_path).latest()
    assert read_checkpoint(latest[1], public(), latest[0]).heads == {"0": (2, f"{2:064x}")}


def test_unchanged_heads_write_nothing(tmp_path: Path) -> None:
    clock = Clock()
    writer = Checkpointer(signer(), DirectoryStore(tmp_path), interval=60, clock=clock)
    writer.observe({0: state(1)})
    clock.now += 120
    assert writer.observe({0: state(1)}) == [] and writer.written == 1


def test_force_writes_what_is_pending_before_the_interval(tmp_path: Path) -> None:
    clock = Clock()
    writer = Checkpointer(signer(), DirectoryStore(tmp_path), interval=60, clock=clock)
    writer.observe({0: state(1)})
    writer.observe({0: state(2)})
    assert len(writer.flush(force=True)) == 1


def test_a_store_that_fails_keeps_the_checkpoint_pending(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    writer = Checkpointer(signer(), DirectoryStore(blocked), interval=60, clock=Clock())
    assert writer.observe({0: state(1)}) == []
    assert (writer.failures, writer.pending) == (1, [0])


def test_the_store_lists_the_latest_of_each_partition_and_every_one_in_order(
    tmp_path: Path,
) -> None:
    store = DirectoryStore(tmp_path)
    for partition, at in [(1, "2026-03-10T00:00:02.000000Z"), (0, AT), (1, AT)]:
        store.write(partition, at, b"{}")
    latest = [Path(w).parent.name + "/" + Path(w).name[:15] for w, _ in store.latest()]
    assert latest == ["partition-0000/20260310T000000", "partition-0001/20260310T000002"]
    assert len(list(store.every())) == 3
    assert not list(tmp_path.rglob(".*"))  # no temporary file left behind
