"""How claimstream talks to Kafka securely: TLS, SASL, and the `CLAIMSTREAM_KAFKA_*` settings.

One set of variables configures every Kafka connection claimstream makes, the faust worker's
and every command's and tool's alike (docs/security.md, "Transport: Kafka and Redis"):

| variable | meaning |
|---|---|
| `CLAIMSTREAM_KAFKA_SECURITY_PROTOCOL` | `PLAINTEXT` (default), `SSL`, `SASL_SSL`, ... |
| `CLAIMSTREAM_KAFKA_SASL_MECHANISM` | `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512` (SASL only) |
| `CLAIMSTREAM_KAFKA_SASL_USERNAME` | the SASL user |
| `CLAIMSTREAM_KAFKA_SASL_PASSWORD_FILE` | a file holding its password (or `_SASL_PASSWORD`) |
| `CLAIMSTREAM_KAFKA_SSL_CA_FILE` | PEM CA certificates to trust; unset: the system's |
| `CLAIMSTREAM_KAFKA_SSL_CERT_FILE` / `_KEY_FILE` | a client certificate (mutual TLS) |
| `CLAIMSTREAM_KAFKA_SSL_CHECK_HOSTNAME` | `true` (default): the certificate must name the host |
| `CLAIMSTREAM_KAFKA_ALLOW_PLAINTEXT_SASL` | `true` lets `SASL_PLAINTEXT` through (refused else) |

`KafkaSecurity.from_env` is the one parser; it refuses every inconsistent combination with a
`ConfigError` naming the variable (SASL over plaintext unless allowed, a SASL or TLS setting
the protocol would ignore, a mechanism without user or password, a certificate without its
key, an unreadable file), so a worker or command with a wrong setting stops at start (exit 2)
instead of connecting some other way than its operator meant. `client_options()` are the
keyword arguments of every aiokafka client; `faust_credentials()` faust's `broker_credentials`.

The password is a `Secret`: its repr and str are `***`, it is not in `KafkaSecurity`'s repr,
and no message here quotes it. `describe()` is what may be logged.

`check_connection` is the first thing a command does once the broker's port answers: one Kafka
connection with these settings (TLS handshake, ApiVersions, SASL login, then a metadata request
naming no topic, which a broker that wants a login refuses), so a certificate the client does
not trust, a broker asking for a client certificate or a login, or a refused SASL login is one
sentence naming the variable to fix (`BrokerRefused`), instead of aiokafka's "Unable to
bootstrap" after its retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from claimstream.kafka.url import BrokerUnreachable
from claimstream.model.config import ConfigError, env_flag
from claimstream.model.tls import TlsFiles, TlsVariables

__all__ = [
    "MECHANISMS",
    "PROTOCOLS",
    "VARIABLES",
    "BrokerRefused",
    "KafkaSecurity",
    "Secret",
    "check_connection",
    "resolve",
]

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
Mechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
PROTOCOLS: tuple[Protocol, ...] = ("PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT")
MECHANISMS: tuple[Mechanism, ...] = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")

_PREFIX = "CLAIMSTREAM_KAFKA_"
SECURITY_PROTOCOL = _PREFIX + "SECURITY_PROTOCOL"
SASL_MECHANISM = _PREFIX + "SASL_MECHANISM"
SASL_USERNAME = _PREFIX + "SASL_USERNAME"
SASL_PASSWORD = _PREFIX + "SASL_PASSWORD"
SASL_PASSWORD_FILE = _PREFIX + "SASL_PASSWORD_FILE"
SSL_CA_FILE = _PREFIX + "SSL_CA_FILE"
SSL_CERT_FILE = _PREFIX + "SSL_CERT_FILE"
SSL_KEY_FILE = _PREFIX + "SSL_KEY_FILE"
SSL_CHECK_HOSTNAME = _PREFIX + "SSL_CHECK_HOSTNAME"
ALLOW_PLAINTEXT_SASL = _PREFIX + "ALLOW_PLAINTEXT_SASL"
#: every variable this module reads, with its default as deploy/claimstream.env.example shows it
VARIABLES: dict[str, str] = {
    SECURITY_PROTOCOL: "PLAINTEXT",
    SASL_MECHANISM: "",
    SASL_USERNAME: "",
    SASL_PASSWORD: "",
    SASL_PASSWORD_FILE: "",
    SSL_CA_FILE: "",
    SSL_CERT_FILE: "",
    SSL_KEY_FILE: "",
    SSL_CHECK_HOSTNAME: "true",
    ALLOW_PLAINTEXT_SASL: "false",
}
_SASL_VARIABLES = (SASL_MECHANISM, SASL_USERNAME, SASL_PASSWORD, SASL_PASSWORD_FILE)
_TLS_VARIABLES = (SSL_CA_FILE, SSL_CERT_FILE, SSL_KEY_FILE, SSL_CHECK_HOSTNAME)
TLS_NAMES = TlsVariables(SSL_CA_FILE, SSL_CERT_FILE, SSL_KEY_FILE, SSL_CHECK_HOSTNAME)


class Secret:
    """A password that says `***` whenever it is printed, logged or repr'd.

    `reveal()` is the only way to the value: grep for it to find every place it goes."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, len(self._value)))


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """How to connect to the brokers. The default is what a development broker wants:
    PLAINTEXT, no authentication. Construction checks consistency (`ConfigError`)."""

    protocol: Protocol = "PLAINTEXT"
    sasl_mechanism: Mechanism | None = None
    sasl_username: str | None = None
    sasl_password: Secret | None = field(default=None, repr=False)
    #: PEM CA certificates to trust; None: the system's trust store
    ssl_ca_file: str | None = None
    #: client certificate and key for mutual TLS (both or neither)
    ssl_cert_file: str | None = None
    ssl_key_file: str | None = None
    ssl_check_hostname: bool = True
    allow_plaintext_sasl: bool = False

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ConfigError(
                f"{SECURITY_PROTOCOL} must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}"
            )
        if self.sasl:
            self._check_sasl()
        else:
            given = [
                name
                for name, value in (
                    (SASL_MECHANISM, self.sasl_mechanism),
                    (SASL_USERNAME, self.sasl_username),
                    (SASL_PASSWORD, self.sasl_password),
                )
                if value is not None
            ]
            if given:
                raise ConfigError(
                    f"{given[0]} is set but {SECURITY_PROTOCOL}={self.protocol} uses no SASL: "
                    f"set {SECURITY_PROTOCOL}=SASL_SSL, or unset it"
                )
        if self.tls:
            self.tls_files.check_pair()
        else:
            given = self.tls_files.given()
            if given:
                raise ConfigError(
                    f"{given[0]} is set but {SECURITY_PROTOCOL}={self.protocol} uses no TLS: "
                    f"set {SECURITY_PROTOCOL}=SSL or SASL_SSL, or unset it"
                )

    def _check_sasl(self) -> None:
        if self.protocol == "SASL_PLAINTEXT" and not self.allow_plaintext_sasl:
            raise ConfigError(
                f"{SECURITY_PROTOCOL}=SASL_PLAINTEXT is refused: the login and every record "
                "(patients' events among them) would cross the network unencrypted, PLAIN "
                f"passwords in clear. Use SASL_SSL, or set {ALLOW_PLAINTEXT_SASL}=true on a "
                "network you trust (development only)"
            )
        if self.sasl_mechanism is None:
            raise ConfigError(
                f"{SASL_MECHANISM} is required with {SECURITY_PROTOCOL}={self.protocol}: "
                f"one of {', '.join(MECHANISMS)}"
            )
        if self.sasl_mechanism not in MECHANISMS:
            raise ConfigError(
                f"{SASL_MECHANISM} must be one of {', '.join(MECHANISMS)}, "
                f"got {self.sasl_mechanism!r}"
            )
        if not self.sasl_username:
            raise ConfigError(f"{SASL_USERNAME} is required with {SASL_MECHANISM}")
        if self.sasl_password is None or not self.sasl_password.reveal():
            raise ConfigError(
                f"{SASL_PASSWORD_FILE} (or {SASL_PASSWORD}) is required with {SASL_MECHANISM}"
            )

    # -- what it means --------------------------------------------------------------------

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_SSL", "SASL_PLAINTEXT")

    def describe(self) -> str:
        """One line for logs and messages, without the password: `SASL_SSL, SCRAM-SHA-512 as
        claimstream-worker, CA /run/secrets/kafka-ca.pem`."""
        parts: list[str] = [self.protocol]
        if self.sasl:
            parts.append(f"{self.sasl_mechanism} as {self.sasl_username}")
        if self.tls:
            parts.append(f"CA {self.ssl_ca_file}" if self.ssl_ca_file else "system CAs")
            if self.ssl_cert_file:
                parts.append(f"client certificate {self.ssl_cert_file}")
            if not self.ssl_check_hostname:
                parts.append("host name not checked")
        return ", ".join(parts)

    @property
    def tls_files(self) -> TlsFiles:
        """The TLS files and host-name check, with the variables that set them."""
        return TlsFiles(
            TLS_NAMES,
            self.ssl_ca_file,
            self.ssl_cert_file,
            self.ssl_key_file,
            self.ssl_check_hostname,
        )

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context (None without TLS); `ConfigError` naming the variable whose file
        cannot be used. Certificates are verified; host names too unless switched off."""
        if not self.tls:
            return None
        try:
            context = ssl.create_default_context(cafile=self.ssl_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(_file_problem(SSL_CA_FILE, self.ssl_ca_file, exc)) from None
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.check_hostname = self.ssl_check_hostname
        if self.ssl_cert_file is not None:
            self.tls_files.check_readable(ca=False)
            try:
                context.load_cert_chain(self.ssl_cert_file, self.ssl_key_file)
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"{SSL_CERT_FILE} / {SSL_KEY_FILE}: {self.ssl_cert_file} and "
                    f"{self.ssl_key_file} are no matching PEM certificate and unencrypted key "
                    f"({_reason(exc)})"
                ) from None
        return context

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments for every aiokafka client (producer, consumer, admin)."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.tls:
            options["ssl_context"] = self.ssl_context()
        if self.sasl:
            assert self.sasl_password is not None
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password.reveal()
        return options

    def faust_credentials(self) -> Any:
        """faust's `broker_credentials`: None for PLAINTEXT, else `faust.SSLCredentials` or
        `faust.SASLCredentials` (faust hands them to every aiokafka client it makes)."""
        if self.protocol == "PLAINTEXT":
            return None
        import faust

        context = self.ssl_context()
        if not self.sasl:
            return faust.SSLCredentials(context)
        assert self.sasl_password is not None
        return faust.SASLCredentials(
            username=self.sasl_username,
            password=self.sasl_password.reveal(),
            ssl_context=context,  # None: SASL_PLAINTEXT
            mechanism=self.sasl_mechanism,
        )

    # -- from the environment ------------------------------------------------------------

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> KafkaSecurity:
        """The settings of the `CLAIMSTREAM_KAFKA_*` variables (empty means unset); the files
        they name are read and checked now, so a bad one stops the start."""
        env = os.environ if environ is None else environ

        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        protocol = (text(SECURITY_PROTOCOL) or "PLAINTEXT").upper()
        mechanism = text(SASL_MECHANISM)
        security = cls(
            protocol=cast(Protocol, protocol),
            sasl_mechanism=cast(Mechanism, mechanism.upper()) if mechanism else None,
            sasl_username=text(SASL_USERNAME),
            sasl_password=_password(env),
            ssl_ca_file=text(SSL_CA_FILE),
            ssl_cert_file=text(SSL_CERT_FILE),
            ssl_key_file=text(SSL_KEY_FILE),
            ssl_check_hostname=env_flag(env, SSL_CHECK_HOSTNAME, default=True),
            allow_plaintext_sasl=env_flag(env, ALLOW_PLAINTEXT_SASL, default=False),
        )
        security.ssl_context()  # the files: readable, PEM, the key matches the certificate
        return security


def resolve(security: KafkaSecurity | None) -> KafkaSecurity:
    """`security`, or the environment's when None (what every command and tool uses)."""
    return security if security is not None else KafkaSecurity.from_env()


