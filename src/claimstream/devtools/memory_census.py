"""`python -m claimstream.devtools.memory_census worker ...`: a worker that says where its memory
goes (a diagnostic, not for production).

Runs the `claimstream` command given (normally `worker ...`) in this process and, on each
`SIGURG` (`os.kill(pid, signal.SIGURG)`; faust and mode take SIGINT, SIGTERM, SIGUSR1 and
SIGUSR2), writes a census into `--out DIR`, numbered from 1. The first census also starts
`tracemalloc` (`--frames` frames a trace, default 8; 0: off): what later censuses' snapshots
hold is what was allocated since the first and is still alive, i.e. what grew. (Tracing from
the start slowed a worker tenfold on the loaded machine, most of it in faust's start-up.)

* `census-N.json`: VmRSS, what tracemalloc traces (and its own overhead), the objects the cyclic
  collector tracks by type, and the large containers (dicts, lists, sets, deques of at least
  `--big` entries) with the attribute that holds them (`KeyedProcessor.homes`) and their size;
* `census-N.snapshot` (from the second on): the tracemalloc snapshot, for `compare_lines` (what
  grew since the first census, by the line that allocated it or by the first frame in a
  package of ours or of faust's).

The census runs in the main thread between two bytecodes of the event loop (a signal handler),
so nothing changes under it; the worker pauses while it counts (seconds for a large heap).
tracemalloc costs memory and time itself: compare censuses of the same run, not RSS across runs.
`state_memory --census` drives it (a census once the worker is idle, another after the drain).
"""

from __future__ import annotations

import argparse
import collections
import gc
import runpy
import signal
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import orjson

#: containers with at least this many entries are listed with their owner
BIG = 1_000
#: packages whose first frame (from the allocating line outwards) names the owner of a trace
OWNERS = ("claimstream", "faust", "mode", "aiokafka", "orjson", "prometheus_client", "asyncio")


def rss_bytes() -> int:
    """This process's resident memory (VmRSS from /proc, Linux)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def pymalloc() -> dict[str, int]:
    """CPython's small-object allocator (objects up to 512 B): its arenas' bytes, the bytes
    of the blocks in use, and of the free blocks and pools in those arenas (what an arena
    keeps while any of its blocks lives: fragmentation), from `sys._debugmallocstats`."""
    import os
    import tempfile

    saved = os.dup(2)
    with tempfile.TemporaryFile() as out:
        os.dup2(out.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode(errors="replace")
    found: dict[str, int] = {}
    names = {
        "bytes/arena": "arenas",
        "# bytes in allocated blocks": "allocated",
        "# bytes in available blocks": "available",
        "unused pools": "unused_pools",
    }
    for line in text.splitlines():
        for marker, name in names.items():
            if marker in line and "=" in line and name not in found:
                found[name] = int(line.rsplit("=", 1)[1].strip().replace(",", ""))
    return found


def malloc_info() -> dict[str, int]:
    """glibc's malloc (objects over 512 B, C libraries): bytes in use, free in its heap, and
    in chunks of their own (mmap), from `mallinfo2` (empty where there is none)."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in (
                "arena",
                "ordblks",
                "smblks",
                "hblks",
                "hblkhd",
                "usmblks",
                "fsmblks",
                "uordblks",
                "fordblks",
                "keepcost",
            )
        ]

    try:
        libc = ctypes.CDLL("libc.so.6")
        call = libc.mallinfo2
    except (OSError, AttributeError):
        return {}
    call.restype = MallInfo2
    info = call()
    return {"in_use": info.uordblks, "free": info.fordblks, "mmapped": info.hblkhd}


def _entries(obj: Any) -> int:
    try:
        return len(obj)
    except TypeError:
        return 0


def _shallow_bytes(obj: Any) -> int:
    """The container and its entries, one level deep (keys and values are not followed: a
    state held as bytes is counted, a state held as objects only as its top dict)."""
    total = sys.getsizeof(obj)
    if isinstance(obj, dict):
        for key, value in obj.items():
            total += sys.getsizeof(key) + sys.getsizeof(value)
    elif isinstance(obj, list | tuple | set | frozenset | collections.deque):
        total += sum(sys.getsizeof(item) for item in obj)
    return total


def _attributes(obj: Any) -> Iterator[tuple[str, Any]]:
    """An object's instance attributes, from its `__dict__` and its slots."""
    holder = getattr(obj, "__dict__", None)
    if isinstance(holder, dict):
        yield from holder.items()
    for cls in type(obj).__mro__:
        for name in cls.__dict__.get("__slots__", ()):
            if isinstance(name, str) and name not in ("__dict__", "__weakref__"):
                try:
                    yield name, object.__getattribute__(obj, name)
                except AttributeError:
                    continue


@dataclass(slots=True)
class Container:
    """A large container and who holds it."""

    owner: str
    kind: str
    entries: int
    bytes: int


