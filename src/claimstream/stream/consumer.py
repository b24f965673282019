"""faust's aiokafka consumer: bounded buffers, a configurable fetch wait and a complete seek
after rebalances.

* What a worker holds of input it has not processed yet is bounded (`Bounds`), whatever the
  lag: at most one fetch response per partition in aiokafka's fetcher, each at most
  `response_bytes` (aiokafka's `fetch_max_bytes`, default 50 MB: Tansu ignores the
  per-partition limit and answers a lagging partition with up to that much, so a worker
  that fell behind held more the further behind it was), at most `poll_records` records
  handed to faust at a time, at most `channel_events` events queued per agent (faust's
  `stream_buffer_maxsize`; above 80 % faust stops fetching the partition until the agent
  caught up) and at most `producer_messages` in faust's producer buffer. docs/resilience.md
  has the figures a soak measured.

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
* faust hands a fetched record to the agents whatever became of the records before it, and
  it takes records out of aiokafka that it never hands over: records of a partition paused
  while the fetch waited (when its set of active partitions empties during a fetch, aiokafka
  reads the empty set as "all partitions": at the end of a table recovery, for instance), the
  rest of a fetch when a rebalance starts. aiokafka's position has then moved past them; only a
  seek brings them back. And after a rebalance faust resumes the stream partitions *before* it
  seeks them to their committed offsets, with the flow already running (the tables' recovery
  resumed it), so what is fetched during the seek is handed over too, from wherever the
  position was. An agent could then see offsets c+150.. of a partition before c..c+149; one
  that keeps the offset it has reached takes c..c+149 for re-reads (the audit chain skipped
  them: a run of people's actions never chained after a SIGKILL, with casework on), and faust's
  `_read_offset` drops them for every agent when the re-fetch comes after the rest. Here
  (`Handover`) a stream partition hands over nothing from its assignment until it has been
  sought, then only the record that follows the last one handed over; before each fetch, a
  partition of which records were taken out of aiokafka past the last one handed over is
  sought back to it, and only a hole still there when fetched again (a transaction marker, a
  compacted record) is passed over.
* faust delivers every fetched record to the agents' channels through
  `Service.wait_first(callback(message), suspend_flow.wait())`, so that a delivery waiting
  for room in a channel (or for the producer buffer, or for flow control) is cancelled when a
  rebalance suspends the flow: four tasks and an `asyncio.wait` per record, the largest single
  cost of a worker draining a backlog (issue #17). Here (`_drain_messages`, `start_delivery`)
  a record is delivered by running faust's callback directly while the flow is active: almost
  always it completes without waiting (the channel has room), and nothing else runs meanwhile,
  so no rebalance can begin during it. Only a delivery that does wait is finished under
  `wait_first` as in faust, from where it stopped, and cancelled as before when the flow is
  suspended; with the flow suspended, every delivery goes through `wait_first` as in faust.
  What is delivered, in which order, and what is acked and committed are faust's.
* Before that, while nothing the conductor's handler for the record's partition awaits would
  wait (the flow active, the producer buffer within its bound, no subscription change under
  way) and every channel's queue has room, the record is put into those queues right here
  (`put_now`): decoded by each channel, its reference count raised, put with the handler's
  own pressure callbacks, which is what faust's Cython `ConductorHandler` does, without the
  three coroutines, the lock and the checks it takes per record. A record that would wait
  (a full queue) or fail (a decode error) is left untouched to the handler, through
  `_deliver` as above, so a full queue and a suspension are handled as in faust, and the
  records after it wait for it: the order is kept.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Generator,
    Iterable,
    Mapping,
)
from dataclasses import dataclass
from types import CoroutineType
from typing import Any

from faust.exceptions import KeyDecodeError, ValueDecodeError
from faust.transport import conductor as _conductor
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread, Consumer
from faust.types import TP, Message

log = logging.getLogger(__name__)

#: faust's compiled (Cython) conductor handler, None where faust runs without its extensions
ConductorHandler: Any = getattr(_conductor, "ConductorHandler", None)

#: the most one fetch response may carry (aiokafka's `fetch_max_bytes`); a broker still
#: answers with a whole record batch when one is larger
RESPONSE_BYTES = 1024 * 1024
#: records faust's producer buffer may hold before it holds the agents back
PRODUCER_MESSAGES = 10_000


@dataclass(frozen=True, slots=True)
class Bounds:
    """How much input one worker may hold before processing it (see the module docstring)."""

    #: events queued per agent channel (faust's `stream_buffer_maxsize`)
    channel_events: int
    #: records handed to faust per fetch call (`broker_max_poll_records`)
    poll_records: int
    #: bytes fetched per partition per request (`consumer_max_fetch_size`; Kafka honours it)
    partition_fetch_bytes: int
    #: bytes per fetch response (aiokafka's `fetch_max_bytes`; Kafka and Tansu honour it)
    response_bytes: int
    #: records in faust's producer buffer before the agents wait (`max_messages`)
    producer_messages: int

    @classmethod
    def for_batches(cls, batch_size: int, fetch_bytes: int) -> Bounds:
        """Bounds for agents taking `batch_size` events at a time, fetching `fetch_bytes` per
        partition: a batch being processed and the next one queued behind it."""
        return cls(
            channel_events=max(4096, batch_size * 2),
            poll_records=max(500, batch_size),
            partition_fetch_bytes=fetch_bytes,
            response_bytes=max(RESPONSE_BYTES, fetch_bytes),
            producer_messages=max(PRODUCER_MESSAGES, batch_size * 4),
        )

    def faust_settings(self) -> dict[str, Any]:
        """The faust `App` settings that carry these bounds."""
        return {
            "stream_buffer_maxsize": self.channel_events,
            "broker_max_poll_records": self.poll_records,
            "consumer_max_fetch_size": self.partition_fetch_bytes,
        }

    def apply(self, app: Any) -> None:
        """Bound `app`'s producer buffer (faust has no setting for it) and keep fetch buffers
        out of the C heap (`map_large_allocations`).

        Every table write is a changelog record queued in faust's producer buffer, and faust
        stops feeding agents while that buffer holds more than `max_messages` (default 100):
        with one write per key per batch that throttles consumption to a crawl.
        """
        app.producer.buffer.max_messages = self.producer_messages
        map_large_allocations()


#: allocations of at least this many bytes get their own memory mapping (glibc's default
#: starting value, kept instead of letting it grow)
MMAP_THRESHOLD = 128 * 1024
_M_MMAP_THRESHOLD = -3


def map_large_allocations(threshold: int = MMAP_THRESHOLD) -> bool:
    """Give every allocation of `threshold` bytes or more its own mapping, returned to the
    system when freed (glibc only; elsewhere nothing happens and False is returned).

    glibc starts with this threshold but raises it to the size of every mapped block freed, up
    to 32 MB: after the first fetch responses (hundreds of KB to a MB) were freed, the next
    ones came from the heap, between the smaller objects decoded from them, and the heap kept
    growing with holes nothing reused (the soak measured glibc's free heap growing from 15 to
    56 MB in 4 minutes while what was in use stayed at 25 MB). Setting the threshold keeps it
    fixed.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to set
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))


