"""What Prometheus scrapes in the live tests: a `/metrics` endpoint on loopback.

`worker_endpoint()` runs a real `claimstream worker` on the local broker and feeds it simulated
settlement events (abuse injected, a few malformed records): the live tests scrape that.
`metrics_endpoint()` serves a `Metrics` registry fed with a little of everything through
prometheus_client's own HTTP server, without broker or worker (a quick check of the exposition).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from claimstream.devtools.subproc import die_with_parent, free_port, terminate_group
from claimstream.model.outputs import Alert, Command, Scope, Subject
from claimstream.observability.metrics import Metrics
from tests.ops.prometheus_server import http_get, wait_for


@dataclass
class LiveTarget:
    #: host:port that serves /metrics
    address: str
    #: PromQL selector -> the least value Prometheus must report for it
    expected_values: dict[str, float] = field(default_factory=dict)


def feed(m: Metrics) -> None:
    now = time.time()
    m.worker_started(app_id="claimstream", store="memory://", config_version=2)
    m.event_consumed("settlement.dispensing.v1", "dispense", 40)
    m.event_consumed("settlement.dispensing.v1", "unknown", 2)
    m.dead_letter("not_json")
    m.dead_letter("missing_field")
    m.batch(42)
    alert = Alert(
        alert_id="alert-000000000000000000000001",
        rule="repeat_dispensing",
        rule_version=1,
        severity="high",
        subject=Subject("patient", "P1"),
        patient_id="P1",
        institution_id="H1",
        doctor_id="D1",
        department_id=None,
        event_ids=("e1", "e2"),
        occurred_at="2024-05-01T08:00:00+08:00",
        detected_at="2024-05-01T08:00:00+08:00",
        message="repeat dispensing",
    )
    m.alert_emitted(alert, "enforce", emitted_at=now, arrived_at=now - 0.05, event_ts=now - 2)
    m.command_issued(
        Command(
            command_id="cmd-000000000000000000000001",
            action="FREEZE",
            scope=Scope("patient", "P1", "XC01"),
            effective_from="2024-05-01T08:00:00+08:00",
            expires_at="2024-05-31T08:00:00+08:00",
            reason="repeat dispensing",
            rule="repeat_dispensing",
            alert_ids=(alert.alert_id,),
        )
    )
    m.set_active_freezes("patient", 1)
    m.set_state_keys("repeat_dispensing", 7)
    m.set_consumer_lag("settlement.dispensing.v1", 0, 3)
    m.set_assigned_partitions("settlement.dispensing.v1", 8)
    m.review_recorded("repeat_dispensing", "confirmed")
    m.set_sink_up("kafka", True)
    m.set_sink_up("registry", True)


@contextlib.contextmanager
def metrics_endpoint() -> Iterator[LiveTarget]:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    feed(metrics)
    httpd, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield LiveTarget(
            address=f"127.0.0.1:{httpd.server_port}",
            expected_values={
                'claimstream_events_consumed_total{topic="settlement.dispensing.v1",'
                'event_type="dispense"}': 40,
                'claimstream_alerts_total{rule="repeat_dispensing",severity="high",'
                'mode="enforce"}': 1,
                'claimstream_commands_total{action="FREEZE",scope_kind="patient"}': 1,
                "claimstream_rule_config_version": 2,
            },
        )
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


#: Which input topic carries which event type (as topics/topics.toml describes them).
INPUT_TOPIC = {
    "dispense": "settlement.dispensing.v1",
    "consultation": "settlement.consultations.v1",
    "admission": "settlement.stays.v1",
    "discharge": "settlement.stays.v1",
    "claim": "settlement.claims.v1",
}


def _metric_sum(address: str, name: str, **labels: str) -> float:
    body = http_get(f"http://{address}/metrics").decode()
    total = 0.0
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


async def _produce(bootstrap: str, events: list[dict[str, Any]], garbage: int) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    try:
        for event in events:
            await producer.send(
                INPUT_TOPIC[event["event_type"]],
                key=str(event["patient_id"]).encode(),
                value=orjson.dumps(event),
            )
        for i in range(garbage):
            await producer.send(INPUT_TOPIC["claim"], key=b"P-garbage", value=b"{not json %d" % i)
        await producer.flush()
    finally:
        await producer.stop()


@contextlib.contextmanager
def worker_endpoint(workdir: Path, events: int = 3000) -> Iterator[LiveTarget]:
    """A real `claimstream worker` on the local broker, fed simulated events with abuse.

    Yields once the worker has consumed every event and found alerts, so its `/metrics` shows
    what a worker in production shows. Stops the worker and the broker on exit.
    """
    from claimstream.devtools.localbroker import LocalBroker
    from claimstream.devtools.simulate import generate
    from claimstream.kafka.admin import apply_topics_sync
    from claimstream.kafka.topology import load_topology

    partitions = 2
    broker = LocalBroker().start()
    proc: subprocess.Popen[bytes] | None = None
    log_path = workdir / "worker.log"
    try:
        report = apply_topics_sync(broker.bootstrap, load_topology(partitions=partitions))
        assert report.in_sync, report.format_table()
        port = free_port()
        address = f"127.0.0.1:{port}"
        env = {
            **os.environ,
            "CLAIMSTREAM_BROKER_URL": broker.url,
            "CLAIMSTREAM_PARTITIONS": str(partitions),
            "CLAIMSTREAM_WEB_HOST": "127.0.0.1",
            "CLAIMSTREAM_WEB_PORT": str(port),
            "CLAIMSTREAM_DATA_DIR": str(workdir / "data"),
            "CLAIMSTREAM_LOG_LEVEL": "WARNING",
            "CLAIMSTREAM_AUDIT_UNKEYED": "true",
        }
        env.pop("CLAIMSTREAM_REDIS_URL", None)  # the in-process freeze registry
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "claimstream", "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

        def serving() -> bool:
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"worker exited {proc.returncode}:\n{_tail(log_path)}")
            return b"claimstream_" in http_get(f"http://{address}/metrics")

        wait_for(serving, 90, "the worker's /metrics")
        batch = list(generate(events, seed=11))
        garbage = 3
        asyncio.run(_produce(broker.bootstrap, batch, garbage))
        wait_for(
            lambda: _metric_sum(address, "claimstream_events_consumed_total") >= len(batch),
            120,
            f"the worker to consume {len(batch)} events",
        )
        wait_for(lambda: _metric_sum(address, "claimstream_alerts_total") > 0, 60, "alerts")
        wait_for(
            lambda: _metric_sum(address, "claimstream_dead_letters_total") >= garbage,
            60,
            "dead letters",
        )
        consumed = (
            'sum by (job, instance) (claimstream_events_consumed_total{topic=~"settlement.*"})'
        )
        yield LiveTarget(
            address=address,
            expected_values={
                consumed: len(batch),
                "sum by (job, instance) (claimstream_alerts_total)": 1,
                "sum by (job, instance) (claimstream_dead_letters_total)": garbage,
                "claimstream_rule_config_version": 1,
            },
        )
    finally:
        if proc is not None:
            terminate_group(proc, timeout=20)
        broker.stop()


def _tail(path: Path, size: int = 4000) -> str:
    try:
        return path.read_text("utf-8", errors="replace")[-size:]
    except OSError:
        return ""
