"""`python -m claimstream.devtools.soak` (`make soak`): does a worker's memory stay flat when it
cannot keep up?

Starts the local broker and one `claimstream worker`, offers it a load above its capacity for
`--minutes` (default 5) and samples, every `--interval` seconds, the worker's resident memory
(RSS, from /proc) and its consumer lag (the `claimstream_consumer_lag` gauge it serves on
`/metrics`). At the end it reports the RSS after the warm-up and at the end (each the median of
5 samples, so one transient fetch buffer does not decide) and the highest sample, the lag at
both ends and the verdict: "flat within 10 %" when the RSS at the end is at most 10 % above
the RSS after the warm-up, else "NOT flat".

A lag that does not grow means the load was not above capacity, and the verdict says so: raise
`--rate`. The simulated patients are a fixed population (`--patients`), so the state the rules
keep reaches its size during the warm-up instead of growing with every new patient: what grows
after that is what the worker buffers.

`--trace-memory DIR` runs the worker with a thread that writes, every minute, where its memory
is to DIR/memory-NN.txt: glibc's heap (in use and free), the size of every table and of the
in-process registry, what aiokafka's fetcher and the agents' queues hold, the most numerous
objects; Python's allocator statistics go to the worker's log. With `--trace-frames N` it also
runs tracemalloc (N frames per allocation) and lists the allocation sites that grew most; that
slows the worker down a lot. This is how the worker's memory was found to be rule state, fetch
buffers and a fragmented C heap; see docs/resilience.md.

A soak is a measurement, not a test: it needs minutes and a quiet machine. Exit code 0 when
the RSS stayed flat under overload, 1 when it did not (or the load was not an overload), 3 when
the broker or the worker did not come up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from claimstream.audit.keyfiles import write_key_files
from claimstream.devtools.localbroker import BrokerStartError, LocalBroker
from claimstream.devtools.simulate import Simulator
from claimstream.devtools.subproc import die_with_parent, free_port, terminate_group
from claimstream.kafka.admin import apply_topics_sync
from claimstream.kafka.security import KafkaSecurity
from claimstream.kafka.topology import load_topology

TOPIC_OF = {
    "dispense": "settlement.dispensing.v1",
    "consultation": "settlement.consultations.v1",
    "admission": "settlement.stays.v1",
    "discharge": "settlement.stays.v1",
    "claim": "settlement.claims.v1",
}
#: simulated days the offered load covers: years, so that the rules' windows (90 days at most)
#: expire during the warm-up and their state stops growing (see the module docstring)
SPAN_DAYS = 3650.0
#: allowed lateness: a partition read ahead of another during the overload must not turn the
#: other's events into late dead letters (a day of simulated time passes in seconds)
LATENESS_HOURS = 48
#: "flat": the RSS at the end is at most this much above the RSS after the warm-up
FLAT = 0.10
#: samples whose median is the RSS "after the warm-up" and "at the end"
EDGE = 5
#: seconds after the warm-up below which a "flat" verdict cannot tell a slow growth
SHORT = 180.0
_LAG = re.compile(r"^claimstream_consumer_lag\{[^}]*\} ([0-9.e+]+)$", re.MULTILINE)
_CONSUMED = re.compile(r"^claimstream_events_consumed_total\{[^}]*\} ([0-9.e+]+)$", re.MULTILINE)

#: Runs the worker with a thread that writes, every minute, where its memory is (--trace-memory):
#: glibc's heap (mallinfo2), Python's small-object allocator, the most numerous object types
#: and, when tracemalloc runs (TRACE_FRAMES > 0), the allocation sites that grew most.
_TRACED_WORKER = """
import collections, ctypes, gc, sys, threading, time, tracemalloc
out, frames = sys.argv[1], int(sys.argv[2])
if frames:
    tracemalloc.start(frames)