def big_containers(objects: list[Any], big: int = BIG) -> list[Container]:
    """Containers with at least `big` entries held by an attribute of one of `objects`, each
    named by that attribute (`module.Type.attr`), and the large containers among `objects`
    that no attribute holds (owner `?`: a local, a closure, an entry of another container).
    An attribute's container is found even when the collector does not track it (a dict of
    strings and ints, such as a key -> partition map)."""
    kinds = (dict, list, set, collections.deque)
    found: dict[int, tuple[str, Any]] = {}
    for obj in objects:
        if isinstance(obj, type) or type(obj) in kinds or isinstance(obj, dict | tuple):
            continue
        try:
            attributes = list(_attributes(obj))
        except Exception:  # noqa: BLE001, S112 - an odd object's attributes: skip it
            continue
        for name, value in attributes:
            if type(value) in kinds and id(value) not in found and _entries(value) >= big:
                owner = f"{type(obj).__module__}.{type(obj).__qualname__}.{name}"
                found[id(value)] = (owner, value)
    for obj in objects:
        big_one = type(obj) in kinds and id(obj) not in found and _entries(obj) >= big
        if big_one and not _is_namespace(obj):
            found[id(obj)] = ("?", obj)
    out = [
        Container(owner, type(obj).__name__, _entries(obj), _shallow_bytes(obj))
        for owner, obj in found.values()
    ]
    return sorted(out, key=lambda c: c.bytes, reverse=True)


def _is_namespace(obj: Any) -> bool:
    """A module's or class's namespace: big dicts, but not what grows per key."""
    return isinstance(obj, dict) and "__name__" in obj and "__builtins__" in obj


def owner_of(frames: Iterable[tuple[str, int]], packages: tuple[str, ...] = OWNERS) -> str:
    """The first frame, from the allocating line outwards, in one of `packages`, as
    `package/module.py:line`; frames are (filename, line), oldest first (tracemalloc's order)."""
    for filename, lineno in reversed(list(frames)):
        parts = filename.replace("\\", "/").split("/")
        for index in range(len(parts) - 1, -1, -1):
            if parts[index] in packages:
                return f"{'/'.join(parts[index:])}:{lineno}"
    last = list(frames)[-1:] or [("?", 0)]
    return f"{last[0][0].rsplit('/', 1)[-1]}:{last[0][1]}"


def census(objects_too: bool = True, big: int = BIG) -> dict[str, Any]:
    """What this process holds now (see the module doc)."""
    gc.collect()
    body: dict[str, Any] = {"at": time.time(), "rss": rss_bytes()}
    body["pymalloc"] = pymalloc()
    body["malloc"] = malloc_info()
    if tracemalloc.is_tracing():
        current, peak = tracemalloc.get_traced_memory()
        body["traced"] = current
        body["traced_peak"] = peak
        body["tracemalloc_overhead"] = tracemalloc.get_tracemalloc_memory()
    if objects_too:
        # what the worker froze at start (`stream.collector`) is outside `get_objects`:
        # unfrozen for the count, then everything is frozen again (a diagnostic's liberty)
        gc.unfreeze()
        objects = gc.get_objects()
        gc.freeze()
        by_type: Counter[str] = Counter()
        bytes_by_type: Counter[str] = Counter()
        for obj in objects:
            name = type(obj).__qualname__
            by_type[name] += 1
            bytes_by_type[name] += sys.getsizeof(obj)
        body["gc_tracked"] = len(objects)
        body["gc_by_type"] = {
            name: [by_type[name], size] for name, size in bytes_by_type.most_common(40)
        }
        body["big_containers"] = [
            {"owner": c.owner, "kind": c.kind, "entries": c.entries, "bytes": c.bytes}
            for c in big_containers(objects, big)[:40]
        ]
        del objects
    return body


def grown(
    before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, by: str = "owner", top: int = 30
) -> list[tuple[str, int, int]]:
    """What grew between two snapshots: (where, bytes, blocks), largest first; `by` "owner"
    groups by `owner_of` the traceback, "line" by the allocating line."""

    def where(trace: tracemalloc.Trace) -> str:
        frames = [(frame.filename, frame.lineno) for frame in trace.traceback]
        return owner_of(frames) if by == "owner" else owner_of(frames[-1:], ())

    sizes: Counter[str] = Counter()
    blocks: Counter[str] = Counter()
    for sign, snapshot in ((-1, before), (1, after)):
        for trace in snapshot.traces:
            key = where(trace)
            sizes[key] += sign * trace.size
            blocks[key] += sign
    return [(key, size, blocks[key]) for key, size in sizes.most_common(top)]


def _empty(like: tracemalloc.Snapshot) -> tracemalloc.Snapshot:
    return tracemalloc.Snapshot([], like.traceback_limit)


