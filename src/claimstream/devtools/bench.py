"""`python -m claimstream.devtools.bench` (`make bench`): three throughput/latency figures.

1. core: decode + `Detector.process` in-process over pre-serialised simulated events;
2. worker: one `claimstream worker` process draining a pre-loaded backlog from the local broker
   (events/s of input records, from the first to the last one handled, per the worker's
   `/status`); all rules on;
3. latency: the same worker fed at a fixed offered load (default 5 000 events/s); for every
   alert, the time from producing its completing event to the alert record being produced on
   the alerts topic (both stamped by this machine's clock), as p50/p99;
4. check: `POST /v1/check` at a fixed rate (default 200 checks/s, each an event of the live
   stream's patients) while the same worker consumes a live stream (default 2 000 events/s):
   the time from sending each check to its answer, as p50/p99 (`check_latency`);
5. state memory (`devtools/state_memory.py`): a patient state's JSON bytes and Python objects
   in process, then a fresh worker per store (`memory://`, `rocksdb://`) fed
   `--memory-patients` distinct patients: RSS per active patient and per 100 000, and each
   store's drain rate (events/s) side by side.

The worker runs with the default allowed lateness (`--lateness-hours`, 1 h): the simulated
stream packs a month into seconds, and the input partitions are drained at their own pace, but
doctor and institution rules see their events in event-time order once the input partitions'
watermark has passed them by the alignment slack (docs/time.md §5), so a catch-up makes no
event late. The latency figure is also given per key kind of the alerting rule: a doctor's or
institution's alert waits for that watermark (the slack is 1 h of event time, milliseconds of
wall time in this compressed stream) and for the next watermark marker (about a second). With
the default thresholds the simulated stream has no doctor or institution alert; to see some,
lower them through the environment the worker inherits, e.g.
`CLAIMSTREAM_RULE__DOCTOR_CONSULTATION_RATE__MIN_CONSULTATIONS=3`.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from claimstream.audit.keyfiles import write_key_files
from claimstream.detection.config import DetectionConfig
from claimstream.detection.decode import decode_event
from claimstream.detection.detector import Detector
from claimstream.devtools.baselines import faust_rate, plain_rate
from claimstream.devtools.bench_worker import (
    TOPIC_OF,
    Message,
    messages,
    patient_records,
    produce_all,
    rekeyed,
    settled,
    start_worker,
    status,
    wait,
)
from claimstream.devtools.localbroker import LocalBroker
from claimstream.devtools.simulate import generate
from claimstream.devtools.subproc import free_port, terminate_group
from claimstream.kafka.admin import apply_topics_sync
from claimstream.kafka.security import KafkaSecurity
from claimstream.kafka.topology import load_topology
from claimstream.model.events import Event
from claimstream.rules import RULES
from claimstream.stream.collector import tune as tune_collector
from claimstream.stream.http.access import token_line


def twenty_custom_rules() -> dict[str, dict[str, Any]]:
    """Twenty custom template rules of the kinds a supervisor writes (issue #14's benchmark):
    five of each of window_count over claims and over consultations, window_sum, duplicate."""
    rules: dict[str, dict[str, Any]] = {}
    for i in range(5):
        rules[f"bench_high_cost_{i}"] = {
            "template": "window_count",
            "event_types": ["claim"],
            "filter": f"event.total_amount > {500.0 + 100 * i}",
            "window_days": 7,
            "min_count": 3 + i,
        }
        rules[f"bench_online_{i}"] = {
            "template": "window_count",
            "event_types": ["consultation"],
            "filter": 'event.mode == "online"',
            "window_days": 10 + i,
            "min_count": 15 + i,
        }
        rules[f"bench_fund_sum_{i}"] = {
            "template": "window_sum",
            "event_types": ["claim"],
            "filter": 'event.visit_type == "outpatient"',
            "value": "event.fund_amount",
            "window_days": 30,
            "min_sum": 5000.0 + 1000 * i,
        }
        rules[f"bench_same_drug_{i}"] = {
            "template": "duplicate",
            "event_types": ["dispense"],
            "filter": f"event.days_supply > {i}",
            "value": "event.drug_code",
            "window_days": 7 + i,
        }
    return rules


def core_throughput(count: int, config: DetectionConfig | None = None) -> float:
    raw = [orjson.dumps(e) for e in generate(count, seed=3)]
    detector = Detector(config or DetectionConfig.default(), clock=time.time)
    started = time.perf_counter()
    for line in raw:
        event = decode_event(line)
        if isinstance(event, Event):
            detector.process(event)
    return count / (time.perf_counter() - started)


async def paced_latency(
    bootstrap: str, batch: list[Message], rate: float, tail: float = 3.0
) -> list[tuple[str, float]]:
    """Produce `batch` at `rate`/s; return the key kind of the alerting rule and the latency
    (seconds) of every alert it causes until `tail` seconds after the last event."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    sent: dict[str, float] = {}
    latencies: list[tuple[str, float]] = []
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
                        kind = RULES[alert["rule"]].key_kind
                        latencies.append((kind, r.timestamp / 1000 - max(times)))

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
        await asyncio.sleep(tail)  # the last alerts of the run
    finally:
        done.set()
        await watcher
        await producer.stop()
        await consumer.stop()
    return latencies


def check_bodies(stream: list[Message], rate: float, check_rate: float) -> list[bytes]:
    """The checks sent while `stream` is produced at `rate`/s: `check_rate` of its events a
    second, each as it is about to be produced, under another id (evaluated in full, never
    taken for the event itself, which the worker may have processed already)."""
    seconds = len(stream) / rate
    picked = [
        orjson.loads(stream[min(len(stream) - 1, int(i * rate / check_rate))][2])
        for i in range(int(seconds * check_rate))
    ]
    return [orjson.dumps({**event, "event_id": f"{event['event_id']}-check"}) for event in picked]


async def send_checks(
    worker: str, token: str, checks: list[bytes], check_rate: float
) -> tuple[list[float], Counter[str]]:
    """POST each of `checks` to `worker` at `check_rate`/s (open loop: a check is sent on
    schedule whether or not the ones before it were answered); return each answered check's
    latency (seconds) and the count of each outcome (a decision, or `HTTP <status>` / the
    error)."""
    from claimstream.client import AsyncClient, ClaimstreamError, RequestRefused, Retry

    latencies: list[float] = []
    outcomes: Counter[str] = Counter()

    async def one(client: AsyncClient, body: bytes) -> None:
        started = time.perf_counter()
        try:
            result = await client.check(body)
        except RequestRefused as exc:
            outcomes[f"HTTP {exc.status} {exc.reason or ''}".strip()] += 1
            return
        except ClaimstreamError as exc:
            outcomes[type(exc).__name__] += 1
            return
        latencies.append(time.perf_counter() - started)
        outcomes[result.decision] += 1
        if result.freezes:
            outcomes["(a freeze in force)"] += 1
        if result.violations:
            outcomes["(with violations)"] += 1

    async with AsyncClient(worker, token, timeout=5.0, retry=Retry(retries=0)) as client:
        pending: list[asyncio.Task[None]] = []
        t0 = time.monotonic()
        for i, body in enumerate(checks):
            delay = t0 + i / check_rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(one(client, body)))
        await asyncio.gather(*pending)
    return latencies, outcomes


