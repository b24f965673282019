"""A `claimstream worker` process for the benchmarks (`bench`, `state_memory`): start it on
the local broker, feed it a simulated backlog, and follow its `/status`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from typing import Any

import orjson

from claimstream.devtools.simulate import generate
from claimstream.devtools.subproc import die_with_parent

TOPIC_OF = {
    "dispense": "settlement.dispensing.v1",
    "consultation": "settlement.consultations.v1",
    "admission": "settlement.stays.v1",
    "discharge": "settlement.stays.v1",
    "claim": "settlement.claims.v1",
}
Message = tuple[str, bytes, bytes, str]  # topic, key, value, event id


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


def rekeyed(port: int) -> int:
    """Re-keyed records the doctor and institution agents have taken (markers not counted)."""
    by_kind = (status(port) or {}).get("records_by_kind", {})
    return int(by_kind.get("doctor", 0)) + int(by_kind.get("institution", 0))


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


def start_worker(
    url: str,
    port: int,
    partitions: int,
    lateness: float,
    audit_env: dict[str, str],
    runner: tuple[str, ...] = ("claimstream",),
) -> subprocess.Popen[bytes]:
    """A worker with every part on, the audit keyed (its cost is part of the figure);
    `runner`: the module run with `worker ...` (`state_memory --census` runs it under
    `claimstream.devtools.memory_census`)."""
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
        [sys.executable, "-m", *runner, "worker", "--skip-topic-check"],
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


def settled(port: int, timeout: float) -> None:
    """Wait until the worker's agents (every key kind) have handled nothing new for 2 s."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        handled = sum((status(port) or {}).get("records_by_kind", {}).values())
        if handled != last:
            last, since = handled, time.monotonic()
        elif time.monotonic() - since >= 2.0:
            return
        time.sleep(0.2)
