"""Where signed checkpoints are kept: anywhere but the Kafka that carries the trail.

`CheckpointStore` is the whole interface (write one, list the latest per partition, list all);
`DirectoryStore` keeps them as files:

    <root>/partition-0003/20260301T011200.123456Z-9f2c41.json

one JSON document per checkpoint (`claimstream.audit.checkpoint`), named by the UTC time it was
written (so names sort by time) and a random suffix (two writers of one partition during a
rebalance never collide). A file is written under a temporary name, flushed to disk, then
renamed, so a reader never sees half a checkpoint. An object store (S3 with Object Lock, GCS
with a retention policy) fits the same interface with the same keys as object names; the
directory is what runs here. Deleting checkpoints is the one thing a signature cannot prevent:
keep them where the worker may add but not delete (see docs/audit.md).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

_PREFIX = "partition-"


class CheckpointStore(Protocol):
    def write(self, partition: int, written_at: str, document: bytes) -> str:
        """Keep one checkpoint; returns where it went."""
        ...

    def latest(self) -> Iterator[tuple[str, bytes]]:
        """(where, document) of the newest checkpoint of each partition."""
        ...

    def every(self) -> Iterator[tuple[str, bytes]]:
        """(where, document) of every checkpoint, oldest first per partition."""
        ...


class DirectoryStore:
    """Checkpoints as files under `root` (created on the first write)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"DirectoryStore({str(self.root)!r})"

    def write(self, partition: int, written_at: str, document: bytes) -> str:
        folder = self.root / f"{_PREFIX}{partition:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = written_at.replace("-", "").replace(":", "")
        final = folder / f"{stamp}-{secrets.token_hex(3)}.json"
        temporary = folder / f".{final.name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, document)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, final)
        _sync_dir(folder)
        return str(final)

    def latest(self) -> Iterator[tuple[str, bytes]]:
        for folder in self._folders():
            names = self._names(folder)
            if names:
                path = folder / names[-1]
                yield str(path), path.read_bytes()

    def every(self) -> Iterator[tuple[str, bytes]]:
        for folder in self._folders():
            for name in self._names(folder):
                path = folder / name
                yield str(path), path.read_bytes()

    def _folders(self) -> list[Path]:
        """The partition folders; `OSError` when the root cannot be listed."""
        return sorted(p for p in self.root.iterdir() if p.name.startswith(_PREFIX) and p.is_dir())

    @staticmethod
    def _names(folder: Path) -> list[str]:
        return sorted(
            p.name for p in folder.iterdir() if p.suffix == ".json" and not p.name.startswith(".")
        )


def _sync_dir(folder: Path) -> None:
    """Make the rename durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