FIELDS = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in FIELDS.split()]
libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
def dump():
    first = None
    n = 0
    while True:
        time.sleep(60)
        n += 1
        m = libc.mallinfo2()
        with open(f"{out}/memory-{n:02d}.txt", "w") as fh:
            fh.write(f"glibc: heap {m.arena/1e6:.1f} MB, mmapped {m.hblkhd/1e6:.1f} MB, "
                     f"in use {m.uordblks/1e6:.1f} MB, free {m.fordblks/1e6:.1f} MB\\n")
            objs = gc.get_objects()
            types = collections.Counter(type(o).__name__ for o in objs)
            def deep(o):
                seen = set()
                todo, total = [o], 0
                while todo:
                    x = todo.pop()
                    if id(x) in seen:
                        continue
                    seen.add(id(x))
                    total += sys.getsizeof(x)
                    if isinstance(x, dict):
                        todo.extend(x.keys()); todo.extend(x.values())
                    elif isinstance(x, (list, tuple, set, frozenset)):
                        todo.extend(x)
                return total
            for o in objs:
                name = type(o).__name__
                if name == "Table":
                    raw = getattr(getattr(o.data, "data", None), "raw", None)
                    if raw is not None:  # the compact store: the states' bytes
                        fh.write(f"table {o.name}: {len(raw)} keys, "
                                 f"{deep(raw)/1e6:.1f} MB as bytes\\n")
                    else:
                        copy = dict(o.data.items())
                        fh.write(f"table {o.name}: {len(o.data)} keys, "
                                 f"{deep(copy)/1e6:.1f} MB\\n")
                elif name == "MemoryRegistry":
                    fh.write(f"registry: {len(o.data)} keys {len(o.markers)} markers, "
                             f"{(deep(o.data) + deep(o.markers))/1e6:.1f} MB\\n")
                elif name == "Fetcher" and type(o).__module__.startswith("aiokafka"):
                    held = [r._partition_records for r in o._records.values()
                            if getattr(r, "_partition_records", None) is not None]
                    size = sum(p._records.size_in_bytes() for p in held)
                    fh.write(f"aiokafka fetcher: {len(held)} partitions, {size/1e6:.1f} MB\\n")
                elif name in ("ThrowableQueue", "FlowControlQueue") and o.qsize():
                    fh.write(f"queue: {o.qsize()} of {o.maxsize}\\n")
                elif name in ("KeyedProcessor",):
                    fh.write(f"{name} homes {len(o.homes)}: {deep(o.homes)/1e6:.1f} MB\\n")
            del objs
            fh.write("gc objects: " + ", ".join(f"{k} {v}" for k, v in types.most_common(15)))
            fh.write("\\n")
            if frames:
                snap = tracemalloc.take_snapshot().filter_traces(
                    [tracemalloc.Filter(False, tracemalloc.__file__)])
                current, peak = tracemalloc.get_traced_memory()
                own = tracemalloc.get_tracemalloc_memory()
                fh.write(f"traced {current/1e6:.1f} MB (peak {peak/1e6:.1f} MB, "
                         f"tracemalloc itself {own/1e6:.1f} MB)\\n")
                if first is None:
                    first = snap
                else:
                    for stat in snap.compare_to(first, "traceback")[:25]:
                        fh.write(f"\\n{stat.size_diff/1e6:+.1f} MB {stat.count_diff:+d} blocks "
                                 f"(now {stat.size/1e6:.1f} MB)\\n")
                        fh.write("\\n".join(stat.traceback.format(limit=frames)) + "\\n")
        sys.stderr.write(f"--- pymalloc statistics {n} ---\\n")
        sys._debugmallocstats()
