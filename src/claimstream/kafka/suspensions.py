"""The doctors' suspensions in force, followed from the commands topic by every worker.

`doctor_not_registered` refuses a suspended doctor's events; the suspensions are the sanctions
ladder's SUSPEND commands (and the UNFREEZEs lifting them) on `claimstream.commands.v1`
(`reference.suspensions` reads them). Every worker needs every doctor's, whatever partitions
it owns, so each reads the whole topic with its own group-less consumer from the beginning, as
the control topic is read, and keeps following it.
"""

from __future__ import annotations

import asyncio
import logging

import orjson

from claimstream.kafka.control import follow_topic
from claimstream.kafka.security import KafkaSecurity
from claimstream.reference.suspensions import Suspensions

log = logging.getLogger(__name__)

COMMANDS_TOPIC = "claimstream.commands.v1"


class SuspensionsFeed:
    """Applies every command of the commands topic to `suspensions` (idempotent by id)."""

    def __init__(
        self,
        bootstrap: str,
        suspensions: Suspensions,
        topic: str = COMMANDS_TOPIC,
        poll_ms: int = 500,
        security: KafkaSecurity | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.suspensions = suspensions
        self.topic = topic
        self.poll_ms = poll_ms
        self.security = security
        #: commands read (any action), for /status
        self.read = 0

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Consume until `stop` is set (or the task is cancelled)."""
        await follow_topic(
            self.bootstrap, self.topic, self.handle, stop, self.poll_ms, self.security
        )

    def handle(self, raw: bytes | None) -> bool:
        """Apply one record; True when it changed the suspensions in force. A record that is
        not a JSON object is skipped (the audit dead-letters it; it suspends nobody)."""
        self.read += 1
        if raw is None:
            return False
        try:
            command = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return False
        if not isinstance(command, dict):
            return False
        changed = self.suspensions.apply(command)
        if changed:
            log.info("doctors' suspensions in force: %d", len(self.suspensions))
        return changed
