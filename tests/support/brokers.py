"""A private Tansu broker on loopback with the declared topics created: the one way the
integration tests start one (the `local_broker` and `broker_at` fixtures of tests/conftest.py,
`stream_support.start_broker`, and tests that need a broker per example or over TLS).

A broker that cannot start skips the test on a developer's machine and fails it under CI
(`unavailable`); one that starts but does not take the topics is stopped before the error goes
on, so no broker outlives a failed start.
"""

from __future__ import annotations

from claimstream.devtools.localbroker import BrokerStartError, BrokerTls, LocalBroker
from claimstream.kafka.admin import apply_topics_sync
from claimstream.kafka.security import KafkaSecurity
from claimstream.kafka.topology import Topology, load_topology
from tests.support.services import unavailable


def start_broker_with_topics(
    topics: Topology | int | None = None,
    *,
    tls: BrokerTls | None = None,
    security: KafkaSecurity | None = None,
) -> LocalBroker:
    """A running broker with every topic of `topics` created: a topology, or topics.toml with
    that many partitions per topic (None: as declared). With `tls` the broker's port speaks TLS,
    and `security` is how the topics are created over it. The caller stops the broker."""
    topology = topics if isinstance(topics, Topology) else load_topology(partitions=topics)
    try:
        broker = LocalBroker(tls=tls).start()
    except BrokerStartError as exc:
        unavailable(f"local broker{' with TLS' if tls else ''} unavailable: {exc}")
    try:
        report = apply_topics_sync(broker.bootstrap, topology, security=security)
        assert report.in_sync, report.format_table()
    except BaseException:
        broker.stop()
        raise
    return broker