class Handover:
    """Per stream partition, which fetched records go to the agents: in offset order, from the
    offset the partition was sought to, none skipped (see the module docstring).

    Pure bookkeeping: the consumer below tells it what it took out of aiokafka (`taken`), asks
    it about each record (`admit`) and seeks back the partitions it names (`behind`). A
    partition never assigned through it passes everything, as in faust.
    """

    def __init__(self) -> None:
        #: the offset the next record handed over must have (None: whichever comes first)
        self._next: dict[TP, int | None] = {}
        #: assigned, not sought yet: nothing is handed over
        self._unsought: set[TP] = set()
        #: the offset after the last record taken out of aiokafka (where its position is)
        self._taken: dict[TP, int] = {}
        #: partitions sought back to a hole (`moved`): the hole's offset
        self._sought_back: dict[TP, int] = {}
        #: the first record taken after that
        self._first_after: dict[TP, int] = {}

    def assigned(self, tps: Iterable[TP]) -> None:
        """`tps` are (again) ours: hold their records until they are sought."""
        for tp in tps:
            self._forget(tp)
            self._unsought.add(tp)

    def revoked(self, tps: Iterable[TP]) -> None:
        for tp in tps:
            self._forget(tp)

    def _forget(self, tp: TP) -> None:
        self._unsought.discard(tp)
        self._next.pop(tp, None)
        self._taken.pop(tp, None)
        self._sought_back.pop(tp, None)
        self._first_after.pop(tp, None)

    def sought(self, tp: TP, offset: int | None) -> None:
        """faust sought `tp` to `offset` (None: its first record fetched is where it starts).

        What was taken of it meanwhile may have been taken after the seek: `behind` names it
        until it is sought back (once too often at worst)."""
        self._unsought.discard(tp)
        self._next[tp] = offset
        self._sought_back.pop(tp, None)
        self._first_after.pop(tp, None)

    def taken(self, tp: TP, first: int, end: int) -> None:
        """Records `first`..`end - 1` of `tp` were taken out of aiokafka (whether or not faust
        hands them on)."""
        self._taken[tp] = end
        if tp in self._sought_back:
            self._first_after.setdefault(tp, first)

    def behind(self) -> dict[TP, int]:
        """The partitions of which records were taken past the last one handed over (dropped
        by faust or here), with the offset to seek each back to."""
        out = {}
        for tp, end in self._taken.items():
            expected = self._next.get(tp)
            if expected is not None and end > expected and tp not in self._unsought:
                out[tp] = expected
        return out

    def moved(self, tp: TP, offset: int) -> None:
        """`tp` was sought back to `offset` (`behind`)."""
        self._taken[tp] = offset
        self._sought_back[tp] = offset
        self._first_after.pop(tp, None)

    def expected(self, tp: TP) -> int | None:
        """The offset the next record of `tp` handed over must have (None: any)."""
        return self._next.get(tp)

    def admit(self, tp: TP, offset: int) -> bool:
        """Whether the record at `offset` of `tp` goes to the agents."""
        if tp in self._unsought:
            return False
        expected = self._next.get(tp)
        if expected is not None and offset != expected:
            if offset < expected:
                return False  # handed over already (fetched again after a seek back)
            if not (self._sought_back.get(tp) == expected and self._first_after.get(tp) == offset):
                return False  # records before it were not handed over: `behind` says so
            # the first record after a seek back to the hole, beyond it: the log has nothing
            # there (a transaction marker, a compacted record)
        self._sought_back.pop(tp, None)
        self._first_after.pop(tp, None)
        if tp in self._next:
            self._next[tp] = offset + 1
        return True


