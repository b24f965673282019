"""What reading the input costs before any detection: the two baselines `make bench` prints
beside the worker, on the same backlog in the same run, so the worker's figure comes with
ratios instead of alone (issue #17).

* `plain`: one aiokafka consumer, no group, assigned every partition of the input topics from
  their beginning, with the worker's fetch settings, decoding each value with orjson;
* `faust`: a faust app whose one agent takes each event (`async for event in stream`) and does
  nothing with it: what faust's per-message delivery costs, which every worker pays.

`python -m claimstream.devtools.baselines faust --broker URL --count N TOPIC...` runs the
second in its own process (faust owns its event loop and signals) and prints one line,
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


def faust_noop(broker: str, topics: Sequence[str], count: int) -> None:
    """Run the do-nothing agent until it has taken `count` events; print `events SECONDS`."""
    import faust

    app = faust.App(
        f"claimstream-bench-noop-{uuid.uuid4().hex[:8]}",
        broker=broker,
        autodiscover=False,
        web_enabled=False,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        consumer_max_fetch_size=FETCH_BYTES,
        key_serializer="raw",
        value_serializer="raw",
    )
    source = app.topic(*topics, key_type=bytes, value_type=bytes)
    taken = {"n": 0, "first": 0.0}

    @app.agent(source)
    async def noop(stream: faust.StreamT[bytes]) -> None:
        async for _ in stream:
            if taken["n"] == 0:
                taken["first"] = time.perf_counter()
            taken["n"] += 1
            if taken["n"] >= count:
                sys.stdout.write(f"{taken['n']} {time.perf_counter() - taken['first']:.6f}\n")
                sys.stdout.flush()
                os._exit(0)  # a bench's throwaway group: no goodbye needed

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


def faust_rate(url: str, topics: Sequence[str], count: int, timeout: float = 600) -> float:
    """Events per second of the do-nothing faust agent, run in a process of its own."""
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", __name__, "faust", "--broker", url, "--count", str(count), *topics],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    rate = figure_of(done.stdout + done.stderr)
    if rate is not None:
        return rate
    raise RuntimeError(f"the do-nothing faust agent printed no figure: {done.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m claimstream.devtools.baselines")
    parser.add_argument("which", choices=["faust", "plain"])
    parser.add_argument("--broker", required=True, help="kafka://host:port")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("topics", nargs="+")
    args = parser.parse_args(argv)
    if args.which == "faust":
        faust_noop(args.broker, args.topics, args.count)
        return 0
    bootstrap = args.broker.removeprefix("kafka://")
    rate = asyncio.run(plain_rate(bootstrap, args.topics, args.count))
    sys.stdout.write(f"{rate:.0f} events/s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