class Trigger:
    """Writes census N (JSON and snapshot) into `out` on each SIGURG; the first starts
    tracemalloc with `frames` frames (0: never)."""

    def __init__(self, out: Path, big: int = BIG, frames: int = 8) -> None:
        self.out = out
        self.big = big
        self.frames = frames
        self.count = 0

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        body = census(big=self.big)
        stem = self.out / f"census-{self.count}"
        if tracemalloc.is_tracing():
            tracemalloc.take_snapshot().dump(f"{stem}.snapshot")
        elif self.frames > 0 and self.count == 1:
            tracemalloc.start(self.frames)
            body = {**body, **census(objects_too=False)}  # the tracing baseline
        partial = stem.with_suffix(".part")
        partial.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
        partial.rename(f"{stem}.json")  # the driver waits for this name: written whole


def peak_census(out: Path) -> int:
    """The number of the census in `out` with the most traced memory (1 when none traced)."""
    best, most = 1, -1
    for path in out.glob("census-*.json"):
        traced = orjson.loads(path.read_bytes()).get("traced", -1)
        if traced > most:
            best, most = int(path.stem.split("-")[1]), traced
    return best


def compare_lines(out: Path, first: int, second: int, per: int, top: int = 25) -> list[str]:
    """The report of what grew between census `first` and `second` in `out`, per `per` units
    (patients): RSS, traced, by owner, by line and the large containers."""
    a = orjson.loads((out / f"census-{first}.json").read_bytes())
    b = orjson.loads((out / f"census-{second}.json").read_bytes())
    lines = [
        f"census    RSS {a['rss'] / 2**20:,.0f} -> {b['rss'] / 2**20:,.0f} MB "
        f"({(b['rss'] - a['rss']) / per:,.0f} B per patient)"
    ]
    pa, pb = a.get("pymalloc", {}), b.get("pymalloc", {})
    if pa and pb:

        def grew(x: dict[str, int], y: dict[str, int], name: str) -> float:
            return (y.get(name, 0) - x.get(name, 0)) / per

        free = grew(pa, pb, "available") + grew(pa, pb, "unused_pools")
        ma, mb = a.get("malloc", {}), b.get("malloc", {})
        lines.append(
            f"          pymalloc (objects <= 512 B): arenas +{grew(pa, pb, 'arenas'):,.0f} B "
            f"per patient, of which blocks in use +{grew(pa, pb, 'allocated'):,.0f}, free "
            f"blocks and pools +{free:,.0f}; malloc (larger): in use "
            f"+{grew(ma, mb, 'in_use'):,.0f}, free +{grew(ma, mb, 'free'):,.0f}, mmapped "
            f"+{grew(ma, mb, 'mmapped'):,.0f}"
        )
    if "traced" in a and "traced" in b:
        traced = (b["traced"] - a["traced"]) / per
        overhead = (b["tracemalloc_overhead"] - a["tracemalloc_overhead"]) / per
        lines.append(
            f"          traced by tracemalloc {traced:,.0f} B per patient, its own overhead "
            f"{overhead:,.0f} B; the rest of the RSS growth (allocator pages, C libraries) "
            f"{(b['rss'] - a['rss']) / per - traced - overhead:,.0f} B"
        )
    if (out / f"census-{second}.snapshot").exists():
        after = tracemalloc.Snapshot.load(str(out / f"census-{second}.snapshot"))
        earlier = out / f"census-{first}.snapshot"
        # the first census starts tracing: nothing traced before it
        before = tracemalloc.Snapshot.load(str(earlier)) if earlier.exists() else _empty(after)
        for by in ("owner", "line"):
            lines.append(f"          grown, by {by} (B per patient, blocks per patient):")
            lines += [
                f"            {size / per:>8,.0f} {blocks / per:>7,.1f}  {where}"
                for where, size, blocks in grown(before, after, by, top)
            ]
    previous = {(c["owner"], c["kind"]): c for c in a.get("big_containers", [])}
    lines.append("          large containers after (entries, B per patient one level deep):")
    for c in b.get("big_containers", [])[:top]:
        was = previous.get((c["owner"], c["kind"]), {"entries": 0, "bytes": 0})
        lines.append(
            f"            {c['entries']:>9,} (+{c['entries'] - was['entries']:,}) "
            f"{(c['bytes'] - was['bytes']) / per:>7,.0f}  {c['kind']} {c['owner']}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m claimstream.devtools.memory_census", description=__doc__
    )
    parser.add_argument("--out", type=Path, required=True, help="where the censuses go")
    parser.add_argument("--frames", type=int, default=8, help="tracemalloc frames (0: off)")
    parser.add_argument("--big", type=int, default=BIG, help="list containers this large")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the claimstream command")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGURG, Trigger(args.out, args.big, args.frames))
    # `python -m claimstream ...` in this process (the command line, not an import of `cli`,
    # which sits above devtools); it exits through SystemExit with the command's code
    sys.argv = ["claimstream", *args.command]
    runpy.run_module("claimstream", run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
