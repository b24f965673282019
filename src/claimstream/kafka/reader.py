"""Reading a whole topic from the beginning, every partition, for the CLIs that check or rebuild.

`TopicReader` assigns every partition of one topic (no consumer group: nothing is committed),
seeks to the beginning and reads until each partition's end offset is reached *and* a fetch
comes back empty. Both conditions are needed: Tansu reports a partition's end offset as its
last batch's base offset + 1, so the end offset alone can stop short of the tail of a
multi-record batch. `read_new()` can be called again to read what arrived since (the freeze
rebuild does, when the registry changed while it worked).

`ReaderUnreachable` (both a `TopicReadError` and a `claimstream.kafka.url.BrokerUnreachable`)
says no broker answered; `TopicMissing` that the broker has no such topic.

The topic must exist: its partitions are looked up in the broker's full topic list, never by
asking for the topic's metadata by name, since a broker that auto-creates topics (Tansu, Kafka
with `auto.create.topics.enable`) would create a mistyped one.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from claimstream.kafka.security import KafkaSecurity, resolve
from claimstream.kafka.url import BrokerUnreachable


class TopicReadError(RuntimeError):
    """The broker cannot be reached or the topic does not exist."""


class TopicMissing(TopicReadError):
    """The broker answered, and has no topic of that name (or it has no partitions)."""


class ReaderUnreachable(TopicReadError, BrokerUnreachable):
    """No broker answered: a `TopicReadError` and a `BrokerUnreachable` (`OSError`) both."""

    def __init__(self, bootstrap: str, detail: str) -> None:
        BrokerUnreachable.__init__(self, bootstrap, detail)


@dataclass(frozen=True, slots=True)
class TopicRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @property
    def origin(self) -> dict[str, Any]:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}

    def where(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"


class TopicReader:
    """`async with TopicReader(bootstrap, topic) as reader: records = await reader.read_new()`.

    `security`: TLS and SASL (default: the `CLAIMSTREAM_KAFKA_*` variables).
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        *,
        idle: float = 0.5,
        progress: Callable[[int], None] | None = None,
        connect_timeout: float = 10.0,
        security: KafkaSecurity | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.security = security
        self.topic = topic
        self.idle = idle
        self.progress = progress
        self.connect_timeout = connect_timeout
        self.partitions: list[int] = []
        self.read = 0
        self._consumer: Any = None

    async def __aenter__(self) -> TopicReader:
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.errors import KafkaError

        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            request_timeout_ms=int(self.connect_timeout * 1000),
            metadata_max_age_ms=300_000,
            **resolve(self.security).client_options(),
        )
        try:
            async with asyncio.timeout(self.connect_timeout):
                await consumer.start()
        except (KafkaError, OSError) as exc:  # TimeoutError is an OSError
            await consumer.stop()
            if isinstance(exc, TimeoutError):
                detail = f"no answer within {self.connect_timeout:g} s"
            elif isinstance(exc, KafkaError):
                detail = "no Kafka broker answered"  # aiokafka's text is a repr of its hosts
            else:
                detail = exc.strerror or str(exc)
            raise ReaderUnreachable(self.bootstrap, detail) from exc
        self._consumer = consumer
        try:
            cluster = await consumer._client.fetch_all_metadata()  # every topic, none by name
            if self.topic not in cluster.topics():
                raise TopicMissing(
                    f"topic {self.topic} does not exist on {self.bootstrap} "
                    "(`claimstream topics apply` creates the declared topics)"
                )
            self.partitions = sorted(cluster.partitions_for_topic(self.topic) or ())
            if not self.partitions:
                raise TopicMissing(f"topic {self.topic} has no partitions")
            tps = [TopicPartition(self.topic, p) for p in self.partitions]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def read_new(self) -> list[TopicRecord]:
        """Every record not read yet, up to the end of every partition, in offset order per
        partition (partitions interleaved)."""
        from aiokafka import TopicPartition

        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("TopicReader used outside `async with`")
        tps = [TopicPartition(self.topic, p) for p in self.partitions]
        ends = await consumer.end_offsets(tps)
        out: list[TopicRecord] = []
        while True:
            batch = await consumer.getmany(*tps, timeout_ms=int(self.idle * 1000))
            for tp, records in batch.items():
                out.extend(
                    TopicRecord(tp.topic, tp.partition, r.offset, r.key, r.value) for r in records
                )
                self.read += len(records)
            if batch and self.progress is not None:
                self.progress(self.read)
            behind = [tp for tp in tps if await consumer.position(tp) < ends[tp]]
            if not batch and not behind:
                return out


class ProgressLine:
    """`reading TOPIC: N records` on stderr: redrawn on a terminal, a line every 10 s otherwise."""

    def __init__(self, what: str, stream: TextIO | None = None, every: float = 10.0) -> None:
        self.what = what
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every = every
        self.started = self._last = time.monotonic()
        self.shown = False

    def __call__(self, count: int) -> None:
        now = time.monotonic()
        rate = count / max(now - self.started, 1e-9)
        text = f"{self.what}: {count:,} records ({rate:,.0f}/s)"
        if self.tty:
            self.stream.write("\r" + text)
            self.shown = True
        elif now - self._last >= self.every:
            self.stream.write(text + "\n")
            self._last = now
        else:
            return
        self.stream.flush()

    def close(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * 78 + "\r")
            self.stream.flush()
