"""A sink appending one JSON object per line to files (alerts, commands, dead letters).

Handy for replaying a recorded stream offline and diffing the results; each line is the
record's `to_dict()` plus a `"kind"` field. Writes go through a thread so the loop never blocks.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import orjson

from claimstream.detection.sinks.base import Outputs, Sink


class JsonlSink(Sink):
    name = "jsonl"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    async def write(self, outputs: Outputs) -> None:
        if not outputs:
            return
        rows: list[dict[str, Any]] = []
        rows.extend({"kind": "alert", **a.to_dict()} for a in outputs.alerts)
        rows.extend({"kind": "shadow_alert", **a.to_dict()} for a in outputs.shadow_alerts)
        rows.extend({"kind": "command", **c.to_dict()} for c in outputs.commands)
        rows.extend({"kind": "dead_letter", **d.to_dict()} for d in outputs.dead_letters)
        data = b"".join(orjson.dumps(row) + b"\n" for row in rows)
        await asyncio.to_thread(self._append, data)

    def _append(self, data: bytes) -> None:
        with self.path.open("ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
