"""The command line over an encrypted Kafka connection: the local broker behind its TLS
terminator (`LocalBroker(tls=...)`, stunnel, since Tansu 0.6.0 serves no TLS itself), with
mutual TLS, and with Tansu's `--authentication`.

What the SASL tests can and cannot show: Tansu 0.6.0 on its memory storage keeps no SCRAM
credentials and offers no PLAIN, so no login can succeed against it. They show that the client
performs the SCRAM exchange over TLS and that the broker's refusal, and a broker that wants a
login the client does not attempt, are one line naming the variables (exit 2). A successful
SASL login is tested against no broker here (docs/security.md says so).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from claimstream.cli.main import main
from claimstream.devtools.localbroker import BrokerStartError, BrokerTls, LocalBroker
from claimstream.kafka.reader import TopicReader, TopicRecord
from claimstream.kafka.security import KafkaSecurity
from claimstream.kafka.topology import Topology, load_topology
from tests.cli.support import simulated, write_lines
from tests.support.brokers import start_broker_with_topics
from tests.support.pki import Pki, make_pki
from tests.support.services import unavailable

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def start(tls: BrokerTls, *, authentication: bool = False) -> LocalBroker:
    try:
        return LocalBroker(tls=tls, authentication=authentication).start()
    except BrokerStartError as exc:
        unavailable(f"local broker with TLS unavailable: {exc}")


@pytest.fixture(scope="module")
def tls_broker(pki: Pki, topology: Topology) -> Iterator[LocalBroker]:
    """TLS on the broker's only port; every declared topic created over TLS."""
    broker = start_broker_with_topics(
        topology,
        tls=BrokerTls(pki.server.cert, pki.server.key, pki.ca),
        security=KafkaSecurity(protocol="SSL", ssl_ca_file=pki.ca),
    )
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def mtls_broker(pki: Pki) -> Iterator[LocalBroker]:
    """Mutual TLS: only clients with a certificate the test CA signed get through."""
    broker = start(BrokerTls(pki.server.cert, pki.server.key, pki.ca, client_ca_file=pki.ca))
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def auth_broker(pki: Pki) -> Iterator[LocalBroker]:
    """TLS, and Tansu's --authentication: nothing but a SASL login before a login."""
    broker = start(BrokerTls(pki.server.cert, pki.server.key, pki.ca), authentication=True)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def use(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Set the `CLAIMSTREAM_*` variables of one command run (none from the caller's shell)."""
    import os

    for name in list(os.environ):
        if name.startswith("CLAIMSTREAM_"):
            monkeypatch.delenv(name)
    yield monkeypatch


def one_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def read(broker: LocalBroker, topic: str, security: KafkaSecurity) -> list[TopicRecord]:
    async def go() -> list[TopicRecord]:
        async with TopicReader(broker.bootstrap, topic, security=security) as reader:
            return await reader.read_new()

    return asyncio.run(go())


# --- TLS ---------------------------------------------------------------------------------------


def test_topics_apply_check_over_tls_finds_every_declared_topic(
    tls_broker: LocalBroker, use: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in tls_broker.environment().items():
        use.setenv(name, value)
    assert main(["topics", "apply", "--check"]) == 0
    assert f"{len(load_topology().topics)} ok" in capsys.readouterr().out


def test_produce_over_tls_publishes_every_event(
    tls_broker: LocalBroker, pki: Pki, use: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in tls_broker.environment().items():
        use.setenv(name, value)
    events = simulated(60, seed=41)
    assert main(["produce", str(write_lines(tmp_path / "e.jsonl", list(events)))]) == 0
    security = KafkaSecurity(protocol="SSL", ssl_ca_file=pki.ca)
    topics = {"settlement.dispensing.v1", "settlement.consultations.v1", "settlement.stays.v1",
              "settlement.claims.v1"}  # fmt: skip
    records = [r for t in topics for r in read(tls_broker, t, security)]
    published = {orjson.loads(r.value or b"")["event_id"] for r in records}
    assert {e["event_id"] for e in events} <= published


def test_rules_set_and_list_over_tls_go_through_the_control_topic(
    tls_broker: LocalBroker, use: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in tls_broker.environment().items():
        use.setenv(name, value)
    assert main(["rules", "set", "readmission_24h", "max_gap_hours=30", "--by", "ops"]) == 0
    capsys.readouterr()
    assert main(["rules", "list"]) == 0
    assert "30" in capsys.readouterr().out


def test_unfreeze_over_tls_publishes_the_action(
    tls_broker: LocalBroker, pki: Pki, use: pytest.MonkeyPatch
) -> None:
    for name, value in tls_broker.environment().items():
        use.setenv(name, value)
    argv = ["unfreeze", "institution:H-TLS-1", "--reason", "appeal upheld", "--by", "li.na"]
    assert main(argv) == 0
    security = KafkaSecurity(protocol="SSL", ssl_ca_file=pki.ca)
    keys = [r.key for r in read(tls_broker, "claimstream.actions.v1", security)]
    assert b"institution:H-TLS-1" in keys


def test_a_broker_certificate_from_an_unknown_ca_is_refused_naming_the_ca_variable(
    tls_broker: LocalBroker,
    pki: Pki,
    use: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in tls_broker.environment().items():
        use.setenv(name, value)
    use.setenv("CLAIMSTREAM_KAFKA_SSL_CA_FILE", pki.stranger_ca)
    assert main(["topics", "apply", "--check"]) == 2
    err = one_line(capsys)
    assert "certificate is not trusted" in err
    assert "CLAIMSTREAM_KAFKA_SSL_CA_FILE must name the CA" in err


def test_a_plaintext_client_at_a_tls_port_is_told_to_set_the_security_protocol(
    tls_broker: LocalBroker, use: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    use.setenv("CLAIMSTREAM_BROKER_URL", tls_broker.url)
    assert main(["topics", "apply", "--check"]) == 2
    err = one_line(capsys)
    assert "CLAIMSTREAM_KAFKA_SECURITY_PROTOCOL=PLAINTEXT" in err
    assert "does it require TLS or SASL?" in err


# --- mutual TLS --------------------------------------------------------------------------------


def test_mutual_tls_lets_a_client_with_a_certificate_create_the_topics(
    mtls_broker: LocalBroker,
    pki: Pki,
    use: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in mtls_broker.environment().items():
        use.setenv(name, value)
    use.setenv("CLAIMSTREAM_KAFKA_SSL_CERT_FILE", pki.client.cert)
    use.setenv("CLAIMSTREAM_KAFKA_SSL_KEY_FILE", pki.client.key)
    assert main(["topics", "apply"]) == 0
    assert "declared topics on" in capsys.readouterr().out


def test_mutual_tls_refuses_a_client_without_a_certificate_naming_the_variables(
    mtls_broker: LocalBroker, use: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in mtls_broker.environment().items():
        use.setenv(name, value)
    assert main(["topics", "apply", "--check"]) == 2
    assert "CLAIMSTREAM_KAFKA_SSL_CERT_FILE" in one_line(capsys)


def test_mutual_tls_refuses_a_certificate_from_another_ca(
    mtls_broker: LocalBroker,
    pki: Pki,
    use: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in mtls_broker.environment().items():
        use.setenv(name, value)
    use.setenv("CLAIMSTREAM_KAFKA_SSL_CERT_FILE", pki.stranger_client.cert)
    use.setenv("CLAIMSTREAM_KAFKA_SSL_KEY_FILE", pki.stranger_client.key)
    assert main(["topics", "apply", "--check"]) == 2
    assert "refused the connection" in one_line(capsys)


# --- SASL over TLS -----------------------------------------------------------------------------


def test_a_broker_that_wants_a_login_refuses_a_client_without_sasl(
    auth_broker: LocalBroker, use: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in auth_broker.environment().items():
        use.setenv(name, value)
    assert main(["topics", "apply", "--check"]) == 2
    err = one_line(capsys)
    assert "closed the connection before answering" in err
    assert "CLAIMSTREAM_KAFKA_SECURITY_PROTOCOL=SASL_SSL" in err


def test_a_refused_scram_login_over_tls_is_one_line_naming_the_user_not_the_password(
    auth_broker: LocalBroker,
    use: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    password = tmp_path / "kafka-password"
    password.write_text("not-the-one\n", encoding="utf-8")
    for name, value in auth_broker.environment().items():
        use.setenv(name, value)
    use.setenv("CLAIMSTREAM_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    use.setenv("CLAIMSTREAM_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    use.setenv("CLAIMSTREAM_KAFKA_SASL_USERNAME", "claimstream-cli")
    use.setenv("CLAIMSTREAM_KAFKA_SASL_PASSWORD_FILE", str(password))
    assert main(["topics", "apply", "--check"]) == 2
    err = one_line(capsys)
    assert "SASL SCRAM-SHA-512 login as 'claimstream-cli' was refused" in err
    assert "not-the-one" not in err
