"""A sink that keeps everything in lists: for tests, the demo and debugging."""

from __future__ import annotations

import asyncio

from claimstream.detection.sinks.base import Outputs, Sink
from claimstream.model.outputs import Alert, Command, DeadLetter


class MemorySink(Sink):
    name = "memory"

    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self.shadow_alerts: list[Alert] = []
        self.commands: list[Command] = []
        self.dead_letters: list[DeadLetter] = []
        #: set whenever something arrives, so a waiter wakes without polling
        self.changed = asyncio.Event()

    async def write(self, outputs: Outputs) -> None:
        self.alerts.extend(outputs.alerts)
        self.shadow_alerts.extend(outputs.shadow_alerts)
        self.commands.extend(outputs.commands)
        self.dead_letters.extend(outputs.dead_letters)
        if outputs:
            self.changed.set()
