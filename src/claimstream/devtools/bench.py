"""`python -m claimstream.devtools.bench` (`make bench`): three throughput/latency figures.

1. core: decode + `Detector.process` in-process over pre-serialised simulated events;
2. worker: one `claimstream worker` process draining a pre-loaded backlog from the local broker
   (events/s of input records, from the first to the last one handled, per the worker's
   `/status`); all rules on;
3. latency: the same worker fed at a fixed offered load (default 5 000 events/s); for every
   alert, the time from producing its completing event to the alert record being produced on
   the alerts topic (both stamped by this machine's clock), as p50/p99.

The simulated stream packs a month into seconds, so the worker runs with a wide allowed
lateness (`--lateness-hours`, default 240 h, as the demo): otherwise the interleaving of the
four input topics during a catch-up spans hours of event time and turns events into late
dead letters, which is not what a production stream at this rate looks like.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from claimstream.audit.keyfiles import write_key_files
from claimstream.detection.config import DetectionConfig
from claimstream.detection.decode import decode_event
from claimstream.detection.detector import Detector
from claimstream.devtools.localbroker import LocalBroker
from claimstream.devtools.simulate import generate
from claimstream.devtools.subproc import die_with_parent, free_port, terminate_group
from claimstream.kafka.admin import apply_topics_sync
from claimstream.kafka.security import KafkaSecurity
from claimstream.kafka.topology import load_topology
from claimstream.model.events import Event

TOPIC_OF = {
    "dispense": "settlement.dispensing.v1",
    "consultation": "settlement.consultations.v1",
    "admission": "settlement.stays.v1",
    "discharge": "settlement.stays.v1",
    "claim": "settlement.claims.v1",
}
Message = tuple[str, bytes, bytes, str]  # topic, key, value, event id


def core_throughput(count: int) -> float:
    raw = [orjson.dumps(e) for e in generate(count, seed=3)]
    detector = Detector(DetectionConfig.default(), clock=time.time)
    started = time.perf_counter()
    for line in raw:
        event = decode_event(line)
        if isinstance(event, Event):
            detector.process(event)
    return count / (time.perf_counter() - started)


def messages(count: int, seed: int, start: datetime) -> list[Message]:
    return [
        (TOPIC_OF[e["event_type"]], e["patient_id"].encode(), orjson.dumps(e), e["event_id"])
        for e in generate(count, seed=seed, start=start)
    ]


def status(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as response:
            body: dict[str, Any] = orjson.loads(response.read())
            return body
    except OSError:
        return None


def patient_records(port: int) -> int:
    s = status(port) or {}
    return int(s.get("records_by_kind", {}).get("patient", 0))


async def produce_all(bootstrap: str, batch: list[Message]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=262144)
    await producer.start()
    try:
        futures = [await producer.send(t, value=v, key=k) for t, k, v, _ in batch]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def paced_latency(bootstrap: str, batch: list[Message], rate: float) -> list[float]:
    """Produce `batch` at `rate`/s; return the latency of every alert it causes (seconds)."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    sent: dict[str, float] = {}
    latencies: list[float] = []
    consumer = AIOKafkaConsumer("claimstream.alerts.v1", bootstrap_servers=bootstrap)
    await consumer.start()
    await consumer.seek_to_end()
    done = asyncio.Event()

    async def watch() -> None:
        seen: set[str] = set()
        while not done.is_set() or consumer_lagging():
            records = await consumer.getmany(timeout_ms=200)
            for rs in records.values():
                for r in rs:
                    alert = orjson.loads(r.value)
                    if alert["alert_id"] in seen:
                        continue
                    seen.add(alert["alert_id"])
                    times = [sent[e] for e in alert["event_ids"] if e in sent]
                    if times:
                        latencies.append(r.timestamp / 1000 - max(times))

    def consumer_lagging() -> bool:
        return False

    watcher = asyncio.create_task(watch())
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1)
    await producer.start()
    try:
        t0 = time.monotonic()
        for i, (topic, key, value, event_id) in enumerate(batch):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            sent[event_id] = time.time()
            await producer.send(topic, value=value, key=key)
        await producer.flush()
        await asyncio.sleep(3.0)  # the last alerts of the run
    finally:
        done.set()
        await watcher
        await producer.stop()
        await consumer.stop()
    return latencies