class _Resumed:
    """The rest of a coroutine that was started by hand and stopped at `pending` (what it
    yielded to the event loop): awaiting this carries it on from there, as its task would have
    (values sent and exceptions thrown in, cancellation included, go to it)."""

    __slots__ = ("_coro", "_pending")

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self._coro = coro
        self._pending = pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending = self._coro, self._pending
        while True:
            try:
                sent = yield pending
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: BLE001 (thrown in by the task: passed on)
                try:
                    pending = coro.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    pending = coro.send(sent)
                except StopIteration as done:
                    return done.value


async def _finish(resumed: _Resumed) -> Any:
    return await resumed


def start_delivery(coro: Coroutine[Any, Any, Any]) -> Awaitable[Any] | None:
    """Run `coro` up to its first wait: None if it completed without one, else an awaitable
    that finishes it (an exception it raised before waiting propagates from here)."""
    try:
        pending = coro.send(None)
    except StopIteration:
        return None
    return _finish(_Resumed(coro, pending))


def _decoded(decoding: Coroutine[Any, Any, Any]) -> Any:
    """The event a channel's `decode` coroutine returns without waiting (faust's never waits);
    `_WAITS` if it would wait (then it is closed: nothing happened)."""
    try:
        decoding.send(None)
    except StopIteration as done:
        return done.value
    decoding.close()
    return _WAITS


_WAITS = object()


