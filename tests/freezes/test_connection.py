"""How claimstream reaches Redis beyond its URL: the password file, the TLS files, what is refused
at start naming the variable, and which failures are the configuration's (exit 2) rather than an
absent server's (exit 3). No server needed."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from redis import exceptions

from claimstream.freezes.connection import (
    REGISTRY_ACL_COMMANDS,
    VARIABLES,
    RedisOptions,
    acl_line,
    refusal,
)
from claimstream.model.config import ConfigError
from claimstream.stream.settings import Settings, known_variables

URL = "rediss://claimstream-worker@redis.internal:6380/0"


@pytest.fixture
def password(tmp_path: Path) -> Path:
    path = tmp_path / "redis-password"
    path.write_text("r3dis-s3cret\n", encoding="utf-8")
    return path


def test_the_password_file_is_read_and_kept_out_of_reprs(password: Path) -> None:
    options = RedisOptions.for_url(URL, {"CLAIMSTREAM_REDIS_PASSWORD_FILE": str(password)})
    assert options.client_kwargs(URL)["password"] == "r3dis-s3cret"
    assert "r3dis-s3cret" not in repr(options)
    assert "r3dis-s3cret" not in repr(Settings(redis_url=URL, redis_options=options))


def test_a_rediss_url_verifies_the_certificate_and_host_name_by_default() -> None:
    kwargs = RedisOptions().client_kwargs(URL)
    assert kwargs["ssl_cert_reqs"] == "required"
    assert kwargs["ssl_check_hostname"] is True
    assert kwargs["ssl_min_version"] >= ssl.TLSVersion.TLSv1_2


def test_the_tls_files_go_to_redis_py(tmp_path: Path) -> None:
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_text("-", encoding="utf-8")
    env = {
        "CLAIMSTREAM_REDIS_TLS_CA_FILE": str(tmp_path / "ca.pem"),
        "CLAIMSTREAM_REDIS_TLS_CERT_FILE": str(tmp_path / "client.pem"),
        "CLAIMSTREAM_REDIS_TLS_KEY_FILE": str(tmp_path / "client.key"),
        "CLAIMSTREAM_REDIS_TLS_CHECK_HOSTNAME": "false",
    }
    kwargs = RedisOptions.for_url(URL, env).client_kwargs(URL)
    assert kwargs["ssl_ca_certs"] == str(tmp_path / "ca.pem")
    assert kwargs["ssl_certfile"] == str(tmp_path / "client.pem")
    assert kwargs["ssl_keyfile"] == str(tmp_path / "client.key")
    assert kwargs["ssl_check_hostname"] is False


def test_a_plain_url_gets_no_tls_arguments() -> None:
    assert RedisOptions().client_kwargs("redis://127.0.0.1:6379/0") == {}


@pytest.mark.parametrize(
    ("url", "env", "named"),
    [
        (
            "redis://redis:6379/0",
            {"CLAIMSTREAM_REDIS_TLS_CA_FILE": "/etc/hosts"},
            "CLAIMSTREAM_REDIS_TLS_CA_FILE is set but CLAIMSTREAM_REDIS_URL is redis://, not TLS",
        ),
        (
            "rediss://worker:inline@redis:6380/0",
            {"CLAIMSTREAM_REDIS_PASSWORD_FILE": "PASSWORD"},
            "CLAIMSTREAM_REDIS_URL carries a password and CLAIMSTREAM_REDIS_PASSWORD_FILE is set",
        ),
        (
            None,
            {"CLAIMSTREAM_REDIS_PASSWORD_FILE": "PASSWORD"},
            "CLAIMSTREAM_REDIS_PASSWORD_FILE is set but CLAIMSTREAM_REDIS_URL is not",
        ),
        (
            URL,
            {"CLAIMSTREAM_REDIS_TLS_CERT_FILE": "/etc/hosts"},
            "CLAIMSTREAM_REDIS_TLS_KEY_FILE is missing",
        ),
        (
            URL,
            {"CLAIMSTREAM_REDIS_TLS_CA_FILE": "/nonexistent/ca.pem"},
            "CLAIMSTREAM_REDIS_TLS_CA_FILE: cannot read /nonexistent/ca.pem",
        ),
        (
            URL,
            {"CLAIMSTREAM_REDIS_PASSWORD_FILE": "/nonexistent/password"},
            "CLAIMSTREAM_REDIS_PASSWORD_FILE: cannot read /nonexistent/password",
        ),
        (
            URL,
            {"CLAIMSTREAM_REDIS_TLS_CHECK_HOSTNAME": "perhaps"},
            "CLAIMSTREAM_REDIS_TLS_CHECK_HOSTNAME must be true or false",
        ),
    ],
    ids=[
        "TLS file with redis://",
        "password twice",
        "options without URL",
        "certificate without key",
        "unreadable CA",
        "unreadable password file",
        "bad boolean",
    ],
)
def test_an_option_that_would_not_apply_is_refused_naming_the_variable(
    url: str | None, env: dict[str, str], named: str, password: Path
) -> None:
    env = {k: str(password) if v == "PASSWORD" else v for k, v in env.items()}
    with pytest.raises(ConfigError) as caught:
        RedisOptions.for_url(url, env)
    assert named in str(caught.value)


def test_the_worker_settings_check_the_options_against_its_url(password: Path) -> None:
    env = {
        "CLAIMSTREAM_REDIS_URL": "redis://redis:6379/0",
        "CLAIMSTREAM_REDIS_TLS_CHECK_HOSTNAME": "false",
    }
    with pytest.raises(ConfigError, match="is redis://, not TLS"):
        Settings.from_env(env)
    env = {"CLAIMSTREAM_REDIS_URL": URL, "CLAIMSTREAM_REDIS_PASSWORD_FILE": str(password)}
    assert Settings.from_env(env).redis_options.password == "r3dis-s3cret"


def test_every_redis_variable_is_known_to_the_unknown_variable_check() -> None:
    assert set(VARIABLES) <= known_variables()


# --- refused (exit 2) or unreachable (exit 3) ------------------------------------------------


def test_a_wrong_password_is_a_refusal_naming_where_the_password_comes_from() -> None:
    exc = exceptions.AuthenticationError("invalid username-password pair or user is disabled.")
    assert "CLAIMSTREAM_REDIS_PASSWORD_FILE" in (refusal(exc) or "")


def test_an_acl_denial_is_a_refusal_listing_the_commands_the_user_needs() -> None:
    exc = exceptions.NoPermissionError("this user has no permissions to run the 'scan' command")
    assert "+scan" in (refusal(exc) or "")


def test_an_untrusted_certificate_behind_a_connection_error_is_a_refusal() -> None:
    cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cause.verify_message = "unable to get local issuer certificate"
    wrapped = exceptions.ConnectionError("Error connecting")
    wrapped.__cause__ = cause
    assert "CLAIMSTREAM_REDIS_TLS_CA_FILE" in (refusal(wrapped) or "")


def test_a_refused_tcp_connection_is_no_refusal_but_unreachability() -> None:
    wrapped = exceptions.ConnectionError("Error 111 connecting")
    wrapped.__cause__ = ConnectionRefusedError(111, "Connection refused")
    assert refusal(wrapped, URL) is None


def test_a_reset_at_once_from_a_tls_url_asks_for_a_client_certificate() -> None:
    wrapped = exceptions.ConnectionError("Connection reset")
    wrapped.__cause__ = ConnectionResetError(104, "Connection reset by peer")
    assert "CLAIMSTREAM_REDIS_TLS_CERT_FILE" in (refusal(wrapped, URL) or "")
    assert refusal(wrapped, "redis://redis:6379/0") is None


def test_the_acl_line_allows_the_registry_commands_on_its_prefix_only() -> None:
    line = acl_line("claimstream-worker", "claimstream", "pw")
    assert line.startswith("user claimstream-worker on >pw ~claimstream:* resetchannels -@all ")
    assert line.split()[-len(REGISTRY_ACL_COMMANDS) :] == [f"+{c}" for c in REGISTRY_ACL_COMMANDS]
