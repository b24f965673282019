"""What Prometheus scrapes in the live tests: a `/metrics` endpoint on loopback.

`metrics_endpoint()` serves a `Metrics` registry fed with a little of everything through
prometheus_client's own HTTP server: the exposition exactly as a worker produces it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, start_http_server

from claimstream.core.outputs import Alert, Command, Scope, Subject
from claimstream.metrics import Metrics


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
