"""`claimstream demo`: the whole pipeline on one machine, with nothing installed but Python.

Starts the local broker (Tansu), creates the topics, starts a `claimstream worker` process,
then feeds it a simulated month of settlement events (the three headline abuse cases among
thousands of benign events) at a steady rate, and prints every alert and freeze command as a
downstream consumer receives it, with its detection latency: wall time from the moment the
completing event was produced to the moment the alert (or command) arrived on its topic.
When the stream is consumed it prints a summary and stops everything it started (or, with
`--keep-running`, waits for Ctrl-C). Ctrl-C at any time stops everything too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import orjson

from claimstream.audit.keyfiles import write_key_files
from claimstream.devtools.localbroker import LocalBroker
from claimstream.devtools.subproc import die_with_parent, free_port, terminate_group
from claimstream.kafka.admin import apply_topics_sync
from claimstream.kafka.security import KafkaSecurity
from claimstream.kafka.topology import load_topology
from claimstream.stream.http.access import new_token, token_line

TOPIC_OF = {
    "dispense": "settlement.dispensing.v1",
    "consultation": "settlement.consultations.v1",
    "admission": "settlement.stays.v1",
    "discharge": "settlement.stays.v1",
    "claim": "settlement.claims.v1",
}
ALERTS = "claimstream.alerts.v1"
COMMANDS = "claimstream.commands.v1"


@dataclass
class DemoOptions:
    events: int = 6000
    rate: float = 1500.0
    partitions: int = 4
    seed: int = 7
    lateness_hours: float = 1.0
    #: the demo's stream ends: an input partition quiet this long (and read to its end) stops
    #: holding back the doctor and institution events still waiting (docs/time.md §5)
    idle_seconds: float = 2.0
    keep_running: bool = False
    redis_url: str | None = None
    out: TextIO = field(default_factory=lambda: sys.stdout)


@dataclass
class Seen:
    sent_at: dict[str, float] = field(default_factory=dict)
    alerts: Counter[str] = field(default_factory=Counter)
    commands: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    alert_ids: set[str] = field(default_factory=set)
    command_ids: set[str] = field(default_factory=set)
    freezes: list[dict[str, Any]] = field(default_factory=list)


def run_demo(options: DemoOptions) -> int:
    out = options.out
    workdir = Path(tempfile.mkdtemp(prefix="claimstream-demo-"))
    say = _printer(out)
    say(f"claimstream demo: logs in {workdir}")
    broker = LocalBroker(log_path=workdir / "broker.log")
    worker: Any = None
    try:
        broker.start()
        say(f"broker     Tansu on {broker.bootstrap}")
        topology = load_topology(partitions=options.partitions)
        report = apply_topics_sync(broker.bootstrap, topology, security=KafkaSecurity())
        if not report.in_sync:
            say(report.format_table())
            return 1
        say(f"topics     {len(topology.topics)} created ({options.partitions} partitions each)")
        keydir = workdir / "audit-keys"
        keys = write_key_files(keydir)
        say(
            f"audit      keyed trail: HMAC key {keys.hmac_key_id}, checkpoints signed by "
            f"{keys.signing_key_id} (keys and checkpoints in {keydir})"
        )
        port = free_port()
        audit_env = keys.environment(keydir / "checkpoints")
        worker = _start_worker(broker.url, port, options, workdir / "worker.log", audit_env)
        registry = "Redis at " + options.redis_url if options.redis_url else "in-process"
        say(f"worker     pid {worker.pid}, http://127.0.0.1:{port}  (freeze registry: {registry})")
        _wait_assigned(port, worker, timeout=120)
        return asyncio.run(_feed_and_watch(broker.bootstrap, port, worker, options, say))
    except KeyboardInterrupt:
        say("interrupted: stopping")
        return 130
    finally:
        if worker is not None:
            terminate_group(worker, timeout=15)
        broker.stop()
        say("stopped    worker and broker (no process left behind)")


def _printer(out: TextIO) -> Any:
    def say(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    return say


#: the demo's own API token (the worker it starts accepts it with the settlement role)
DEMO_TOKEN = new_token()


def _start_worker(
    url: str, port: int, options: DemoOptions, log: Path, audit_env: dict[str, str]
) -> Any:
    import subprocess

    # the demo's own keys and token; its broker is a plaintext local one, whatever the shell says
    inherited = ("CLAIMSTREAM_AUDIT_", "CLAIMSTREAM_API_TOKEN", "CLAIMSTREAM_KAFKA_")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(inherited)},
        **audit_env,
        "CLAIMSTREAM_API_TOKENS": token_line("demo", "settlement", DEMO_TOKEN),
        "CLAIMSTREAM_BROKER_URL": url,
        "CLAIMSTREAM_BROKER_FLAVOR": "tansu",
        "CLAIMSTREAM_WEB_PORT": str(port),
        "CLAIMSTREAM_PARTITIONS": str(options.partitions),
        "CLAIMSTREAM_ENGINE__ALLOWED_LATENESS_HOURS": str(options.lateness_hours),
        "CLAIMSTREAM_ENGINE__SOURCE_IDLE_SECONDS": str(options.idle_seconds),
        # the simulated month ends days past the wall clock: accept it (docs/time.md)
        "CLAIMSTREAM_ENGINE__MAX_FUTURE_SKEW_MINUTES": str(40 * 24 * 60),
    }
    if options.redis_url:
        env["CLAIMSTREAM_REDIS_URL"] = options.redis_url
    else:
        env.pop("CLAIMSTREAM_REDIS_URL", None)
    with log.open("ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "claimstream", "worker", "--skip-topic-check"],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the demo, which stops the worker itself
            preexec_fn=die_with_parent,
        )


def _get(port: int, path: str) -> Any:
    headers = {"Authorization": f"Bearer {DEMO_TOKEN}"}
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - http, loopback
        return orjson.loads(response.read())


def _status(port: int) -> dict[str, Any] | None:
    try:
        status: dict[str, Any] = _get(port, "/status")
    except OSError:
        return None
    return status


def _wait_assigned(port: int, worker: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError("the worker exited during start-up (see worker.log)")
        status = _status(port)
        if status and status.get("assigned"):
            return
        time.sleep(0.3)
    raise RuntimeError("the worker did not join the consumer group in time (see worker.log)")


async def _feed_and_watch(
    bootstrap: str, port: int, worker: Any, options: DemoOptions, say: Any
) -> int:
    from aiokafka import AIOKafkaConsumer

    seen = Seen()
    consumer = AIOKafkaConsumer(
        ALERTS, COMMANDS, bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    watcher = asyncio.create_task(_watch(consumer, seen, say))
    started = time.monotonic()
    try:
        sent = await _feed(bootstrap, options, seen, say)
        await _wait_consumed(port, worker, sent, within=120 + sent / 500)
        await asyncio.sleep(0.5)  # let the last outputs reach the watcher
        _summary(port, seen, sent, time.monotonic() - started, options, say)
        if options.keep_running:
            say("running    until Ctrl-C (produce more events to the settlement.* topics)")
            await asyncio.to_thread(worker.wait)
            return 1
        return 0
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await consumer.stop()


async def _feed(bootstrap: str, options: DemoOptions, seen: Seen, say: Any) -> int:
    from aiokafka import AIOKafkaProducer

    from claimstream.devtools.simulate import generate

    start = datetime.now(UTC) - timedelta(days=25)
    events = list(generate(options.events, seed=options.seed, start=start))
    say(
        f"feeding    {len(events)} simulated settlement events at {options.rate:,.0f}/s "
        "(a month of history; abuse injected among benign events)"
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    await producer.start()
    try:
        t0 = time.monotonic()
        for i, event in enumerate(events):
            due = t0 + i / options.rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            seen.sent_at[event["event_id"]] = time.time()
            await producer.send(
                TOPIC_OF[event["event_type"]], orjson.dumps(event), key=event["patient_id"].encode()
            )
        await producer.flush()
    finally:
        await producer.stop()
    return len(events)


async def _watch(consumer: Any, seen: Seen, say: Any) -> None:
    async for record in consumer:
        value = orjson.loads(record.value)
        ids = value.get("event_ids") or []
        if record.topic == ALERTS:
            if value["alert_id"] in seen.alert_ids:
                continue
            seen.alert_ids.add(value["alert_id"])
            latency = _latency(seen, ids, record.timestamp)
            seen.alerts[value["rule"]] += 1
            subject = value["subject"]
            say(
                f"ALERT      {value['severity']:<8} {value['rule']:<28} "
                f"{subject['kind']} {subject['id']}  {_ms(latency)}\n"
                f"           {value['message']}"
            )
        else:
            if value["command_id"] in seen.command_ids:
                continue
            seen.command_ids.add(value["command_id"])
            seen.commands[value["action"]] += 1
            scope = value["scope"]
            target = f"{scope['kind']}:{scope['id']}" + (
                f":{scope['drug_code']}" if scope.get("drug_code") else ""
            )
            expires = value.get("expires_at")
            if value["action"] == "UNFREEZE":
                when = f"from {value['effective_from']}  ({value.get('reason') or 'lifted'})"
            else:
                when = f"until {expires or 'a person lifts it'}"
            if scope not in seen.freezes and (
                expires is None or datetime.fromisoformat(expires).timestamp() > time.time()
            ):
                seen.freezes.append(scope)
            say(f"COMMAND    {value['action']:<8} {target}  {when}")


def _latency(seen: Seen, event_ids: list[str], produced_ms: int) -> float | None:
    sent = [seen.sent_at[e] for e in event_ids if e in seen.sent_at]
    if not sent:
        return None
    latency = produced_ms / 1000 - max(sent)
    seen.latencies.append(latency)
    return latency


def _ms(latency: float | None) -> str:
    return "" if latency is None else f"(detected in {latency * 1000:,.0f} ms)"


async def _wait_consumed(port: int, worker: Any, sent: int, within: float) -> None:
    """Until the worker has handled every record, no doctor or institution event still waits
    for the input partitions' watermark, and nothing moved for a moment."""
    deadline = time.monotonic() + within
    last: Any = None
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError("the worker exited (see worker.log)")
        status = await asyncio.to_thread(_status, port)
        records = status["records"] if status else None
        waiting = sum((status or {}).get("waiting_by_kind", {}).values())
        if records != last:
            last, quiet_since = records, time.monotonic()
        elif (
            records is not None
            and records >= sent
            and not waiting
            and time.monotonic() - quiet_since > 1.5
        ):
            return
        await asyncio.sleep(0.3)