def _password(env: Mapping[str, str]) -> Secret | None:
    inline = env.get(SASL_PASSWORD, "")
    path = env.get(SASL_PASSWORD_FILE, "").strip()
    if inline and path:
        raise ConfigError(f"set {SASL_PASSWORD_FILE} or {SASL_PASSWORD}, not both")
    if path:
        try:
            value = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(_file_problem(SASL_PASSWORD_FILE, path, exc)) from None
        if not value:
            raise ConfigError(f"{SASL_PASSWORD_FILE}: {path} is empty")
        return Secret(value)
    return Secret(inline) if inline else None


def _file_problem(variable: str, path: str | None, exc: BaseException) -> str:
    return f"{variable}: cannot use {path}: {_reason(exc)}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc).replace("_", " ").lower()
    if isinstance(exc, OSError):
        return str(exc.strerror or exc).lower()
    return str(exc)


# --- the connection check -------------------------------------------------------------------


class BrokerRefused(RuntimeError):
    """The broker answered and refused this connection's security: its certificate is not
    trusted, it wants a client certificate, it is no TLS listener, or it refused the SASL login.
    A configuration error (exit 2): the message names the variables to check."""

    def __init__(self, bootstrap: str, detail: str) -> None:
        super().__init__(f"the broker at {bootstrap} refused the connection: {detail}")
        self.bootstrap = bootstrap
        self.detail = detail


