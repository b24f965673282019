"""A throwaway certificate authority for the TLS tests: a CA, a server certificate for
127.0.0.1/localhost, and client certificates, as PEM files in a directory the test owns.

Made with `cryptography` (already a dependency), EC P-256 keys, valid for a day. A second CA
gives "a certificate nobody here trusts".
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class Pair:
    """A PEM certificate file and its unencrypted PEM key file."""

    cert: str
    key: str


@dataclass(frozen=True)
class Pki:
    ca: str  # the CA certificate (what clients and servers trust)
    server: Pair  # for 127.0.0.1 and localhost
    client: Pair  # "claimstream-test-client", signed by the CA
    stranger_ca: str  # another CA: trusting only it, nothing here verifies
    stranger_client: Pair  # a client certificate signed by the other CA


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> str:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return str(path)


def _write_cert(path: Path, cert: x509.Certificate) -> str:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(path)


def _ca(common: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(_name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    common: str,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    *,
    server: bool,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    ca_cert, ca_key = ca
    now = datetime.datetime.now(datetime.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(ca_key, hashes.SHA256()), key


def make_pki(directory: Path) -> Pki:
    """A CA, a server certificate for 127.0.0.1/localhost, a client certificate, and a stranger
    CA with its own client certificate, all written under `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca("claimstream test CA")
    stranger = _ca("someone else's CA")
    server_cert, server_key = _leaf("localhost", ca, server=True)
    client_cert, client_key = _leaf("claimstream-test-client", ca, server=False)
    other_cert, other_key = _leaf("claimstream-test-client", stranger, server=False)
    return Pki(
        ca=_write_cert(directory / "ca.pem", ca[0]),
        server=Pair(
            _write_cert(directory / "server.pem", server_cert),
            _write_key(directory / "server.key", server_key),
        ),
        client=Pair(
            _write_cert(directory / "client.pem", client_cert),
            _write_key(directory / "client.key", client_key),
        ),
        stranger_ca=_write_cert(directory / "stranger-ca.pem", stranger[0]),
        stranger_client=Pair(
            _write_cert(directory / "stranger-client.pem", other_cert),
            _write_key(directory / "stranger-client.key", other_key),
        ),
    )