def start_worker(
    url: str, port: int, partitions: int, lateness: float, audit_env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """A worker with every part on, the audit keyed (its cost is part of the figure)."""
    env = {
        # its broker is a plaintext local one, whatever the shell's CLAIMSTREAM_KAFKA_* say
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CLAIMSTREAM_AUDIT_", "CLAIMSTREAM_KAFKA_"))
        },
        **audit_env,
        "CLAIMSTREAM_BROKER_URL": url,
        "CLAIMSTREAM_BROKER_FLAVOR": "tansu",
        "CLAIMSTREAM_WEB_PORT": str(port),
        "CLAIMSTREAM_PARTITIONS": str(partitions),
        "CLAIMSTREAM_ENGINE__ALLOWED_LATENESS_HOURS": str(lateness),
        # the simulated history reaches past the wall clock: accept it (docs/time.md)
        "CLAIMSTREAM_ENGINE__MAX_FUTURE_SKEW_MINUTES": str(40 * 24 * 60),
    }
    env.pop("CLAIMSTREAM_REDIS_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "claimstream", "worker", "--skip-topic-check"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )


def wait(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m claimstream.devtools.bench", description=__doc__
    )
    parser.add_argument("--core-events", type=int, default=200_000)
    parser.add_argument(
        "--core-runs",
        type=int,
        default=1,
        help="run the core figure this many times (fresh detector each) and report the median",
    )
    parser.add_argument(
        "--core-only", action="store_true", help="only the core figure (no broker, no worker)"
    )
    parser.add_argument("--worker-events", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=5000.0, help="offered load for latency")
    parser.add_argument("--latency-seconds", type=float, default=12.0)
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--lateness-hours", type=float, default=240.0)
    args = parser.parse_args(argv)

    say = print
    runs = sorted(core_throughput(args.core_events) for _ in range(max(1, args.core_runs)))
    core = statistics.median(runs)
    say(f"core      decode + Detector, all rules  {core:>10,.0f} events/s   (target >= 100,000)")
    if len(runs) > 1:
        say(f"          median of {len(runs)} runs, range {runs[0]:,.0f} - {runs[-1]:,.0f}")
    if args.core_only:
        return 0

    start = datetime.now(UTC) - timedelta(days=40)
    backlog = messages(args.worker_events, seed=5, start=start)
    live = messages(int(args.rate * args.latency_seconds), seed=6, start=start + timedelta(days=35))
    with LocalBroker() as broker:
        topology = load_topology(partitions=args.partitions)
        report = apply_topics_sync(broker.bootstrap, topology, security=KafkaSecurity())
        if not report.in_sync:
            say(report.format_table())
            return 1
        asyncio.run(produce_all(broker.bootstrap, backlog))
        port = free_port()
        keydir = Path(tempfile.mkdtemp(prefix="claimstream-bench-keys-"))
        audit_env = write_key_files(keydir).environment(keydir / "checkpoints")
        worker = start_worker(broker.url, port, args.partitions, args.lateness_hours, audit_env)
        try:
            first = wait(lambda: patient_records(port) > 0 and time.perf_counter(), 180, "start")
            n = len(backlog)
            last = wait(lambda: patient_records(port) >= n and time.perf_counter(), 600, "drain")
            rate = n / (last - first)
            s = status(port) or {}
            say(
                f"worker    one process, {args.partitions} partitions, backlog of {n:,}"
                f"  {rate:>8,.0f} events/s   (target >= 20,000)"
            )
            say(
                f"          handling {s.get('busy_seconds', 0):.1f} s of {last - first:.1f} s "
                f"(engine {s.get('process_seconds', 0):.1f}, outputs and re-keying "
                f"{s.get('output_seconds', 0):.1f}, state {s.get('state_seconds', 0):.1f}); "
                f"re-keyed {s.get('forwarded', 0):,}, dead letters {s.get('dead_letters', 0):,}"
            )
            latencies = asyncio.run(paced_latency(broker.bootstrap, live, args.rate))
            if latencies:
                say(
                    f"latency   event -> alert at {args.rate:,.0f} events/s offered "
                    f"({len(latencies)} alerts)  p50 {pct(latencies, 0.5) * 1000:,.0f} ms, "
                    f"p99 {pct(latencies, 0.99) * 1000:,.0f} ms   (target p99 <= 1,000 ms)"
                )
            else:
                say("latency   no alert arrived during the latency run")
        finally:
            terminate_group(worker, timeout=15)
            shutil.rmtree(keydir, ignore_errors=True)
    say(f"settings  allowed lateness {args.lateness_hours:g} h (see module docstring)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
