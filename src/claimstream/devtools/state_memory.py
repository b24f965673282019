"""`python -m claimstream.devtools.state_memory`: what a patient's state costs, per store.

Two figures (`make bench` prints both; `--json PATH` writes them too):

1. **footprint** (in-process, no broker): the simulated population run through `Detector`;
   for the patients' states, the bytes of their JSON (what a changelog record and a RocksDB
   value hold) against the bytes of the Python objects the memory store keeps (every object
   reachable from the states, each counted once: an interned id or drug code shared by many
   states is not charged to each), both as the engine left them and as a worker holds them after
   recovering them from the changelog (`orjson.loads`); and the JSON bytes by part of the state,
   to show what a compact representation could save.
2. **stores** (a local broker and one `claimstream worker` per store, interleaved): a fresh
   worker, idle with its partitions assigned, is fed `--patients` distinct patients' month
   (`simulate`'s population: 8 events a patient); its resident memory (VmRSS) before and after
   (once every agent is idle again) gives RSS per active patient and per 100 000 of them; the
   events/s of the patient agent's drain come from the same run, and for RocksDB the size of
   its data directory. The RSS difference counts everything the run left behind (state,
   fetch and producer buffers, the allocator's unreturned pages), so it is an upper bound of the
   state's cost, which the footprint figure isolates.

The stores figure is this machine's: report it with the machine (cores, load) and compare
stores within one run only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from claimstream.devtools.memory_census import compare_lines, peak_census

#: the simulated population's events per patient (`simulate.Simulator`: count // 8 patients)
EVENTS_PER_PATIENT = 8
STORES = ("memory://", "rocksdb://")


@dataclass
class Footprint:
    """Bytes per patient state, in-process (figure 1)."""

    patients: int
    events: int
    json_bytes: float
    engine_object_bytes: float
    recovered_object_bytes: float
    #: JSON bytes per patient by part of the state (`wm`, `seen`, `gc`, `r/<rule>`)
    json_by_part: dict[str, float] = field(default_factory=dict)
    #: JSON bytes per patient of values derivable from others: ISO times beside their epoch
    #: seconds, and event ids repeated between `seen` and the rules' rows
    derivable_bytes: float = 0.0


@dataclass
class StoreRun:
    """One worker on one store (figure 2)."""

    store: str
    patients: int
    events: int
    rss_before_mb: float
    rss_after_mb: float
    events_per_second: float
    disk_mb: float | None

    @property
    def kb_per_patient(self) -> float:
        return (self.rss_after_mb - self.rss_before_mb) * 1024 / self.patients

    @property
    def mb_per_100k(self) -> float:
        return self.kb_per_patient * 100_000 / 1024


# -- figure 1: in-process footprint -------------------------------------------------------------


def deep_size(roots: Iterable[Any], seen: set[int]) -> int:
    """Bytes of every object reachable from `roots` through dicts, lists and tuples, not yet in
    `seen` (ids; updated), so objects shared between calls are counted once."""
    total = 0
    stack = list(roots)
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
    return total


def _json_len(value: Any) -> int:
    return len(orjson.dumps(value))


def _parts(state: dict[str, Any]) -> Iterator[tuple[str, int]]:
    for name, value in state.items():
        if name == "r" and isinstance(value, dict):
            for rule, rule_state in value.items():
                yield f"r/{rule.split('@')[0]}", _json_len(rule_state) + len(rule) + 4
        else:
            yield name, _json_len(value) + len(name) + 4


def _derivable(state: dict[str, Any]) -> int:
    """JSON bytes of ISO-8601 strings (each beside its epoch seconds in a row) and of event ids
    that also appear in `seen` (a row repeats its event's id)."""
    seen_ids = set(state.get("seen", {}) or ())
    total = 0
    stack: list[Any] = [state.get("r", {})]
    while stack:
        obj = stack.pop()
        if isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple):
            stack.extend(obj)
        elif isinstance(obj, str) and (
            obj in seen_ids or (len(obj) >= 19 and obj[4:5] == "-" and obj[10:11] == "T")
        ):
            total += len(obj) + 3  # quotes and a comma
    return total


def footprint(patients: int, seed: int = 5) -> Footprint:
    from claimstream.detection.config import DetectionConfig
    from claimstream.detection.decode import decode_event
    from claimstream.detection.detector import Detector
    from claimstream.devtools.simulate import generate
    from claimstream.model.events import Event

    count = patients * EVENTS_PER_PATIENT
    detector = Detector(DetectionConfig.default(), clock=time.time)
    for raw in generate(count, seed=seed):
        event = decode_event(orjson.dumps(raw))
        if isinstance(event, Event):
            detector.process(event)
    states = {key: state for (kind, key), state in detector.states.items() if kind == "patient"}
    n = len(states)
    encoded = {key: orjson.dumps(state) for key, state in states.items()}
    # a table entry: the key string, the state and the dict slot (~ 3 pointers) per key
    slot = 3 * 8
    seen: set[int] = set()
    engine = deep_size(states.values(), seen) + sum(sys.getsizeof(k) + slot for k in states)
    recovered_states = [orjson.loads(value) for value in encoded.values()]
    recovered = deep_size(recovered_states, set()) + sum(sys.getsizeof(k) + slot for k in states)
    by_part: Counter[str] = Counter()
    derivable = 0
    for state in states.values():
        for part, size in _parts(state):
            by_part[part] += size
        derivable += _derivable(state)
    return Footprint(
        patients=n,
        events=count,
        json_bytes=sum(len(v) for v in encoded.values()) / n,
        engine_object_bytes=engine / n,
        recovered_object_bytes=recovered / n,
        json_by_part={part: size / n for part, size in by_part.most_common()},
        derivable_bytes=derivable / n,
    )