async def check_connection(
    bootstrap: str, security: KafkaSecurity | None = None, *, within: float = 10.0
) -> None:
    """Return once one bootstrap address completes a Kafka connection with `security` (TLS
    handshake, ApiVersions, SASL login); `BrokerRefused` when the broker refuses it,
    `BrokerUnreachable` when no address answers."""
    from aiokafka.conn import create_conn
    from aiokafka.protocol.metadata import MetadataRequest

    security = resolve(security)
    options = security.client_options()
    unreachable: BrokerUnreachable | None = None
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            async with asyncio.timeout(within):
                conn = await create_conn(
                    host.strip("[]"),
                    int(port),
                    client_id="claimstream-check",
                    request_timeout_ms=int(within * 1000),
                    **options,
                )
                try:
                    # no topics named (none created): does it serve us, or want a login first?
                    await conn.send(MetadataRequest([], allow_auto_topic_creation=False))
                finally:
                    await _closed(conn.close())
            return
        except BrokerRefused:
            raise
        except Exception as exc:  # noqa: BLE001 - sorted into refused / unreachable below
            await asyncio.sleep(0.05)  # lets a failed TLS transport finish closing its socket
            refused = _refusal(exc, security)
            if refused is not None:
                raise BrokerRefused(address.strip(), refused) from None
            unreachable = unreachable or BrokerUnreachable(bootstrap, _unreachable(exc, within))
    raise unreachable or BrokerUnreachable(bootstrap, "no address")


