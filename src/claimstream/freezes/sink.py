"""A sink applying settlement commands to a freeze registry (Redis or in-process)."""

from __future__ import annotations

import time
from collections import Counter

from claimstream.detection.sinks.base import Outputs, Sink
from claimstream.freezes.base import FreezeRegistry


class RegistrySink(Sink):
    """Applies every command of a batch, in order, in one round trip; idempotent by command id."""

    name = "registry"

    def __init__(self, registry: FreezeRegistry) -> None:
        self.registry = registry
        #: how each applied command turned out (applied, duplicate, expired, superseded)
        self.outcomes: Counter[str] = Counter()

    async def start(self) -> None:
        await self.registry.start()

    async def stop(self) -> None:
        await self.registry.close()

    async def write(self, outputs: Outputs) -> None:
        if outputs.commands:
            self.outcomes.update(await self.registry.apply(outputs.commands, time.time()))