def _summary(
    port: int, seen: Seen, sent: int, seconds: float, options: DemoOptions, say: Any
) -> None:
    status = _status(port) or {}
    lat = sorted(seen.latencies)

    def pct(q: float) -> str:
        return f"{lat[min(len(lat) - 1, int(q * len(lat)))] * 1000:,.0f} ms" if lat else "-"

    say("")
    say(f"summary    {sent} events in {seconds:.1f} s")
    say(f"           alerts   {sum(seen.alerts.values())}  " + _counts(seen.alerts))
    say(f"           commands {sum(seen.commands.values())}  " + _counts(seen.commands))
    say(
        f"           dead letters {status.get('dead_letters', '?')}, "
        f"duplicates {status.get('duplicates', '?')}"
    )
    say(f"           detection latency p50 {pct(0.5)}, p99 {pct(0.99)}, max {pct(1.0)}")
    for scope in seen.freezes[:3]:
        path = f"/freezes/{scope['kind']}/{scope['id']}"
        if scope.get("drug_code"):
            path += f"?drug_code={scope['drug_code']}"
        try:
            answer = _get(port, path)
        except OSError:
            continue
        state = "FROZEN" if answer.get("frozen") else "not frozen"
        say(f"           GET {path} -> {state}")


def _counts(counter: Counter[str]) -> str:
    return "(" + ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) + ")" if counter else ""