async def check_latency(
    bootstrap: str,
    worker: str,
    token: str,
    stream: list[Message],
    rate: float,
    check_rate: float,
) -> tuple[list[float], Counter[str]]:
    """Produce `stream` at `rate`/s and meanwhile check its events at `check_rate`/s on
    `worker` (`send_checks`)."""
    checks = check_bodies(stream, rate, check_rate)
    # the live stream comes from a process of its own: producing 2 000 events/s in this
    # process's event loop would delay the checks' answers here and count that as the worker's
    producing = multiprocessing.get_context("spawn").Process(
        target=produce_paced, args=(bootstrap, stream, rate), daemon=True
    )
    producing.start()
    try:
        found = await send_checks(worker, token, checks, check_rate)
        await asyncio.to_thread(producing.join, len(stream) / rate + 60)
    finally:
        if producing.is_alive():
            producing.terminate()
            producing.join(5)
    return found


def produce_paced(bootstrap: str, stream: list[Message], rate: float) -> None:
    """Produce `stream` at `rate` events/s (the check figure's live stream, in a child
    process)."""
    from aiokafka import AIOKafkaProducer

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=1)
        await producer.start()
        try:
            t0 = time.monotonic()
            for i, (topic, key, value, _) in enumerate(stream):
                delay = t0 + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await producer.send(topic, value=value, key=key)
            await producer.flush()
        finally:
            await producer.stop()

    asyncio.run(produce())


