"""What reading the input costs before any detection: the two baselines `make bench` prints
beside the worker, on the same backlog in the same run, so the worker's figure comes with
ratios instead of alone (issue #17).

* `plain`: one aiokafka consumer, no group, assigned every partition of the input topics from
  their beginning, with the worker's fetch settings, decoding each value with orjson;
* `faust`: a faust app whose one agent takes each event (`async for event in stream`) and does
  nothing with it: what faust's per-message delivery costs (issue #17's reference);
* `batches`: the same do-nothing agent on the worker's input path: claimstream's consumer
  (`stream/consumer.py`: its delivery without `wait_first`, `Handover`) and batch reader
  (`stream/batches.py`), with the worker's bounds: the most a worker could take with no
  detection at all.

`python -m claimstream.devtools.baselines faust|batches --broker URL --count N TOPIC...` runs
the agent in its own process (faust owns its event loop and signals) and prints one line,
`events SECONDS`, once it has taken N events, then exits.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
import uuid
from collections.abc import Sequence
from typing import Any, cast

import orjson

from claimstream.stream.settings import Settings

#: the do-nothing agent's one line: events taken, seconds from the first
_FIGURE = re.compile(r"(?:^|\] )(\d+) (\d+\.\d+)\s*$")
#: the fetch settings of a worker left at its defaults (`Settings.fetch_bytes`,
#: `fetch_wait_ms`; `make bench`'s worker, unless the shell sets `CLAIMSTREAM_FETCH_*`): read
#: from there, so the baselines follow the worker when its defaults change
_WORKER_DEFAULTS = Settings()
FETCH_BYTES = _WORKER_DEFAULTS.fetch_bytes
FETCH_WAIT_MS = _WORKER_DEFAULTS.fetch_wait_ms


async def plain_rate(bootstrap: str, topics: Sequence[str], count: int) -> float:
    """Events per second one plain consumer reads and decodes, first record to `count`th."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        max_partition_fetch_bytes=FETCH_BYTES,
        fetch_max_wait_ms=FETCH_WAIT_MS,
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen, first = 0, None
        while seen < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            for records in batches.values():
                if first is None and records:
                    first = time.perf_counter()
                for record in records:
                    orjson.loads(record.value)
                seen += len(records)
        assert first is not None
        return seen / (time.perf_counter() - first)
    finally:
        await consumer.stop()


def faust_noop(broker: str, topics: Sequence[str], count: int, reader: str = "faust") -> None:
    """Run the do-nothing agent (`reader` "faust": faust's consumer, one event at a time;
    "batches": the worker's consumer and batch reader) until it has taken `count` events;
    print `events SECONDS`."""
    import faust

    from claimstream.stream.batches import Batching, each_batch
    from claimstream.stream.consumer import Bounds, consumer_class

    batching = Batching()
    bounds = Bounds.for_batches(batching.size, FETCH_BYTES)
    settings: dict[str, Any] = {"consumer_max_fetch_size": FETCH_BYTES}
    if reader == "batches":
        settings.update(bounds.faust_settings())
    app = faust.App(
        f"claimstream-bench-noop-{uuid.uuid4().hex[:8]}",
        broker=broker,
        autodiscover=False,
        web_enabled=False,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        **settings,
    )
    if reader == "batches":
        bounds.apply(app)
        cast(Any, app.transport).Consumer = consumer_class(FETCH_WAIT_MS, bounds.response_bytes)
    source = app.topic(*topics, key_type=bytes, value_type=bytes)
    taken = {"n": 0, "first": 0.0, "before": 0}

    def took(n: int) -> None:
        """`n` more events taken; the figure counts those after the first take (a batch of
        the batch reader) from the moment it was taken."""
        if taken["n"] == 0:
            taken["first"] = time.perf_counter()
            taken["before"] = n
        taken["n"] += n
        if taken["n"] >= count:
            after = taken["n"] - taken["before"]
            sys.stdout.write(f"{after} {time.perf_counter() - taken['first']:.6f}\n")
            sys.stdout.flush()
            os._exit(0)  # a bench's throwaway group: no goodbye needed

    @app.agent(source)
    async def noop(stream: faust.StreamT[bytes]) -> None:
        if reader == "batches":

            async def handle(events: list[Any]) -> None:
                took(len(events))

            await each_batch(app, stream, batching, handle)
            return
        async for _ in stream:
            took(1)

    sys.argv = [sys.argv[0], "worker", "-l", "warn", "--without-web"]
    app.main()


def figure_of(output: str) -> float | None:
    """The do-nothing agent's events/s from what its process wrote (faust's worker redirects
    stdout to its log, on stderr, so the line may come with a log prefix)."""
    for line in output.splitlines():
        found = _FIGURE.search(line)
        if found:
            return int(found[1]) / float(found[2])
    return None


def faust_rate(
    url: str, topics: Sequence[str], count: int, timeout: float = 600, reader: str = "faust"
) -> float:
    """Events per second of the do-nothing faust agent (`reader`: see `faust_noop`), run in a
    process of its own."""
    import subprocess
    import tempfile

    # faust writes its app's data directory in the working directory: a throwaway one
    with tempfile.TemporaryDirectory(prefix="claimstream-bench-noop-") as where:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                __name__,
                reader,
                "--broker",
                url,
                "--count",
                str(count),
                *topics,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=where,
        )
    rate = figure_of(done.stdout + done.stderr)
    if rate is not None:
        return rate
    raise RuntimeError(f"the do-nothing faust agent printed no figure: {done.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m claimstream.devtools.baselines")
    parser.add_argument("which", choices=["faust", "batches", "plain"])
    parser.add_argument("--broker", required=True, help="kafka://host:port")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("topics", nargs="+")
    args = parser.parse_args(argv)
    if args.which != "plain":
        faust_noop(args.broker, args.topics, args.count, args.which)
        return 0
    bootstrap = args.broker.removeprefix("kafka://")
    rate = asyncio.run(plain_rate(bootstrap, args.topics, args.count))
    sys.stdout.write(f"{rate:.0f} events/s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