threading.Thread(target=dump, daemon=True).start()
from claimstream.cli.main import main
sys.exit(main(["worker", "--skip-topic-check"]))
"""


@dataclass(slots=True)
class Sample:
    at: float  # seconds since the load started
    rss_mb: float
    lag: int | None
    consumed: int | None


@dataclass(slots=True)
class Soak:
    rate: float
    minutes: float
    warmup: float
    samples: list[Sample] = field(default_factory=list)
    produced: int = 0

    def after_warmup(self) -> list[Sample]:
        return [s for s in self.samples if s.at >= self.warmup]

    def levels(self) -> tuple[float, float, float] | None:
        """RSS at the start (median of the first `EDGE` samples after the warm-up), at the end
        (median of the last `EDGE`) and the highest sample; None with too few samples."""
        steady = self.after_warmup()
        if len(steady) < 2 * EDGE:
            return None
        rss = [s.rss_mb for s in steady]
        return statistics.median(rss[:EDGE]), statistics.median(rss[-EDGE:]), max(rss)

    def verdict(self) -> tuple[bool, str]:
        levels = self.levels()
        if levels is None:
            return False, "too few samples after the warm-up (run longer)"
        steady = self.after_warmup()
        lags = [s.lag for s in steady if s.lag is not None]
        if len(lags) < 2 or lags[-1] <= lags[0]:
            return False, "the lag did not grow: the load was not above capacity (raise --rate)"
        start, end, _ = levels
        growth = end / start - 1
        if growth <= FLAT:
            span = steady[-1].at - steady[0].at
            short = (
                f"; only {span:.0f} s after the warm-up, too short to tell a slow growth "
                "(see the trend; run 5 minutes or more)"
                if span < SHORT
                else ""
            )
            return True, f"flat within {FLAT:.0%} ({growth:+.1%} from start to end){short}"
        return False, f"NOT flat: {growth:+.1%} from start to end"

    def trend(self) -> float | None:
        """RSS growth after the warm-up in MB per minute (least squares over the samples);
        None with fewer than two samples."""
        steady = self.after_warmup()
        if len(steady) < 2 or steady[0].at == steady[-1].at:
            return None
        slope, _ = statistics.linear_regression([s.at for s in steady], [s.rss_mb for s in steady])
        return slope * 60

    def report(self) -> str:
        steady = self.after_warmup()
        lines = [
            f"offered {self.rate:,.0f} events/s for {self.minutes:g} min "
            f"({self.produced:,} events produced)"
        ]
        if self.samples:
            lines.append(f"RSS when the load began     {self.samples[0].rss_mb:7.1f} MB")
        levels = self.levels()
        if levels is not None:
            start, end, highest = levels
            first, last = steady[0], steady[-1]
            lines += [
                f"RSS after the warm-up       {start:7.1f} MB  (median of {EDGE} samples from "
                f"t={first.at:.0f} s; lag {_n(first.lag)})",
                f"RSS at the end              {end:7.1f} MB  (median of the last {EDGE}; "
                f"t={last.at:.0f} s, lag {_n(last.lag)})",
                f"RSS highest                 {highest:7.1f} MB",
            ]
            trend = self.trend()
            if trend is not None:
                lines.append(
                    f"RSS trend after the warm-up {trend:+7.1f} MB/min  (least squares over "
                    f"{len(steady)} samples; flat on an endless stream is ~0)"
                )
            span = last.at - first.at
            if span > 0 and first.consumed is not None and last.consumed is not None:
                rate = (last.consumed - first.consumed) / span
                lines.append(f"worker consumed             {rate:7,.0f} events/s after the warm-up")
        lines.append(f"verdict: {self.verdict()[1]}")
        return "\n".join(lines)


def _n(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def rss_mb(pid: int) -> float:
    """Resident memory of process `pid` in MB (VmRSS from /proc, Linux)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def scrape(port: int) -> tuple[int | None, int | None]:
    """(summed consumer lag, events consumed) from the worker's /metrics; None when absent."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None, None
    lags = _LAG.findall(text)
    consumed = _CONSUMED.findall(text)
    return (
        int(sum(float(v) for v in lags)) if lags else None,
        int(sum(float(v) for v in consumed)) if consumed else None,
    )


def start_worker(
    broker_url: str,
    port: int,
    partitions: int,
    interval: float,
    log: Path,
    trace_dir: Path | None,
    trace_frames: int,
    extra_env: dict[str, str],
) -> subprocess.Popen[bytes]:
    env = {
        # its broker is a plaintext local one, whatever the shell's CLAIMSTREAM_KAFKA_* say
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CLAIMSTREAM_AUDIT_", "CLAIMSTREAM_KAFKA_"))
        },
        "CLAIMSTREAM_BROKER_URL": broker_url,
        "CLAIMSTREAM_BROKER_FLAVOR": "tansu",
        "CLAIMSTREAM_WEB_PORT": str(port),
        "CLAIMSTREAM_PARTITIONS": str(partitions),
        # a month of simulated time goes by in minutes: see claimstream.devtools.bench
        "CLAIMSTREAM_ENGINE__ALLOWED_LATENESS_HOURS": str(LATENESS_HOURS),
        "CLAIMSTREAM_GAUGE_INTERVAL": str(interval),
        "CLAIMSTREAM_APP_ID": "claimstream-soak",
        "CLAIMSTREAM_LOG_LEVEL": "WARNING",
        # a traced worker keeps CPython's collector settings: the worker's own freeze what
        # exists once its app is built, and gc.get_objects() does not list frozen objects, so
        # the census would miss the tables, the registry and the processors
        **({"CLAIMSTREAM_GC_THRESHOLDS": "python"} if trace_dir is not None else {}),
        **extra_env,
    }
    if "CLAIMSTREAM_REDIS_URL" not in extra_env:
        env.pop("CLAIMSTREAM_REDIS_URL", None)
    if trace_dir is not None:
        argv = [sys.executable, "-c", _TRACED_WORKER, str(trace_dir), str(trace_frames)]
    else:
        argv = [sys.executable, "-m", "claimstream", "worker", "--skip-topic-check"]
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )


def wait_assigned(proc: subprocess.Popen[bytes], port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as r:
                if orjson.loads(r.read()).get("assigned"):
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


async def offer(
    bootstrap: str, soak: Soak, patients: int, span_days: float, seconds: float, stop: asyncio.Event
) -> None:
    """Produce simulated events at `soak.rate` per second for `seconds`, in 50 ms slices."""
    from aiokafka import AIOKafkaProducer

    total = int(soak.rate * seconds) + 1
    start = datetime.now(UTC) - timedelta(days=span_days)
    events = Simulator(total, seed=11, start=start, patients=patients, span_days=span_days).events()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024, acks=1
    )
    await producer.start()
    try:
        began = time.monotonic()
        while not stop.is_set():
            elapsed = time.monotonic() - began
            if elapsed >= seconds:
                break
            due = min(total, int(soak.rate * (elapsed + 0.05)))
            futures = []
            while soak.produced < due:
                if soak.produced % 256 == 0:
                    await asyncio.sleep(0)  # let the sampler run when producing falls behind
                e = next(events)
                futures.append(
                    await producer.send(
                        TOPIC_OF[e["event_type"]],
                        key=e["patient_id"].encode(),
                        value=orjson.dumps(e),
                    )
                )
                soak.produced += 1
            if futures:
                await asyncio.gather(*futures)
            pause = began + elapsed + 0.05 - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
    finally:
        await producer.stop()


async def sample(
    proc: subprocess.Popen[bytes],
    port: int,
    soak: Soak,
    interval: float,
    stop: asyncio.Event,
    say: Any,
) -> None:
    began = time.monotonic()
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        if proc.poll() is not None:
            say(f"the worker exited with {proc.returncode}")
            stop.set()
            return
        lag, consumed = await loop.run_in_executor(None, scrape, port)
        s = Sample(time.monotonic() - began, rss_mb(proc.pid), lag, consumed)
        soak.samples.append(s)
        say(
            f"  t={s.at:5.0f} s  RSS {s.rss_mb:7.1f} MB  lag {_n(s.lag):>10}  "
            f"consumed {_n(s.consumed):>10}  produced {soak.produced:>10,}"
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


async def run_soak(
    bootstrap: str, proc: subprocess.Popen[bytes], port: int, soak: Soak, args: Any, say: Any
) -> None:
    stop = asyncio.Event()
    seconds = args.minutes * 60
    sampler = asyncio.create_task(sample(proc, port, soak, args.interval, stop, say))
    try:
        await offer(bootstrap, soak, args.patients, args.span_days, seconds, stop)
    finally:
        stop.set()
        await sampler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m claimstream.devtools.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--minutes", type=float, default=5.0, help="how long to offer the load")
    parser.add_argument(
        "--rate", type=float, default=12_000.0, help="events offered per second (default 12000)"
    )
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument(
        "--warmup", type=float, default=60.0, help="seconds before the RSS counts as the start"
    )
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument(
        "--patients", type=int, default=2_000, help="simulated population (default 2000)"
    )
    parser.add_argument(
        "--span-days",
        type=float,
        default=SPAN_DAYS,
        help=f"simulated days the whole load covers (default {SPAN_DAYS:g})",
    )
    parser.add_argument(
        "--redis-url", default=None, help="write freezes to this Redis (default: in-process)"
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra CLAIMSTREAM_* variable for the worker (repeatable)",
    )
    parser.add_argument(
        "--trace-memory",
        type=Path,
        default=None,
        metavar="DIR",
        help="run the worker under tracemalloc; write its top growth to DIR every minute",
    )
    parser.add_argument(
        "--trace-frames",
        type=int,
        default=0,
        metavar="N",
        help="with --trace-memory: also run tracemalloc, N frames per allocation (slow)",
    )
    parser.add_argument("--log", type=Path, default=None, help="the worker's log (default: temp)")
    args = parser.parse_args(argv)

    def say(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    extra = dict(item.split("=", 1) for item in args.worker_env)
    if args.redis_url:
        extra["CLAIMSTREAM_REDIS_URL"] = args.redis_url
    if args.trace_memory is not None:
        args.trace_memory.mkdir(parents=True, exist_ok=True)
    soak = Soak(rate=args.rate, minutes=args.minutes, warmup=args.warmup)
    with tempfile.TemporaryDirectory(prefix="claimstream-soak-") as tmp:
        log = args.log or Path(tmp) / "worker.log"
        # the audit keyed, as in production (its cost is part of what is measured)
        keydir = Path(tmp) / "audit-keys"
        extra = {
            **write_key_files(keydir).environment(keydir / "checkpoints"),
            # its tables' directory: the soak's temporary one, not ./claimstream-data
            "CLAIMSTREAM_DATA_DIR": str(Path(tmp) / "worker-data"),
            **extra,
        }
        try:
            broker = LocalBroker().start()
        except BrokerStartError as exc:
            say(f"soak: {exc}")
            return 3
        try:
            topology = load_topology(partitions=args.partitions)
            report = apply_topics_sync(broker.bootstrap, topology, security=KafkaSecurity())
            if not report.in_sync:
                say(report.format_table())
                return 3
            port = free_port()
            proc = start_worker(
                broker.url,
                port,
                args.partitions,
                args.interval,
                log,
                args.trace_memory,
                args.trace_frames,
                extra,
            )
            try:
                if not wait_assigned(proc, port, 180):
                    say(f"soak: the worker did not start; its log ({log}):")
                    say(log.read_text(errors="replace")[-3000:])
                    return 3
                say(
                    f"worker pid {proc.pid} on :{port}, {args.partitions} partitions; offering "
                    f"{args.rate:,.0f} events/s for {args.minutes:g} min"
                )
                asyncio.run(run_soak(broker.bootstrap, proc, port, soak, args, say))
            finally:
                terminate_group(proc, timeout=20)
        finally:
            broker.stop()
    say(soak.report())
    return 0 if soak.verdict()[0] else 1


if __name__ == "__main__":
    sys.exit(main())