def check_stream(count: int, start: datetime) -> list[Message]:
    """A live stream for the check figure: the backlog's patients, after the latency run's
    stream in event time (so nothing is late) and within the worker's future skew."""
    from claimstream.devtools.simulate import Simulator

    return [
        (TOPIC_OF[e["event_type"]], e["patient_id"].encode(), orjson.dumps(e), e["event_id"])
        for e in Simulator(count, seed=7, start=start, span_days=1).events()
    ]


def check_report(
    latencies: list[float], outcomes: Counter[str], check_rate: float, stream_rate: float
) -> str:
    """A check-latency line of `make bench` (`stream_rate` 0: an idle worker)."""
    answered = ", ".join(f"{name} {n:,}" for name, n in sorted(outcomes.items()))
    if not latencies:
        return f"check     no check was answered ({answered or 'none sent'})"
    while_ = f"while consuming {stream_rate:,.0f} events/s" if stream_rate else "on an idle worker"
    return (
        f"check     POST /v1/check at {check_rate:,.0f}/s {while_} ({len(latencies):,} "
        f"answered)  p50 {pct(latencies, 0.5) * 1000:,.1f} ms, p99 "
        f"{pct(latencies, 0.99) * 1000:,.1f} ms   (target p99 <= 50 ms)\n"
        f"          answers: {answered}"
    )


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
    parser.add_argument(
        "--tail-seconds",
        type=float,
        default=3.0,
        help="how long alerts of the latency run are awaited after its last event",
    )
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--lateness-hours", type=float, default=1.0)
    parser.add_argument("--check-rate", type=float, default=200.0, help="checks/s offered")
    parser.add_argument(
        "--check-stream-rate", type=float, default=2000.0, help="events/s during the checks"
    )
    parser.add_argument("--check-seconds", type=float, default=15.0)
    parser.add_argument(
        "--check-idle-seconds",
        type=float,
        default=5.0,
        help="first check an idle worker this long (0: skip), for the check's own cost",
    )
    parser.add_argument(
        "--memory-patients",
        type=int,
        default=12_500,
        help="patients fed to a worker per store for the state-memory figure (0: skip it)",
    )
    parser.add_argument(
        "--memory-json", type=Path, help="also write the state-memory figures here (JSON)"
    )
    args = parser.parse_args(argv)

    say = print
    tune_collector()  # the core figures with the worker's collector settings
    runs = sorted(core_throughput(args.core_events) for _ in range(max(1, args.core_runs)))
    core = statistics.median(runs)
    say(f"core      decode + Detector, all rules  {core:>10,.0f} events/s   (target >= 100,000)")
    if len(runs) > 1:
        say(f"          median of {len(runs)} runs, range {runs[0]:,.0f} - {runs[-1]:,.0f}")
    custom = DetectionConfig.default().with_custom(twenty_custom_rules(), {})
    with_custom = statistics.median(
        sorted(core_throughput(args.core_events, custom) for _ in range(max(1, args.core_runs)))
    )
    say(
        f"core      + 20 custom template rules    {with_custom:>10,.0f} events/s   "
        f"({100 * (1 - with_custom / core):.0f} % below the built-ins; budget <= 30 %)"
    )
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
        inputs = [spec.name for spec in topology.by_role("input")]
        plain = asyncio.run(plain_rate(broker.bootstrap, inputs, len(backlog)))
        noop = faust_rate(broker.url, inputs, len(backlog))
        ours = faust_rate(broker.url, inputs, len(backlog), reader="batches")
        say(f"baseline  plain aiokafka consumer + orjson decode {plain:>10,.0f} events/s")
        say(f"baseline  do-nothing faust agent, per event       {noop:>10,.0f} events/s")
        say(f"baseline  do-nothing agent, the worker's consumer {ours:>10,.0f} events/s")
        say("          (its delivery without wait_first, Handover and batch reader)")
        port = free_port()
        keydir = Path(tempfile.mkdtemp(prefix="claimstream-bench-keys-"))
        audit_env = write_key_files(keydir).environment(keydir / "checkpoints")
        token = "cs_bench-" + secrets.token_urlsafe(16)  # a settlement token for the checks
        audit_env["CLAIMSTREAM_API_TOKENS"] = token_line("bench", "settlement", token)
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
                f"          {rate / noop:.2f} x the do-nothing faust agent (target >= 1.8 x), "
                f"{rate / plain:.3f} x the plain consumer"
            )
            forwarded = int(s.get("forwarded", 0))
            all_done = wait(
                lambda: rekeyed(port) >= forwarded and time.perf_counter(), 600, "re-keyed"
            )
            say(
                f"          all work (input + {forwarded:,} re-keyed records, until the doctor "
                f"and institution agents caught up): {(n + forwarded) / (all_done - first):,.0f} "
                f"records/s, {all_done - last:.1f} s after the last input event"
            )
            say(
                f"          handling {s.get('busy_seconds', 0):.1f} s of {last - first:.1f} s "
                f"(engine {s.get('process_seconds', 0):.1f}, outputs and re-keying "
                f"{s.get('output_seconds', 0):.1f}, state {s.get('state_seconds', 0):.1f}); "
                f"re-keyed {s.get('forwarded', 0):,}, dead letters {s.get('dead_letters', 0):,}"
            )
            measured = asyncio.run(
                paced_latency(broker.bootstrap, live, args.rate, args.tail_seconds)
            )
            latencies = [latency for _, latency in measured]
            if latencies:
                say(
                    f"latency   event -> alert at {args.rate:,.0f} events/s offered "
                    f"({len(latencies)} alerts)  p50 {pct(latencies, 0.5) * 1000:,.0f} ms, "
                    f"p99 {pct(latencies, 0.99) * 1000:,.0f} ms   (target p99 <= 1,000 ms)"
                )
                for kind in ("patient", "doctor", "institution"):
                    of_kind = [latency for k, latency in measured if k == kind]
                    if of_kind:
                        say(
                            f"          {kind + '-keyed rules':<24} ({len(of_kind)} alerts)  "
                            f"p50 {pct(of_kind, 0.5) * 1000:,.0f} ms, "
                            f"p99 {pct(of_kind, 0.99) * 1000:,.0f} ms"
                        )
            else:
                say("latency   no alert arrived during the latency run")
            # the latency run offers more than one worker drains: start from a caught-up worker
            drained = n + len(live)
            wait(lambda: patient_records(port) >= drained, 600, "the latency run drained")
            checked = check_stream(
                int(args.check_stream_rate * args.check_seconds), start + timedelta(days=63)
            )
            web = f"http://127.0.0.1:{port}"
            if args.check_idle_seconds > 0:  # the check's own cost, without a stream to serve
                settled(port, 300)  # the re-keyed doctor and institution work too
                idle = check_bodies(checked, args.check_stream_rate, args.check_rate)
                idle = idle[: int(args.check_idle_seconds * args.check_rate)]
                found = asyncio.run(send_checks(web, token, idle, args.check_rate))
                say(check_report(*found, args.check_rate, 0))
            found = asyncio.run(
                check_latency(
                    broker.bootstrap, web, token, checked, args.check_stream_rate, args.check_rate
                )
            )
            say(check_report(*found, args.check_rate, args.check_stream_rate))
            caught_up = time.perf_counter()
            wait(lambda: patient_records(port) >= drained + len(checked), 600, "the check run")
            behind = time.perf_counter() - caught_up
            say(f"          the live stream was all handled {behind:.1f} s after its last event")
        finally:
            terminate_group(worker, timeout=15)
            shutil.rmtree(keydir, ignore_errors=True)
    if args.memory_patients > 0:
        from claimstream.devtools import state_memory

        memory = state_memory.measure(args.memory_patients)
        for line in state_memory.footprint_lines(memory["footprint"]):
            say(line)
        for line in state_memory.store_lines(memory["stores"]):
            say(line)
        if args.memory_json is not None:
            args.memory_json.write_bytes(
                orjson.dumps(state_memory.as_json(memory), option=orjson.OPT_INDENT_2)
            )
    say(f"settings  allowed lateness {args.lateness_hours:g} h (see module docstring)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
