"""faust's aiokafka consumer with a configurable fetch wait.

faust creates its aiokafka consumer with `fetch_max_wait_ms=1500` hard-coded. A fetch that
finds some of its partitions empty may be held by the broker that long (Tansu does), and every
hop (input topic, then a repartition topic) pays it again: at a few thousand events/s that
was most of the event-to-alert latency. The worker sets the wait from
`CLAIMSTREAM_FETCH_WAIT_MS` (default 100) through this subclass.
"""

from __future__ import annotations

from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer


def consumer_class(fetch_wait_ms: int) -> type[Consumer]:
    """A faust Consumer class whose aiokafka consumer waits at most `fetch_wait_ms` per fetch."""

    class _Thread(AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = fetch_wait_ms  # read by start() to build its Fetcher
            return consumer

    class _Consumer(Consumer):
        def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
            return _Thread(self, loop=self.loop, beacon=self.beacon)

    return _Consumer
