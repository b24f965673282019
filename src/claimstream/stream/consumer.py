"""faust's aiokafka consumer with a configurable fetch wait and a complete seek after rebalances.

* faust creates its aiokafka consumer with `fetch_max_wait_ms=1500` hard-coded. A fetch that
  finds some of its partitions empty may be held by the broker that long (Tansu does), and
  every hop (input topic, then a repartition topic) pays it again: at a few thousand events/s
  that was most of the event-to-alert latency. The worker sets the wait from
  `CLAIMSTREAM_FETCH_WAIT_MS` (default 100) through this subclass.
* After every rebalance faust seeks the stream partitions to their committed offsets
  (`Consumer.perform_seek`) so that whatever it dropped meanwhile is fetched again: records
  fetched before the rebalance, a record whose delivery the rebalance interrupted, and records
  of paused partitions (when faust's set of active partitions empties during a fetch,
  aiokafka reads the empty set as "all partitions" and faust drops what it returns for the
  partitions it paused: seen when stream partitions resumed only after the seek). aiokafka's
  `seek_to_committed` leaves a partition with **no committed offset** where it is, so what
  faust dropped there was never fetched again: a worker restarted after a SIGKILL that came
  before its first commit skipped events (found by the SIGKILL-and-restart test). Here such a
  partition is sought to its first offset no agent has acked since it was assigned, counting
  from its beginning, where its consumption started (`auto_offset_reset="earliest"`).
* faust commits, per partition, the acked offsets that follow the last commit without a hole,
  counting as done any offsets it saw skipped in the fetched sequence (`Consumer._add_gap`:
  meant for transaction markers and compacted records). After a seek it also sees such a
  "skip" when records fetched *before* the seek are still being handed over: their offsets
  are far beyond the seek position, so the records in between — fetched earlier, still
  queued for the agent — are counted as done, and a commit at that moment covers records no
  agent has processed yet (a SIGKILL then loses them); faust even copies those offsets into
  its list of acked ones. Here a commit never goes beyond the highest offset an agent really
  acked: agents process each partition in offset order, so every offset below it has been
  processed (or was a genuine hole).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer
from faust.types import TP, Message


def consumer_class(fetch_wait_ms: int) -> type[Consumer]:
    """A faust Consumer class whose aiokafka consumer waits at most `fetch_wait_ms` per fetch."""

    class _Thread(AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            consumer._fetch_max_wait_ms = fetch_wait_ms  # read by start() to build its Fetcher
            return consumer

    class _Consumer(Consumer):
        #: per partition, the highest offset an agent acked since it was assigned
        _acked_max: dict[TP, int]

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._acked_max = {}
            super().__init__(*args, **kwargs)

        def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
            return _Thread(self, loop=self.loop, beacon=self.beacon)

        async def seek_to_committed(self) -> Mapping[TP, int]:
            committed = await super().seek_to_committed()
            unsought = [
                tp
                for tp in self.assignment()
                if not committed.get(tp) and not self._is_changelog_tp(tp)
            ]
            if unsought:
                earliest = await self.earliest_offsets(*unsought)
                await self.seek_wait(
                    {
                        tp: self._first_unprocessed(tp, offset)
                        for tp, offset in earliest.items()
                        if offset is not None
                    }
                )
            return committed

        def _first_unprocessed(self, tp: TP, start: int) -> int:
            """`start`, or the end of the run of acked offsets that begins there.

            With nothing committed yet, faust still lists every offset acked since the
            partition was assigned: re-reading those would only repeat them (and their dead
            letters).
            """
            done = set(self._acked[tp])
            offset = start
            while offset in done:
                offset += 1
            return offset

        def ack(self, message: Message) -> bool:
            counted: bool = super().ack(message)
            if counted:
                tp = message.tp
                if message.offset > self._acked_max.get(tp, -1):
                    self._acked_max[tp] = message.offset
            return counted

        async def on_partitions_revoked(self, revoked: set[TP]) -> None:
            for tp in revoked:
                self._acked_max.pop(tp, None)
            await super().on_partitions_revoked(revoked)

        def _new_offset(self, tp: TP) -> int | None:
            offset: int | None = super()._new_offset(tp)
            highest = self._acked_max.get(tp)
            if offset is not None and highest is not None and offset > highest + 1:
                # The rest of the counted-as-done run is forgotten with it; those records
                # are still queued, and acking them extends the run again.
                return highest + 1
            return offset

    return _Consumer
