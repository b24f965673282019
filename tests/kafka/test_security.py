"""`CLAIMSTREAM_KAFKA_*`: what each setting turns into for aiokafka and faust, and every
combination that is refused at start, naming the variable (no broker needed)."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest

from claimstream.cli.main import main
from claimstream.kafka.security import KafkaSecurity, Secret
from claimstream.model.config import ConfigError
from claimstream.stream.settings import Settings, known_variables
from tests.cli.support import closed_port
from tests.support.pki import Pki, make_pki

SCRAM = {
    "CLAIMSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "CLAIMSTREAM_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "CLAIMSTREAM_KAFKA_SASL_USERNAME": "claimstream-worker",
    "CLAIMSTREAM_KAFKA_SASL_PASSWORD": "pa55-w0rd",
}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def refused(env: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as caught:
        KafkaSecurity.from_env(env)
    return str(caught.value)


# --- what the settings become -----------------------------------------------------------------


def test_no_variable_means_plaintext_without_credentials() -> None:
    security = KafkaSecurity.from_env({})
    assert security == KafkaSecurity()
    assert security.client_options() == {"security_protocol": "PLAINTEXT"}
    assert security.faust_credentials() is None


def test_sasl_ssl_scram_gives_aiokafka_the_mechanism_the_user_and_a_verifying_context() -> None:
    options = KafkaSecurity.from_env(SCRAM).client_options()
    context = options.pop("ssl_context")
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "claimstream-worker",
        "sasl_plain_password": "pa55-w0rd",
    }
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_the_mechanism_and_protocol_may_be_written_in_lower_case() -> None:
    env = {**SCRAM, "CLAIMSTREAM_KAFKA_SECURITY_PROTOCOL": "sasl_ssl",
           "CLAIMSTREAM_KAFKA_SASL_MECHANISM": "scram-sha-256"}  # fmt: skip
    security = KafkaSecurity.from_env(env)
    assert (security.protocol, security.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-256")


def test_faust_gets_sasl_credentials_over_tls() -> None:
    credentials = KafkaSecurity.from_env(SCRAM).faust_credentials()
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert (credentials.username, credentials.password) == ("claimstream-worker", "pa55-w0rd")


def test_faust_gets_ssl_credentials_with_the_client_certificate(pki: Pki) -> None:
    security = KafkaSecurity.from_env(
        {
            "CLAIMSTREAM_KAFKA_SECURITY_PROTOCOL": "SSL",
            "CLAIMSTREAM_KAFKA_SSL_CA_FILE": pki.ca,
            "CLAIMSTREAM_KAFKA_SSL_CERT_FILE": pki.client.cert,
            "CLAIMSTREAM_KAFKA_SSL_KEY_FILE": pki.client.key,
        }
    )
    credentials = security.faust_credentials()
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials.protocol.value == "SSL"
    assert credentials.context.verify_mode == ssl.CERT_REQUIRED


def test_the_worker_app_hands_the_credentials_to_faust() -> None:
    from claimstream.kafka.topology import load_topology
    from claimstream.stream.app import _faust_app

    settings = Settings(kafka_security=KafkaSecurity.from_env(SCRAM))
    app = _faust_app(settings, load_topology())
    assert isinstance(app.conf.broker_credentials, faust.SASLCredentials)


def test_the_check_hostname_switch_reaches_the_context(pki: Pki) -> None:
    env = {"CLAIMSTREAM_KAFKA_SECURITY_PROTOCOL": "SSL", "CLAIMSTREAM_KAFKA_SSL_CA_FILE": pki.ca,
           "CLAIMSTREAM_KAFKA_SSL_CHECK_HOSTNAME": "false"}  # fmt: skip
    context = KafkaSecurity.from_env(env).ssl_context()
    assert context is not None and not context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED  # the chain is still verified


def test_the_password_file_is_read_without_its_trailing_newline(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-a-file\n", encoding="utf-8")
    env = {**SCRAM, "CLAIMSTREAM_KAFKA_SASL_PASSWORD": "",
           "CLAIMSTREAM_KAFKA_SASL_PASSWORD_FILE": str(secret)}  # fmt: skip
    options = KafkaSecurity.from_env(env).client_options()
    assert options["sasl_plain_password"] == "from-a-file"


# --- secrets stay secret ----------------------------------------------------------------------


def test_the_password_is_in_no_repr_str_or_description() -> None:
    security = KafkaSecurity.from_env(SCRAM)
    for text in (
        repr(security),
        str(security),
        security.describe(),
        repr(Settings(kafka_security=security)),
    ):
        assert "pa55-w0rd" not in text
    assert str(Secret("pa55-w0rd")) == "***" and "pa55" not in repr(Secret("pa55-w0rd"))
    assert security.describe() == "SASL_SSL, SCRAM-SHA-512 as claimstream-worker, system CAs"


# --- refusals ----------------------------------------------------------------------------------


def test_sasl_over_plaintext_is_refused_unless_explicitly_allowed() -> None:
    env = {**SCRAM, "CLAIMSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}
    message = refused(env)
    assert "SASL_PLAINTEXT is refused" in message
    assert "CLAIMSTREAM_KAFKA_ALLOW_PLAINTEXT_SASL=true" in message
    allowed = KafkaSecurity.from_env({**env, "CLAIMSTREAM_KAFKA_ALLOW_PLAINTEXT_SASL": "true"})
    assert allowed.client_options()["security_protocol"] == "SASL_PLAINTEXT"
    assert "ssl_context" not in allowed.client_options()


def test_a_command_refuses_sasl_over_plaintext_before_connecting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in {**SCRAM, "CLAIMSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}.items():
        monkeypatch.setenv(name, value)
    # a closed port: had it tried to connect, it would say "cannot reach" and exit 3
    assert main(["topics", "apply", "--bootstrap", closed_port()]) == 2
    err = capsys.readouterr().err
    assert err.startswith("claimstream topics apply: CLAIMSTREAM_KAFKA_SECURITY_PROTOCOL=")
    assert "pa55-w0rd" not in err


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"CLAIMSTREAM_KAFKA_SECURITY_PROTOCOL": "TLS"}, "CLAIMSTREAM_KAFKA_SECURITY_PROTOCOL"),
        ({**SCRAM, "CLAIMSTREAM_KAFKA_SASL_MECHANISM": ""}, "CLAIMSTREAM_KAFKA_SASL_MECHANISM"),
        (
            {**SCRAM, "CLAIMSTREAM_KAFKA_SASL_MECHANISM": "GSSAPI"},
            "CLAIMSTREAM_KAFKA_SASL_MECHANISM",
        ),
        ({**SCRAM, "CLAIMSTREAM_KAFKA_SASL_USERNAME": ""}, "CLAIMSTREAM_KAFKA_SASL_USERNAME"),
        ({**SCRAM, "CLAIMSTREAM_KAFKA_SASL_PASSWORD": ""}, "CLAIMSTREAM_KAFKA_SASL_PASSWORD_FILE"),
        (
            {**SCRAM, "CLAIMSTREAM_KAFKA_SASL_PASSWORD_FILE": "/nonexistent/password"},
            "set CLAIMSTREAM_KAFKA_SASL_PASSWORD_FILE or CLAIMSTREAM_KAFKA_SASL_PASSWORD",
        ),
        (
            {"CLAIMSTREAM_KAFKA_SASL_USERNAME": "someone"},
            "CLAIMSTREAM_KAFKA_SASL_USERNAME is set but CLAIMSTREAM_KAFKA_SECURITY_PROTOCOL"
            "=PLAINTEXT uses no SASL",
        ),
        (
            {"CLAIMSTREAM_KAFKA_SSL_CA_FILE": "/etc/ssl/certs/ca-certificates.crt"},
            "CLAIMSTREAM_KAFKA_SSL_CA_FILE is set but CLAIMSTREAM_KAFKA_SECURITY_PROTOCOL"
            "=PLAINTEXT uses no TLS",
        ),
        (
            {**SCRAM, "CLAIMSTREAM_KAFKA_SSL_CERT_FILE": "/some/cert.pem"},
            "CLAIMSTREAM_KAFKA_SSL_KEY_FILE is missing",
        ),
        (
            {**SCRAM, "CLAIMSTREAM_KAFKA_SSL_CA_FILE": "/nonexistent/ca.pem"},
            "CLAIMSTREAM_KAFKA_SSL_CA_FILE: cannot use /nonexistent/ca.pem",
        ),
        (
            {**SCRAM, "CLAIMSTREAM_KAFKA_SSL_CHECK_HOSTNAME": "maybe"},
            "CLAIMSTREAM_KAFKA_SSL_CHECK_HOSTNAME must be true or false",
        ),
    ],
    ids=[
        "unknown protocol",
        "SASL without mechanism",
        "unsupported mechanism",
        "SASL without user",
        "SASL without password",
        "password twice",
        "SASL setting without SASL",
        "TLS setting without TLS",
        "certificate without key",
        "unreadable CA file",
        "bad boolean",
    ],
)
def test_an_inconsistent_setting_is_refused_naming_the_variable(
    env: dict[str, str], named: str
) -> None:
    assert named in refused(env)


def test_a_password_file_that_cannot_be_read_is_named_without_content(tmp_path: Path) -> None:
    env = {**SCRAM, "CLAIMSTREAM_KAFKA_SASL_PASSWORD": "",
           "CLAIMSTREAM_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "missing")}  # fmt: skip
    message = refused(env)
    assert message.startswith(f"CLAIMSTREAM_KAFKA_SASL_PASSWORD_FILE: cannot use {tmp_path}")


def test_a_key_that_does_not_match_the_certificate_is_refused(pki: Pki) -> None:
    env = {"CLAIMSTREAM_KAFKA_SECURITY_PROTOCOL": "SSL",
           "CLAIMSTREAM_KAFKA_SSL_CERT_FILE": pki.client.cert,
           "CLAIMSTREAM_KAFKA_SSL_KEY_FILE": pki.server.key}  # fmt: skip
    assert "no matching PEM certificate and unencrypted key" in refused(env)


def test_a_file_that_is_no_certificate_is_refused_as_ca(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n", encoding="utf-8")
    env = {
        "CLAIMSTREAM_KAFKA_SECURITY_PROTOCOL": "SSL",
        "CLAIMSTREAM_KAFKA_SSL_CA_FILE": str(bogus),
    }
    assert refused(env).startswith("CLAIMSTREAM_KAFKA_SSL_CA_FILE: cannot use")


def test_the_worker_settings_refuse_what_the_commands_refuse() -> None:
    env = {**SCRAM, "CLAIMSTREAM_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}
    with pytest.raises(ConfigError, match="SASL_PLAINTEXT is refused"):
        Settings.from_env(env)


def test_every_kafka_variable_is_known_to_the_unknown_variable_check() -> None:
    from claimstream.kafka.security import VARIABLES

    assert set(VARIABLES) <= known_variables()
    assert len(VARIABLES) == 10
