"""`python -m claimstream.devtools.bench` (`make bench`): the throughput, latency and memory
figures of docs/benchmarks.md, in one run on this machine.

1. core: decode + `Detector.process` in-process over pre-serialised simulated events, then
   with twenty custom template rules added;
2. baselines (`devtools/baselines.py`) on the worker's backlog: a plain aiokafka consumer, a
   do-nothing faust agent, the same agent on the worker's consumer and batch reader;
3. worker: one `claimstream worker` process draining that pre-loaded backlog from the local
   broker (events/s of input records, from the first to the last one handled, per the worker's
   `/status`), as a ratio to the baselines; all work: the input plus the re-keyed records,
   until the doctor and institution agents have caught up; all rules on;
4. latency: the same worker, caught up, fed at each offered load (`--rate`, repeatable; by
   default 2 000 and then 5 000 events/s); for every alert, the time from producing its
   completing event to the alert record being produced on the alerts topic (both stamped by
   this machine's clock), as p50/p99;
5. check: `POST /v1/check` at a fixed rate (default 200 checks/s, each an event of the live
   stream's patients, billed at an institution and doctor no simulated event names:
   `CLEAN_INSTITUTION`) on the idle worker, then billed as simulated (the reject path: the
   backlog's alerts got those institutions frozen), then while the same worker consumes a
   live stream (default 2 000 events/s): the time from sending each check to its answer, as
   p50/p99, and the count of each verdict (`check_latency`);
6. scale: the same kind of backlog (`--scale-events`) drained by one worker process and then
   by two (one group, each its share of the partitions), each on a fresh broker, the workers
   idle with their partitions assigned before the backlog is produced: input events/s and
   all-work records/s, and the ratios (`drain`);
7. state memory (`devtools/state_memory.py`): a patient state's JSON bytes and Python objects
   in process, then a fresh worker per store (`memory://`, `rocksdb://`) fed
   `--memory-patients` distinct patients: RSS per active patient and per 100 000, and each
   store's drain rate (events/s) side by side.

`--quick` runs every section at a small size (a few minutes): whether the bench still runs,
not figures to quote. The last line gives the cores and the load average at start and end.

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
import os
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
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


#: who the bench's checks bill (`--check-billing clean`): an institution and a doctor that no
#: simulated event names, so no freeze the backlog's alerts earn can apply to them (the
#: simulated institutions are all suspended by the sanctions ladder once the 100 000-event
#: backlog has run, and a check billed there measures the freeze path, not the rules: the
#: integration tests' `CLEAN_INSTITUTION` for the same reason)
CLEAN_INSTITUTION = "H-bench-clean"
CLEAN_DOCTOR = "D-bench-clean"


def check_bodies(
    stream: list[Message], rate: float, check_rate: float, *, clean: bool = True
) -> list[bytes]:
    """The checks sent while `stream` is produced at `rate`/s: `check_rate` of its events a
    second, each as it is about to be produced, under another id (evaluated in full, never
    taken for the event itself, which the worker may have processed already); `clean`: billed
    at `CLEAN_INSTITUTION` (and `CLEAN_DOCTOR` where the event names a doctor) instead of
    where the simulation billed it."""
    seconds = len(stream) / rate
    picked = [
        orjson.loads(stream[min(len(stream) - 1, int(i * rate / check_rate))][2])
        for i in range(int(seconds * check_rate))
    ]
    bodies = []
    for event in picked:
        event["event_id"] = f"{event['event_id']}-check"
        if clean:
            event["institution_id"] = CLEAN_INSTITUTION
            if event.get("doctor_id") is not None:
                event["doctor_id"] = CLEAN_DOCTOR
        bodies.append(orjson.dumps(event))
    return bodies


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
    latencies: list[float],
    outcomes: Counter[str],
    check_rate: float,
    stream_rate: float,
    billed: str = "billed at an institution and doctor no event names",
) -> str:
    """A check-latency line of `make bench` (`stream_rate` 0: an idle worker), its verdict
    counts on the next line."""
    answered = ", ".join(f"{name} {n:,}" for name, n in sorted(outcomes.items()))
    if not latencies:
        return f"check     no check was answered ({answered or 'none sent'})"
    while_ = f"while consuming {stream_rate:,.0f} events/s" if stream_rate else "on an idle worker"
    return (
        f"check     POST /v1/check at {check_rate:,.0f}/s {while_} ({len(latencies):,} "
        f"answered)  p50 {pct(latencies, 0.5) * 1000:,.1f} ms, p99 "
        f"{pct(latencies, 0.99) * 1000:,.1f} ms   (target p99 <= 50 ms)\n"
        f"          {billed}; verdicts: {answered}"
    )


def latency_lines(rate: float, measured: list[tuple[str, float]]) -> list[str]:
    """The event-to-alert lines of one offered load: all alerts, then per key kind."""
    latencies = [latency for _, latency in measured]
    if not latencies:
        return [f"latency   event -> alert at {rate:,.0f} events/s offered: no alert arrived"]
    lines = [
        f"latency   event -> alert at {rate:,.0f} events/s offered ({len(latencies):,} alerts)  "
        f"p50 {pct(latencies, 0.5) * 1000:,.0f} ms, p99 {pct(latencies, 0.99) * 1000:,.0f} ms"
        f"   (target p99 <= 1,000 ms)"
    ]
    for kind in ("patient", "doctor", "institution"):
        of_kind = [latency for k, latency in measured if k == kind]
        if of_kind:
            lines.append(
                f"          {kind + '-keyed rules':<24} ({len(of_kind):,} alerts)  "
                f"p50 {pct(of_kind, 0.5) * 1000:,.0f} ms, "
                f"p99 {pct(of_kind, 0.99) * 1000:,.0f} ms"
            )
    return lines


@dataclass(frozen=True, slots=True)
class Drain:
    """`workers` worker processes (one group) draining a backlog of `events` (`drain`)."""

    workers: int
    events: int
    #: input events/s, from the first input record handled to the last (all workers together)
    input_rate: float
    #: records re-keyed to the doctor and institution agents
    forwarded: int
    #: input plus re-keyed records per second, until the doctor/institution agents caught up
    all_work_rate: float
    #: each worker's share of the input records
    shares: tuple[int, ...]
    #: seconds the backlog took to produce (the workers drained it meanwhile, uncounted)
    produce_seconds: float = 0.0
    #: input records counted: those the workers had not handled yet once it was produced
    counted: int = 0


def scaling_lines(one: Drain, two: Drain) -> list[str]:
    """`make bench`'s 1 vs 2 worker processes lines, with the ratios."""
    lines = []
    for d in (one, two):
        shares = " + ".join(f"{n:,}" for n in d.shares)
        lines.append(
            f"scale     {d.workers} worker process{'es' if d.workers > 1 else '  '}, backlog of "
            f"{d.events:,}  {d.input_rate:>8,.0f} input events/s, {d.all_work_rate:>8,.0f} "
            f"records/s of all work (+{d.forwarded:,} re-keyed; input records {shares})"
        )
        lines.append(
            f"          counted over the last {d.counted:,} input records, from the moment the "
            f"backlog was on the broker ({d.produce_seconds:.1f} s to produce)"
            + ("  (too few to count: raise --scale-events)" if d.counted < d.events / 5 else "")
        )
    lines.append(
        f"          2 / 1 workers: input {two.input_rate / one.input_rate:.2f} x, all work "
        f"{two.all_work_rate / one.all_work_rate:.2f} x   (2 cores, shared with the broker)"
    )
    return lines


