"""A sink publishing alerts, commands and dead letters to their Kafka topics, keyed as declared.

Keys follow topics.toml: an alert by its subject's id, a command by its scope
(`kind:id[:drug_code]`, so one scope's commands stay in order), a dead letter by none. The
sink sends through any `Publisher` (the worker passes faust's producer) and waits for every
delivery before returning, so the batch's offsets are committed only after its outputs landed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from claimstream.sinks.base import Outputs, Sink


class Publisher(Protocol):
    async def publish(self, topic: str, key: bytes | None, value: bytes) -> Awaitable[Any]:
        """Enqueue one record; the returned awaitable resolves once the broker acknowledged it."""


@dataclass(frozen=True, slots=True)
class OutputTopics:
    alerts: str = "claimstream.alerts.v1"
    commands: str = "claimstream.commands.v1"
    dead_letter: str = "claimstream.dead-letter.v1"
    #: shadow-mode alerts are not published unless a topic is named here (they are counted in
    #: metrics either way; the alerts topic is for alerts someone should act on)
    shadow_alerts: str | None = None


class KafkaSink(Sink):
    name = "kafka"

    def __init__(self, publisher: Publisher, topics: OutputTopics | None = None) -> None:
        self.publisher = publisher
        self.topics = topics or OutputTopics()

    async def write(self, outputs: Outputs) -> None:
        if not outputs:
            return
        topics = self.topics
        pending: list[Awaitable[Any]] = []
        send = self.publisher.publish
        for alert in outputs.alerts:
            value = orjson.dumps(alert.to_dict())
            pending.append(await send(topics.alerts, alert.subject.id.encode(), value))
        if topics.shadow_alerts is not None:
            for alert in outputs.shadow_alerts:
                value = orjson.dumps(alert.to_dict())
                pending.append(await send(topics.shadow_alerts, alert.subject.id.encode(), value))
        for command in outputs.commands:
            value = orjson.dumps(command.to_dict())
            pending.append(await send(topics.commands, command.scope.key().encode(), value))
        pending.extend(
            [
                await send(topics.dead_letter, None, orjson.dumps(letter.to_dict()))
                for letter in outputs.dead_letters
            ]
        )
        await asyncio.gather(*pending)