# -- figure 2: a worker per store ---------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """Resident memory of process `pid` in MB (VmRSS from /proc, Linux)."""
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def store_run(
    store: str,
    patients: int,
    partitions: int = 8,
    lateness: float = 1.0,
    seed: int = 5,
    census: Path | None = None,
    frames: int = 1,
) -> StoreRun:
    """A fresh broker and worker on `store`, fed `patients` patients' month (figure 2).

    `census`: the worker runs under `memory_census` (tracemalloc on, so slower and larger),
    which writes census 1 into that directory once the worker is idle and census 2 after the
    drain; their comparison is printed per patient."""
    from claimstream.devtools import bench_worker as bench
    from claimstream.devtools.localbroker import LocalBroker
    from claimstream.devtools.subproc import free_port, terminate_group
    from claimstream.kafka.admin import apply_topics_sync
    from claimstream.kafka.security import KafkaSecurity
    from claimstream.kafka.topology import load_topology

    count = patients * EVENTS_PER_PATIENT
    backlog = bench.messages(count, seed=seed, start=datetime.now(UTC) - timedelta(days=40))
    data = Path(tempfile.mkdtemp(prefix="claimstream-state-memory-"))
    env = {
        "CLAIMSTREAM_STORE": store,
        "CLAIMSTREAM_DATA_DIR": str(data),
        "CLAIMSTREAM_AUDIT_UNKEYED": "true",
        "CLAIMSTREAM_WEB_ENABLED": "true",
    }
    try:
        with LocalBroker() as broker:
            topology = load_topology(partitions=partitions)
            report = apply_topics_sync(broker.bootstrap, topology, security=KafkaSecurity())
            if not report.in_sync:
                raise RuntimeError(report.format_table())
            port = free_port()
            runner: tuple[str, ...] = ("claimstream",)
            if census is not None:
                runner = (
                    "claimstream.devtools.memory_census",
                    *("--out", str(census), "--frames", str(frames)),
                )
            worker = bench.start_worker(broker.url, port, partitions, lateness, env, runner)
            try:
                bench.wait(lambda: (bench.status(port) or {}).get("assigned"), 180, "start")
                bench.settled(port, 60)
                if census is not None:
                    take_census(worker.pid, census, 1)
                before = rss_mb(worker.pid)
                asyncio.run(bench.produce_all(broker.bootstrap, backlog))
                first = bench.wait(
                    lambda: bench.patient_records(port) > 0 and time.perf_counter(), 180, "input"
                )
                censuses = Periodic(worker.pid, census, every=5.0) if census else None
                last = bench.wait(
                    lambda: (
                        (censuses is None or censuses())
                        and bench.patient_records(port) >= count
                        and time.perf_counter()
                    ),
                    900,
                    "drain",
                )
                forwarded = int((bench.status(port) or {}).get("forwarded", 0))
                bench.wait(lambda: bench.rekeyed(port) >= forwarded, 900, "re-keyed")
                bench.settled(port, 300)
                after = rss_mb(worker.pid)
                if census is not None and censuses is not None:
                    take_census(worker.pid, census, censuses.number + 1)
            finally:
                terminate_group(worker, timeout=15)
        disk = _dir_mb(data) if store.startswith("rocksdb") else None
    finally:
        shutil.rmtree(data, ignore_errors=True)
    return StoreRun(store, patients, count, before, after, count / (last - first), disk)


def take_census(pid: int, out: Path, number: int, timeout: float = 600) -> None:
    """Ask the worker `pid` (run under `memory_census`) for census `number` and wait for it."""
    from claimstream.devtools import bench_worker as bench

    os.kill(pid, signal.SIGURG)
    bench.wait(lambda: (out / f"census-{number}.json").exists(), timeout, f"census {number}")


class Periodic:
    """A census of the worker every `every` seconds while it drains (numbered from 2), to
    see what its peak is made of; called from the drain's wait loop, it returns True."""

    def __init__(self, pid: int, out: Path, every: float) -> None:
        self.pid, self.out, self.every = pid, out, every
        self.number = 1
        self.last = time.monotonic()

    def __call__(self) -> bool:
        if time.monotonic() - self.last >= self.every:
            self.number += 1
            take_census(self.pid, self.out, self.number)
            self.last = time.monotonic()
        return True


