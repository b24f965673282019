"""A sink publishing alerts, commands and dead letters to their Kafka topics, keyed as declared.

Keys follow topics.toml: an alert by its subject's id, a command by its scope
(`kind:id[:drug_code]`, so one scope's commands stay in order), a dead letter by none. The
sink sends through any `Publisher` (the worker passes faust's producer) and waits for every
delivery before returning, so the batch's offsets are committed only after its outputs landed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import orjson

from claimstream.detection.sinks.base import Outputs, Sink

#: topic, key, value, partition (None: by key)
Out = tuple[str, bytes | None, bytes | None, int | None]


class Publisher(Protocol):
    async def send_and_wait(self, records: Iterable[Out]) -> None:
        """Produce `records` and return once the broker acknowledged all of them."""


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
        records: list[Out] = [
            (topics.alerts, a.subject.id.encode(), orjson.dumps(a.to_dict()), None)
            for a in outputs.alerts
        ]
        if topics.shadow_alerts is not None:
            records.extend(
                (topics.shadow_alerts, a.subject.id.encode(), orjson.dumps(a.to_dict()), None)
                for a in outputs.shadow_alerts
            )
        records.extend(
            (topics.commands, c.scope.key().encode(), orjson.dumps(c.to_dict()), None)
            for c in outputs.commands
        )
        records.extend(
            (topics.dead_letter, None, orjson.dumps(d.to_dict()), None)
            for d in outputs.dead_letters
        )
        await self.publisher.send_and_wait(records)