def put_now(handler: Any, message: Message) -> bool:
    """Put `message` into the queue of every channel of its partition, as faust's conductor
    handler `handler` (a `ConductorHandler`) would, if it can be done without waiting: True
    if done; False, with nothing done, if the handler would wait (a full queue) or fail (a
    decode error): it is then delivered through `handler` (see the module docstring).

    The caller has checked what the handler awaits first: flow control and the producer
    buffer."""
    channels = handler.channels
    n = len(channels)
    if not n:
        return False
    reuse = handler.cython_optimizations
    puts = []
    event = keyid = None
    try:
        for channel in channels:
            queue = channel.queue
            if queue.full():
                return False
            channel_keyid = (channel.key_type, channel.value_type)
            if event is None or not (reuse and channel_keyid == keyid):
                decoded = _decoded(channel.decode(message, propagate=True))
                if decoded is _WAITS:
                    return False
                if event is None:
                    event, keyid = decoded, channel_keyid
            else:
                decoded = event
            puts.append((queue, decoded))
    except (KeyDecodeError, ValueDecodeError):
        return False  # the handler decodes it again and passes the error to the channels
    message.refcount += n  # faust's `message.incref(n)`, before any channel can ack it
    high, drop = handler.on_pressure_high, handler.on_pressure_drop
    for queue, decoded in puts:
        queue.put_nowait_enhanced(decoded, on_pressure_high=high, on_pressure_drop=drop)
    return True