class Shares:
    """Called until it returns True: every worker on `ports` has a share of the input
    partitions, the shares are disjoint and cover `expected`, unchanged for `steady` s."""

    def __init__(self, ports: list[int], expected: set[str], steady: float = 3.0) -> None:
        self.ports, self.expected, self.steady = ports, expected, steady
        self.last: list[frozenset[str]] | None = None
        self.since = time.monotonic()

    def __call__(self) -> bool:
        shares = [frozenset((status(port) or {}).get("assigned", ())) for port in self.ports]
        union = frozenset().union(*shares)
        good = all(shares) and sum(len(s) for s in shares) == len(union) and self.expected <= union
        if not good or shares != self.last:
            self.last, self.since = (shares if good else None), time.monotonic()
            return False
        return time.monotonic() - self.since >= self.steady


def drain(backlog: list[Message], workers: int, partitions: int, lateness: float) -> Drain:
    """A fresh broker and `workers` worker processes (one group, all rules, sanctions and
    the keyed audit, each its own data and checkpoint directory), idle with their shares of
    the input partitions; then `backlog` is produced and drained. The rates are counted from
    the moment the whole backlog is on the broker (so the producer does not share the cores
    with the workers during the count, nor cap the rate) to the last input record handled (input
    events/s, over all the workers) and until the doctor and institution agents have taken
    every re-keyed record (all work: input plus re-keyed records, those handled before that
    moment not counted)."""
    with LocalBroker() as broker:
        topology = load_topology(partitions=partitions)
        report = apply_topics_sync(broker.bootstrap, topology, security=KafkaSecurity())
        if not report.in_sync:
            raise RuntimeError(report.format_table())
        inputs = {f"{s.name}:{p}" for s in topology.by_role("input") for p in range(partitions)}
        tmp = Path(tempfile.mkdtemp(prefix="claimstream-bench-scale-"))
        keys = write_key_files(tmp / "keys")
        ports: list[int] = []
        while len(ports) < workers:
            port = free_port()
            if port not in ports:
                ports.append(port)
        procs = []
        try:
            for i, port in enumerate(ports):
                env = {
                    **keys.environment(tmp / f"checkpoints-{i}"),
                    "CLAIMSTREAM_DATA_DIR": str(tmp / f"data-{i}"),
                }
                procs.append(start_worker(broker.url, port, partitions, lateness, env))
            wait(Shares(ports, inputs), 300, "each worker's share of the partitions")

            def handled() -> int:
                return sum(patient_records(port) for port in ports)

            def handed_over() -> int:
                return sum(rekeyed(port) for port in ports)

            began = time.perf_counter()
            asyncio.run(produce_all(broker.bootstrap, backlog))
            produced = time.perf_counter()
            input_before, rekeyed_before = handled(), handed_over()
            n = len(backlog)
            last = wait(lambda: handled() >= n and time.perf_counter(), 900, "the drain")
            shares = tuple(patient_records(port) for port in ports)
            forwarded = sum(int((status(port) or {}).get("forwarded", 0)) for port in ports)
            done = wait(
                lambda: handed_over() >= forwarded and time.perf_counter(),
                900,
                "the re-keyed records",
            )
        finally:
            for proc in procs:
                terminate_group(proc, timeout=15)
            shutil.rmtree(tmp, ignore_errors=True)
    return Drain(
        workers=workers,
        events=n,
        input_rate=(n - input_before) / (last - produced),
        forwarded=forwarded,
        all_work_rate=(n + forwarded - input_before - rekeyed_before) / (done - produced),
        shares=shares,
        produce_seconds=produced - began,
        counted=n - input_before,
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


#: the full run's sizes (`make bench`, ~10 min) and `--quick`'s (every section, a few minutes);
#: an option given on the command line wins over both
FULL: dict[str, Any] = {
    "core_events": 200_000,
    "worker_events": 100_000,
    "scale_events": 100_000,
    "latency_seconds": 12.0,
    "tail_seconds": 3.0,
    "check_seconds": 15.0,
    "check_idle_seconds": 5.0,
    "check_reject_seconds": 2.0,
    "memory_patients": 12_500,
}
QUICK: dict[str, Any] = {
    "core_events": 20_000,
    "worker_events": 10_000,
    "scale_events": 10_000,
    "latency_seconds": 3.0,
    "tail_seconds": 2.0,
    "check_seconds": 3.0,
    "check_idle_seconds": 1.0,
    "check_reject_seconds": 1.0,
    "memory_patients": 1_000,
}
#: offered loads of the latency figure unless `--rate` is given (issue #17)
RATES = (2000.0, 5000.0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m claimstream.devtools.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="every section at a small size (a few minutes): does the bench still run?",
    )
    parser.add_argument("--core-events", type=int, help="default 200 000 (--quick 20 000)")
    parser.add_argument(
        "--core-runs",
        type=int,
        default=1,
        help="run the core figure this many times (fresh detector each) and report the median",
    )
    parser.add_argument(
        "--core-only", action="store_true", help="only the core figure (no broker, no worker)"
    )
    parser.add_argument("--worker-events", type=int, help="default 100 000 (--quick 10 000)")
    parser.add_argument(
        "--scale-events",
        type=int,
        help="the backlog 1 and then 2 worker processes drain (0: skip; default 100 000, "
        "--quick 10 000)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        action="append",
        help="an offered load for the latency figure, events/s (repeatable; default 2000 and 5000)",
    )
    parser.add_argument("--latency-seconds", type=float, help="per offered load (default 12)")
    parser.add_argument(
        "--tail-seconds",
        type=float,
        help="how long alerts of a latency run are awaited after its last event (default 3)",
    )
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--lateness-hours", type=float, default=1.0)
    parser.add_argument("--check-rate", type=float, default=200.0, help="checks/s offered")
    parser.add_argument(
        "--check-stream-rate", type=float, default=2000.0, help="events/s during the checks"
    )
    parser.add_argument("--check-seconds", type=float, help="default 15")
    parser.add_argument(
        "--check-idle-seconds",
        type=float,
        help="first check an idle worker this long (0: skip), for the check's own cost (default 5)",
    )
    parser.add_argument(
        "--check-reject-seconds",
        type=float,
        help="then check it this long with the events billed where the simulation billed them "
        "(institutions the sanctions ladder froze: the reject path; 0: skip; default 2)",
    )
    parser.add_argument(
        "--memory-patients",
        type=int,
        help="patients fed to a worker per store for the state-memory figure (0: skip it; "
        "default 12 500, --quick 1 000)",
    )
    parser.add_argument(
        "--memory-json", type=Path, help="also write the state-memory figures here (JSON)"
    )
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.rate = sorted(args.rate or RATES)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    load_before = os.getloadavg()
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
        say(settings_line(args, load_before))
        return 0

    # the timeline, in event time: the backlog (a month), one month per offered load, then the
    # checks' day; it ends ~26 days past the wall clock, within the worker's future skew
    start = datetime.now(UTC) - timedelta(days=40 + 31 * (len(args.rate) - 1))
    backlog = messages(args.worker_events, seed=5, start=start)
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
        audit_env["CLAIMSTREAM_DATA_DIR"] = str(keydir / "data")
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
            drained = n
            for i, offered in enumerate(args.rate):
                # each offered load starts from a worker that has caught up with everything
                settled(port, 600)
                live = messages(
                    int(offered * args.latency_seconds),
                    seed=6 + i,
                    start=start + timedelta(days=35 + 31 * i),
                )
                measured = asyncio.run(
                    paced_latency(broker.bootstrap, live, offered, args.tail_seconds)
                )
                for line in latency_lines(offered, measured):
                    say(line)
                drained += len(live)
                wait(
                    lambda total=drained: patient_records(port) >= total,
                    900,
                    "the latency run drained",
                )
            checked = check_stream(
                int(args.check_stream_rate * args.check_seconds),
                start + timedelta(days=35 + 31 * len(args.rate)),
            )
            web = f"http://127.0.0.1:{port}"
            settled(port, 600)  # the re-keyed doctor and institution work too

            def idle_checks(seconds: float, *, clean: bool) -> tuple[list[float], Counter[str]]:
                bodies = check_bodies(checked, args.check_stream_rate, args.check_rate, clean=clean)
                count = int(seconds * args.check_rate)
                return asyncio.run(send_checks(web, token, bodies[:count], args.check_rate))

            if args.check_idle_seconds > 0:  # the check's own cost, without a stream to serve
                found = idle_checks(args.check_idle_seconds, clean=True)
                say(check_report(*found, args.check_rate, 0))
            if args.check_reject_seconds > 0:  # billed where the simulation billed them
                found = idle_checks(args.check_reject_seconds, clean=False)
                billed = "billed where the simulation billed them (the reject path)"
                say(check_report(*found, args.check_rate, 0, billed=billed))
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
    if args.scale_events > 0:
        scale_backlog = messages(args.scale_events, seed=5, start=start)
        one, two = (
            drain(scale_backlog, workers, args.partitions, args.lateness_hours)
            for workers in (1, 2)
        )
        for line in scaling_lines(one, two):
            say(line)
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
    say(settings_line(args, load_before))
    return 0


def settings_line(args: argparse.Namespace, load_before: tuple[float, float, float]) -> str:
    """The last line: what the figures were measured with and on (cores, load average)."""
    after = os.getloadavg()
    return (
        f"settings  allowed lateness {args.lateness_hours:g} h (see module docstring)"
        f"{', --quick sizes' if args.quick else ''}; {os.cpu_count()} cores, load average "
        f"(1 min) {load_before[0]:.1f} at the start, {after[0]:.1f} at the end"
    )


if __name__ == "__main__":
    sys.exit(main())