# -- the report ---------------------------------------------------------------------------------


def footprint_lines(f: Footprint) -> list[str]:
    parts = ", ".join(f"{part} {size:,.0f}" for part, size in list(f.json_by_part.items())[:6])
    return [
        f"state     patient state, in-process ({f.patients:,} patients, {f.events:,} events): "
        f"JSON {f.json_bytes:,.0f} B, Python objects {f.engine_object_bytes / 1024:,.1f} KB "
        f"as the engine holds them ({f.engine_object_bytes / f.json_bytes:.1f} x the JSON), "
        f"{f.recovered_object_bytes / 1024:,.1f} KB as recovered from the changelog",
        f"          JSON bytes per patient by part: {parts}; derivable (ISO times beside "
        f"epoch seconds, repeated event ids): {f.derivable_bytes:,.0f} B "
        f"({100 * f.derivable_bytes / f.json_bytes:.0f} %)",
    ]


def store_lines(runs: list[StoreRun]) -> list[str]:
    lines: list[str] = []
    for store in STORES:
        of = [r for r in runs if r.store == store]
        if not of:
            continue
        kb = statistics.median(r.kb_per_patient for r in of)
        rate = statistics.median(r.events_per_second for r in of)
        disk = [r.disk_mb for r in of if r.disk_mb is not None]
        per_patient = statistics.median(disk) / of[0].patients * 1e6 if disk else 0.0
        on_disk = f", {per_patient:,.0f} B on disk" if disk else ""
        lines.append(
            f"memory    {store:<12} {of[0].patients:,} active patients: RSS "
            f"{of[0].rss_before_mb:,.0f} -> {of[0].rss_after_mb:,.0f} MB, {kb:,.1f} KB per "
            f"patient ({kb * 100_000 / 1024:,.0f} MB per 100k){on_disk}   (target memory "
            f"store <= 4 KB); drain {rate:,.0f} events/s"
            + (f" (median of {len(of)})" if len(of) > 1 else "")
        )
    memory = [r for r in runs if r.store == "memory://"]
    rocks = [r for r in runs if r.store == "rocksdb://"]
    if memory and rocks:
        m_rate = statistics.median(r.events_per_second for r in memory)
        r_rate = statistics.median(r.events_per_second for r in rocks)
        m_kb = statistics.median(r.kb_per_patient for r in memory)
        r_kb = statistics.median(r.kb_per_patient for r in rocks)
        lines.append(
            f"          rocksdb / memory: throughput {r_rate / m_rate:.2f} x, RSS per patient "
            f"{r_kb / m_kb:.2f} x"
        )
    return lines


def measure(patients: int, runs: int = 1, stores: tuple[str, ...] = STORES) -> dict[str, Any]:
    """Both figures; `runs` interleaved runs of each store."""
    found = footprint(patients)
    done = [store_run(store, patients) for _ in range(runs) for store in stores]
    return {"footprint": found, "stores": done}


def as_json(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "machine": {"cpus": os.cpu_count(), "load": os.getloadavg()},
        "footprint": asdict(result["footprint"]),
        "stores": [
            {**asdict(r), "kb_per_patient": r.kb_per_patient, "mb_per_100k": r.mb_per_100k}
            for r in result["stores"]
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m claimstream.devtools.state_memory", description=__doc__
    )
    parser.add_argument("--patients", type=int, default=12_500)
    parser.add_argument("--runs", type=int, default=1, help="interleaved runs of each store")
    parser.add_argument("--store", action="append", choices=STORES, help="(default: both)")
    parser.add_argument("--footprint-only", action="store_true", help="no broker, no worker")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--census",
        type=Path,
        metavar="DIR",
        help="one memory:// worker under memory_census (tracemalloc): where its memory goes",
    )
    parser.add_argument(
        "--census-frames", type=int, default=1, help="tracemalloc frames a trace (0: off)"
    )
    args = parser.parse_args(argv)
    if args.census is not None:
        run = store_run("memory://", args.patients, census=args.census, frames=args.census_frames)
        print(store_lines([run])[0])  # noqa: T201
        last = max(int(p.stem.split("-")[1]) for p in args.census.glob("census-*.json"))
        for line in compare_lines(args.census, 1, last, run.patients):
            print(line)  # noqa: T201
        peak = peak_census(args.census)
        if peak not in (1, last):
            print(f"at the traced peak (census {peak}, during the drain):")  # noqa: T201
            for line in compare_lines(args.census, 1, peak, run.patients):
                print(line)  # noqa: T201
        return 0
    if args.footprint_only:
        result: dict[str, Any] = {"footprint": footprint(args.patients), "stores": []}
    else:
        result = measure(args.patients, args.runs, tuple(args.store or STORES))
    for line in footprint_lines(result["footprint"]) + store_lines(result["stores"]):
        print(line)  # noqa: T201
    if args.json is not None:
        args.json.write_bytes(orjson.dumps(as_json(result), option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
