"""The TLS client settings Kafka's and Redis's connections share (`model.tls`)."""

from pathlib import Path

import pytest

from claimstream.model.config import ConfigError
from claimstream.model.tls import TlsFiles, TlsVariables

NAMES = TlsVariables("X_CA_FILE", "X_CERT_FILE", "X_KEY_FILE", "X_CHECK_HOSTNAME")


def test_the_settings_given_name_their_variables_and_a_hostname_check_switched_off() -> None:
    files = TlsFiles(NAMES, ca_file="ca.pem", check_hostname=False)
    assert files.given() == ["X_CA_FILE", "X_CHECK_HOSTNAME"]


def test_a_certificate_without_its_key_names_the_missing_variable() -> None:
    with pytest.raises(ConfigError, match=r"^X_KEY_FILE is missing: mutual TLS needs both"):
        TlsFiles(NAMES, cert_file="client.pem").check_pair()


def test_an_unreadable_ca_file_is_named(tmp_path: Path) -> None:
    files = TlsFiles(NAMES, ca_file=str(tmp_path / "absent.pem"))
    with pytest.raises(ConfigError, match=r"^X_CA_FILE: cannot read .*absent\.pem$"):
        files.check_readable()


def test_the_ca_file_can_be_left_out_of_the_readable_check(tmp_path: Path) -> None:
    TlsFiles(NAMES, ca_file=str(tmp_path / "absent.pem")).check_readable(ca=False)
