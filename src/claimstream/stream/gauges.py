"""Periodic gauges of a worker: assigned partitions, consumer lag, live keys, active freezes.

Counters (events, dead letters, alerts, commands, latencies, batch sizes) are recorded on the
hot path by `Pipeline`; what only makes sense as a level is sampled here every
`interval` seconds by a faust timer, off the hot path. No id ever becomes a label.

The timer runs on the worker's event loop, which the pre-settlement check shares: the live-keys
sample decodes its states `_STATE_STEP` at a time with a turn of the loop between them (5 000
states in one pass held the loop for ~25 ms every 15 s, docs/check.md "Latency").
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from claimstream.freezes.base import FreezeRegistry, RegistryUnavailable
from claimstream.model.events import KEY_KINDS
from claimstream.observability.metrics import Metrics

log = logging.getLogger(__name__)
_FREEZE_SAMPLE = 10_000
#: states read per table and sample for `claimstream_state_keys` (above it, an estimate)
_STATE_SAMPLE = 5_000
#: states decoded between two turns of the event loop (5 to 15 us each: a millisecond or two)
_STATE_STEP = 128


def install_gauges(
    app: Any,
    *,
    interval: float,
    metrics: Metrics,
    registry: FreezeRegistry,
    input_topics: frozenset[str],
    state_tables: Callable[[], Iterable[Any]],
) -> None:
    """Sample the gauges every `interval` s: `app`'s consumer (assignment, lag of
    `input_topics`), the detection `state_tables` (live keys per rule) and the `registry`."""

    async def sample() -> None:
        try:
            _partitions_and_lag(app.consumer, metrics, input_topics)
            await _live_keys(state_tables(), metrics)
            freezes = await registry.active(time.time(), limit=_FREEZE_SAMPLE)
            kinds = Counter(f.key.split(":")[2] for f in freezes if f.key.count(":") >= 3)
            for kind in KEY_KINDS:
                metrics.set_active_freezes(kind, kinds.get(kind, 0))
        except RegistryUnavailable:
            pass  # Redis is down: claimstream_sink_up and one log line already say so
        except Exception:  # a gauge must never take the worker down
            log.exception("sampling gauges failed")

    app.timer(interval)(sample)


def _partitions_and_lag(consumer: Any, metrics: Metrics, input_topics: frozenset[str]) -> None:
    assignment = consumer.assignment()
    per_topic = Counter(tp.topic for tp in assignment)
    for topic, count in per_topic.items():
        metrics.set_assigned_partitions(topic, count)
    metrics.clear_consumer_lag()
    committed = getattr(consumer, "_committed_offset", {})
    for tp in assignment:
        if tp.topic not in input_topics:
            continue
        highwater = consumer.highwater(tp)
        done = committed.get(tp)
        if highwater is not None:
            metrics.set_consumer_lag(tp.topic, tp.partition, int(highwater) - int(done or 0))


async def _live_keys(tables: Iterable[Any], metrics: Metrics) -> None:
    """Keys holding state per rule, from at most `_STATE_SAMPLE` states a table (evenly
    spread over its keys, the counts scaled up): reading a state decodes it on the compact
    and RocksDB stores, and a timer must not hold the event loop for a million of them, nor
    for the sample in one go (`_STATE_STEP`)."""
    per_rule: dict[str, float] = {}
    for table in tables:
        data = table.data
        keys = list(data.keys())
        if not keys:
            continue
        step = max(1, len(keys) // _STATE_SAMPLE)
        sample = keys[::step]
        weight = len(keys) / len(sample)
        for at, key in enumerate(sample, 1):
            if at % _STATE_STEP == 0:
                await asyncio.sleep(0)  # a check waiting for the loop is answered now
            state = data.get(key)
            for rule_key in (state or {}).get("r", ()):
                rule = rule_key.split("@", 1)[0]
                per_rule[rule] = per_rule.get(rule, 0.0) + weight
    for rule in metrics.rules:
        metrics.set_state_keys(rule, round(per_rule.get(rule, 0)))
