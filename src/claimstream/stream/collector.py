"""The cyclic garbage collector, set for a process whose heap is mostly long-lived key state.

CPython collects its youngest generation every 700 net allocations and the whole heap whenever
it has grown by a quarter since the last full collection. A worker's heap is mostly per-key
state that lives for days and holds no reference cycle (JSON-shaped dicts, lists and tuples,
freed by reference counting), and a busy worker allocates hundreds of objects per event. With
CPython's thresholds and twenty custom rules the collector took half the detection core's time
and paused it for up to 276 ms (docs/benchmarks.md, "Garbage collection"); the pre-settlement
check's p99 carries such pauses. So the worker (and the benchmark, to measure what runs):

* freezes what exists once the app is built (modules, configuration, reference data: never
  garbage), so no collection walks it again;
* collects the young generation every `young` allocations and the whole heap only after `old`
  collections of the middle one (CPython's 25 % growth rule still applies on top).

Cycles still get collected, only less often: what they hold lives a little longer.
"""

from __future__ import annotations

import gc

from claimstream.model.config import ConfigError

#: young, middle, old (gc.set_threshold); `CLAIMSTREAM_GC_THRESHOLDS`
DEFAULT = "10000,10,100"
#: the value that leaves CPython's own thresholds (700,10,10) and freezes nothing
PYTHON = "python"


def thresholds(text: str) -> tuple[int, int, int] | None:
    """`"young,middle,old"` as numbers (None for `python`); `ConfigError` when it is neither."""
    if text.strip() == PYTHON:
        return None
    parts = text.split(",")
    try:
        young, middle, old = (int(p) for p in parts)
    except ValueError:
        raise ConfigError(
            f"gc thresholds must be three whole numbers young,middle,old (e.g. {DEFAULT}) or "
            f"{PYTHON!r}, not {text!r}"
        ) from None
    if young < 1 or middle < 1 or old < 1:
        raise ConfigError(f"gc thresholds must be at least 1 each (e.g. {DEFAULT}), not {text!r}")
    return young, middle, old


def tune(text: str = DEFAULT) -> tuple[int, int, int] | None:
    """Freeze the objects that exist now and set the thresholds `text` names (see the module
    docstring); returns them (None: CPython's own were left)."""
    chosen = thresholds(text)
    if chosen is None:
        return None
    gc.collect()
    gc.freeze()
    gc.set_threshold(*chosen)
    return chosen