def consumer_class(fetch_wait_ms: int, response_bytes: int = RESPONSE_BYTES) -> type[Consumer]:
    """A faust Consumer class whose aiokafka consumer waits at most `fetch_wait_ms` per fetch
    and takes at most `response_bytes` per fetch response."""

    class _Thread(AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            # read by start() to build its Fetcher; faust passes neither
            consumer._fetch_max_wait_ms = fetch_wait_ms
            consumer._fetch_max_bytes = response_bytes
            return consumer

    class _Consumer(Consumer):
        #: per partition, the highest offset an agent acked since it was assigned
        _acked_max: dict[TP, int]
        #: which fetched stream records go to the agents
        _handover: Handover

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._acked_max = {}
            self._handover = Handover()
            super().__init__(*args, **kwargs)

        def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
            return _Thread(self, loop=self.loop, beacon=self.beacon)

        def _stream_tps(self, tps: Iterable[TP]) -> list[TP]:
            return [tp for tp in tps if not self._is_changelog_tp(tp)]

        async def seek_to_committed(self) -> Mapping[TP, int]:
            streams = self._stream_tps(self.assignment())
            committed = await super().seek_to_committed()
            positions: dict[TP, int | None] = {}
            unsought = []
            for tp in streams:
                offset = committed.get(tp)
                if offset is not None and offset > 0:
                    positions[tp] = offset  # where aiokafka sought it
                else:
                    unsought.append(tp)
            if unsought:
                earliest = await self.earliest_offsets(*unsought)
                sought = {
                    tp: self._first_unprocessed(tp, offset)
                    for tp, offset in earliest.items()
                    if offset is not None
                }
                await self.seek_wait(sought)
                positions.update(dict.fromkeys(unsought))  # no beginning known: any first one
                positions.update(sought)
            for tp, position in positions.items():
                self._handover.sought(tp, position)
            return committed

        async def getmany(
            self,
            timeout: float,  # noqa: ASYNC109 (faust's signature)
        ) -> AsyncIterator[tuple[TP, Message]]:
            """faust's fetch, passing on only what `Handover` admits, after seeking back the
            partitions of which records were taken but not handed over (see the module
            docstring)."""
            handover = self._handover
            if self.flow_active:  # not during a rebalance: faust seeks at its end
                await self._seek_back(handover.behind())
            is_changelog = self._is_changelog_tp
            async for tp, message in super().getmany(timeout):
                if is_changelog(tp) or handover.admit(tp, message.offset):
                    yield tp, message

        async def _seek_back(self, behind: Mapping[TP, int]) -> None:
            assignment = self.assignment()
            for tp, offset in behind.items():
                if tp not in assignment:
                    continue
                log.info(
                    "%s[%d]: records from offset %d were fetched but not handed over; "
                    "fetching them again",
                    tp.topic,
                    tp.partition,
                    offset,
                )
                await self.seek_wait({tp: offset})
                self._handover.moved(tp, offset)

        async def _wait_next_records(self, timeout: float) -> Any:  # noqa: ASYNC109
            records, active = await super()._wait_next_records(timeout)
            if records:
                handover = self._handover
                is_changelog = self._is_changelog_tp
                for tp, taken in records.items():
                    if taken and not is_changelog(tp):
                        handover.taken(tp, taken[0].offset, taken[-1].offset + 1)
            return records, active

        async def _deliver(
            self, callback: Callable[[Message], Awaitable[Any]], message: Message
        ) -> None:
            """Hand `message` to faust's callback (the conductor's), without `wait_first`
            unless the delivery waits or the flow is suspended (see the module docstring)."""
            delivery = callback(message)
            if self.flow_active and isinstance(delivery, CoroutineType):
                rest = start_delivery(delivery)
                if rest is None:
                    return
                delivery = rest
            await self.wait_first(delivery, self.suspend_flow.wait())

        def _put_now(self, callback: Any) -> Callable[[Message], bool] | None:
            """What `_drain_messages` tries first for each record when `callback` is the
            conductor's: `put_now` with the partition's handler, if nothing the handler awaits
            would wait (see the module docstring); None for any other callback."""
            conductor: Any = self.app.topics
            if ConductorHandler is None or callback != conductor.on_message:
                return None
            handlers = conductor._tp_to_callback
            lock = conductor._tp_to_callback_lock
            flow = self.app.flow_control
            buffer = self.app.producer.buffer

            def now(message: Message) -> bool:
                if (
                    not self.flow_active
                    or not flow.is_active()
                    or lock.locked()
                    or buffer.size > buffer.max_messages
                ):
                    return False
                handler = handlers.get(message.tp)
                return type(handler) is ConductorHandler and put_now(handler, message)

            return now

        async def _drain_messages(self, fetcher: Any) -> None:
            """faust's fetch loop (`Consumer._drain_messages`, faust-streaming 0.15) with each
            record delivered by `_deliver` instead of `wait_first`; the rest is faust's, line
            for line: the read offsets, the gaps, the commits every `commit_every` acks, a turn
            of the event loop every 100 records."""
            callback = self.callback
            getmany = self.getmany
            consumer_should_stop = self._stopped.is_set
            fetcher_should_stop = fetcher._stopped.is_set
            get_read_offset = self._read_offset.__getitem__
            set_read_offset = self._read_offset.__setitem__
            set_flag = self.diag.set_flag
            unset_flag = self.diag.unset_flag
            commit_every = self._commit_every
            acks_enabled_for = self.app.topics.acks_enabled_for
            deliver = self._deliver
            now = self._put_now(callback)

            yield_every = 100
            num_since_yield = 0
            sleep = asyncio.sleep

            try:
                while not (consumer_should_stop() or fetcher_should_stop()):
                    set_flag(CONSUMER_FETCHING)
                    ait = getmany(timeout=1.0)
                    # faust: "sometimes getmany is called in a loop never releasing to the
                    # event loop"
                    await self.sleep(0)
                    if not self.should_stop:
                        async for tp, message in ait:
                            num_since_yield += 1
                            if num_since_yield > yield_every:
                                await sleep(0)
                                num_since_yield = 0
                            offset = message.offset
                            r_offset = get_read_offset(tp)
                            if r_offset is None or offset >= r_offset:
                                gap = offset - (r_offset or 0)
                                if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                    await self._add_gap(tp, r_offset + 1, offset)
                                if commit_every is not None and self._n_acked >= commit_every:
                                    self._n_acked = 0
                                    await self.commit()
                                if not (now and now(message)):
                                    await deliver(callback, message)
                                set_read_offset(tp, offset)
                        unset_flag(CONSUMER_FETCHING)
            except self.consumer_stopped_errors:
                if self.transport.app.should_stop:
                    log.info("Broker stopped consumer, shutting down...")
                    return
                raise
            except asyncio.CancelledError:
                if self.transport.app.should_stop:
                    log.info("Consumer shutting down for user cancel.")
                    return
                raise
            except Exception as exc:
                log.exception("Drain messages raised: %r", exc)
                raise
            finally:
                unset_flag(CONSUMER_FETCHING)

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
            self._handover.revoked(revoked)
            await super().on_partitions_revoked(revoked)

        async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
            # before faust starts the new generation: nothing of these partitions is handed
            # over until faust has sought them (after the tables' recovery)
            self._handover.assigned(self._stream_tps(assigned))
            await super().on_partitions_assigned(assigned, generation_id)

        def _new_offset(self, tp: TP) -> int | None:
            offset: int | None = super()._new_offset(tp)
            highest = self._acked_max.get(tp)
            if offset is not None and highest is not None and offset > highest + 1:
                # The rest of the counted-as-done run is forgotten with it; those records
                # are still queued, and acking them extends the run again.
                return highest + 1
            return offset

    return _Consumer