async def _closed(closing: Any, within: float = 2.0) -> None:
    """Wait (a little) until a closed connection's socket is closed too: a TLS transport
    closes after its close_notify exchange, and a loop that ends first leaks the socket."""
    with contextlib.suppress(Exception):
        await asyncio.wait_for(asyncio.shield(closing), within)


def _unreachable(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, OSError):
        return str(exc.strerror or exc).lower()
    return type(exc).__name__


def _refusal(exc: BaseException, security: KafkaSecurity) -> str | None:
    """What a failed connection means for the operator, when it is the security settings'
    doing; None when it is plain unreachability."""
    from aiokafka import errors

    protocol = f"{SECURITY_PROTOCOL}={security.protocol}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = exc.verify_message or _reason(exc)
        fix = f"{SSL_CA_FILE} must name the CA that signed the broker's certificate"
        if "hostname" in message.lower() or "ip address" in message.lower():
            fix = (
                "the certificate does not name the host in the broker URL: connect by a "
                f"name it carries, or set {SSL_CHECK_HOSTNAME}=false"
            )
        return f"its TLS certificate is not trusted ({message}): {fix}"
    if isinstance(exc, ssl.SSLError):
        reason = _reason(exc)
        if "wrong version" in reason or "record layer" in reason or "http request" in reason:
            return f"TLS handshake failed ({reason}): it is no TLS listener; check {protocol}"
        if "certificate required" in reason or "handshake failure" in reason:
            return (
                f"TLS handshake failed ({reason}): it wants a client certificate "
                f"({SSL_CERT_FILE} and {SSL_KEY_FILE}) it trusts"
            )
        return f"TLS handshake failed ({reason}); check {protocol} and {SSL_CA_FILE}"
    if isinstance(exc, errors.UnsupportedSaslMechanismError):
        offered = _lower(str(exc))
        return f"it does not offer {security.sasl_mechanism} ({offered}); check {SASL_MECHANISM}"
    sasl_failure = (
        errors.SaslAuthenticationFailed,
        errors.IllegalSaslStateError,
        errors.AuthenticationFailedError,
        errors.AuthenticationMethodNotSupported,
    )
    if isinstance(exc, sasl_failure) or (
        security.sasl and isinstance(exc, KeyError | ValueError | AssertionError)
    ):
        # aiokafka's SCRAM client fails with a KeyError/ValueError on a server's error message
        return (
            f"SASL {security.sasl_mechanism} login as {security.sasl_username!r} was refused; "
            f"check {SASL_USERNAME} and {SASL_PASSWORD_FILE}, and that the user exists for "
            "that mechanism"
        )
    if isinstance(exc, errors.KafkaConnectionError | ConnectionResetError):
        if security.protocol == "PLAINTEXT":
            hint = f"does it require TLS or SASL? Set {SECURITY_PROTOCOL}"
        elif security.protocol == "SSL":
            hint = (
                f"does it want a client certificate ({SSL_CERT_FILE}, {SSL_KEY_FILE}) or SASL "
                f"({SECURITY_PROTOCOL}=SASL_SSL)?"
            )
        else:
            hint = (
                f"does it offer {security.sasl_mechanism} ({SASL_MECHANISM})? Check "
                f"{SASL_USERNAME} and the TLS settings too"
            )
        return f"it closed the connection before answering ({protocol}): {hint}"
    return None


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:]
