"""How to reach Redis: the URL with its ACL user, a password file, and TLS.

`CLAIMSTREAM_REDIS_URL` says where and as whom: `rediss://claimstream-worker@redis:6380/0`
(`rediss://` is TLS, `redis://` plain; the user is a Redis ACL user; the password may sit in
the URL, `rediss://user:password@host:port/0`, or better in a file). The other variables
(`RedisOptions.from_env`):

| variable | meaning |
|---|---|
| `CLAIMSTREAM_REDIS_PASSWORD_FILE` | a file holding the password (then none in the URL) |
| `CLAIMSTREAM_REDIS_TLS_CA_FILE` | PEM CA certificates to trust; unset: the system's |
| `CLAIMSTREAM_REDIS_TLS_CERT_FILE` / `_KEY_FILE` | a client certificate (mutual TLS) |
| `CLAIMSTREAM_REDIS_TLS_CHECK_HOSTNAME` | `true` (default): the certificate names the host |

(The TLS ones apply to `rediss://` URLs only.)

`RedisOptions.for_url(url)` reads them and checks them against the URL in use (the worker's,
or a command's `--redis-url`): it refuses, naming the variable, what would silently not apply
(a TLS file with a `redis://` URL, a password both in the URL and in a file, options without a
URL). `connect(url, options)` makes the one kind of client every part of claimstream uses (the
registry, the worker's start-up check, `claimstream freezes`).

`refusal(exc)` tells a Redis that answered and refused us (a wrong password, a command the ACL
user may not run, an untrusted certificate: the configuration's fault, exit 2) from one that
did not answer (exit 3).

The registry's ACL user needs exactly these commands on its key prefix (`REGISTRY_ACL`):
`ping`, `mget`, `set`, `del`, `watch`, `unwatch`, `multi`, `exec`, `scan` on `~PREFIX:*`.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from claimstream.model.config import ConfigError, env_flag
from claimstream.model.tls import TlsFiles, TlsVariables

__all__ = [
    "REGISTRY_ACL_COMMANDS",
    "VARIABLES",
    "RedisOptions",
    "acl_line",
    "close",
    "connect",
    "refusal",
]

_PREFIX = "CLAIMSTREAM_REDIS_"
URL = _PREFIX + "URL"
PASSWORD_FILE = _PREFIX + "PASSWORD_FILE"
TLS_CA_FILE = _PREFIX + "TLS_CA_FILE"
TLS_CERT_FILE = _PREFIX + "TLS_CERT_FILE"
TLS_KEY_FILE = _PREFIX + "TLS_KEY_FILE"
TLS_CHECK_HOSTNAME = _PREFIX + "TLS_CHECK_HOSTNAME"
#: the variables `RedisOptions.from_env` reads, with their defaults as the env example shows them
VARIABLES: dict[str, str] = {
    PASSWORD_FILE: "",
    TLS_CA_FILE: "",
    TLS_CERT_FILE: "",
    TLS_KEY_FILE: "",
    TLS_CHECK_HOSTNAME: "true",
}
#: every command the freeze registry sends (`RedisRegistry`, `freezes rebuild`, readiness)
REGISTRY_ACL_COMMANDS = (
    "ping", "mget", "set", "del", "watch", "unwatch", "multi", "exec", "scan", "info",
)  # fmt: skip
TLS_NAMES = TlsVariables(TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE, TLS_CHECK_HOSTNAME)


def acl_line(user: str, prefix: str = "claimstream", password: str = "<password>") -> str:  # noqa: S107
    """The `ACL SETUSER` / users.acl line of a registry user: its commands on its keys only."""
    commands = " ".join(f"+{c}" for c in REGISTRY_ACL_COMMANDS)
    return f"user {user} on >{password} ~{prefix}:* resetchannels -@all {commands}"


@dataclass(frozen=True, slots=True)
class RedisOptions:
    """What the URL cannot say well: the password from a file, and the TLS files."""

    #: the content of `password_file` (never in reprs)
    password: str | None = field(default=None, repr=False)
    password_file: str | None = None
    tls_ca_file: str | None = None
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    tls_check_hostname: bool = True

    @classmethod
    def for_url(cls, url: str | None, environ: Mapping[str, str] | None = None) -> RedisOptions:
        """`from_env(environ)`, checked against the URL they will be used with."""
        options = cls.from_env(environ)
        options.check(url)
        return options

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> RedisOptions:
        """The `CLAIMSTREAM_REDIS_*` options (empty means unset); the password file is read
        now, so an unreadable one stops the start naming the variable. Not yet checked against
        a URL: `for_url` does both."""
        env = os.environ if environ is None else environ

        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        password_file = text(PASSWORD_FILE)
        password = None
        if password_file is not None:
            try:
                password = Path(password_file).read_text(encoding="utf-8").rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else str(exc)
                message = f"{PASSWORD_FILE}: cannot read {password_file}: {reason}"
                raise ConfigError(message) from None
            if not password:
                raise ConfigError(f"{PASSWORD_FILE}: {password_file} is empty")
        return cls(
            password=password,
            password_file=password_file,
            tls_ca_file=text(TLS_CA_FILE),
            tls_cert_file=text(TLS_CERT_FILE),
            tls_key_file=text(TLS_KEY_FILE),
            tls_check_hostname=env_flag(env, TLS_CHECK_HOSTNAME, default=True),
        )

    @property
    def tls_files(self) -> TlsFiles:
        """The TLS files and host-name check, with the variables that set them."""
        return TlsFiles(
            TLS_NAMES,
            self.tls_ca_file,
            self.tls_cert_file,
            self.tls_key_file,
            self.tls_check_hostname,
        )

    @property
    def tls_settings(self) -> list[str]:
        """The names of the TLS variables that are set."""
        return self.tls_files.given()

    def check(self, url: str | None) -> None:
        """`ConfigError` naming the variable when an option would not apply to `url`."""
        given = self.tls_settings + ([PASSWORD_FILE] if self.password_file else [])
        if not url:
            if given:
                raise ConfigError(f"{given[0]} is set but {URL} is not: set both, or neither")
            return
        try:
            parts = urllib.parse.urlsplit(url)
        except ValueError as exc:
            raise ConfigError(f"{URL}: {exc}") from None
        if self.tls_settings and parts.scheme != "rediss":
            raise ConfigError(
                f"{self.tls_settings[0]} is set but {URL} is {parts.scheme}://, not TLS: "
                "use rediss://host:port/0 (redis-server's --tls-port)"
            )
        self.tls_files.check_pair()
        if self.password_file and parts.password:
            raise ConfigError(
                f"{URL} carries a password and {PASSWORD_FILE} is set: keep one (the file)"
            )
        self.tls_files.check_readable()

    def client_kwargs(self, url: str) -> dict[str, Any]:
        """Keyword arguments of `redis.asyncio.Redis.from_url(url, ...)` besides the URL."""
        kwargs: dict[str, Any] = {}
        if self.password is not None:
            kwargs["password"] = self.password
        if urllib.parse.urlsplit(url).scheme == "rediss":
            kwargs.update(
                ssl_cert_reqs="required",
                ssl_check_hostname=self.tls_check_hostname,
                ssl_min_version=ssl.TLSVersion.TLSv1_2,
            )
            if self.tls_ca_file is not None:
                kwargs["ssl_ca_certs"] = self.tls_ca_file
            if self.tls_cert_file is not None:
                kwargs["ssl_certfile"] = self.tls_cert_file
                kwargs["ssl_keyfile"] = self.tls_key_file
        return kwargs


def connect(url: str, options: RedisOptions | None = None, **kwargs: Any) -> Any:
    """A `redis.asyncio.Redis` for `url` with `options` (TLS, password file); `kwargs` go to
    redis-py as they are (timeouts). Nothing is sent until the first command."""
    import redis.asyncio as aioredis

    extra = (options or RedisOptions()).client_kwargs(url)
    return aioredis.Redis.from_url(url, **extra, **kwargs)


async def close(client: Any) -> None:
    """Close `client` and let the event loop run the socket closes it scheduled: after a TLS
    error asyncio closes the socket one loop turn later, and a loop ending first leaks it."""
    await client.aclose()
    for _ in range(3):
        await asyncio.sleep(0)


def refusal(exc: BaseException, url: str | None = None) -> str | None:
    """Why Redis refused us, when it answered and did (the configuration's fault: a wrong
    user or password, a command the ACL forbids, a TLS problem); None when it did not answer.

    With TLS 1.3 a server that wants a client certificate says so after the client's side of
    the handshake is done: the client then reads either the server's alert or a reset
    connection, depending on timing. A reset at once from a `rediss://` `url` is taken for
    that refusal too."""
    from redis import exceptions

    login = exceptions.AuthenticationError | exceptions.AuthenticationWrongNumberOfArgsError
    if isinstance(exc, login):
        return (
            f"it refused the login ({_first_line(exc)}): check the user in {URL} and its "
            f"password ({PASSWORD_FILE} or the URL)"
        )
    if isinstance(exc, exceptions.NoPermissionError):
        return (
            f"its ACL refused a command ({_first_line(exc)}): the user needs "
            f"{' '.join('+' + c for c in REGISTRY_ACL_COMMANDS)} on ~PREFIX:* (docs/security.md)"
        )
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            return (
                f"its TLS certificate is not trusted ({seen.verify_message}): "
                f"{TLS_CA_FILE} must name the CA that signed it"
                + (f", or set {TLS_CHECK_HOSTNAME}=false" if "hostname" in str(seen) else "")
            )
        if isinstance(seen, ssl.SSLError):
            reason = str(seen.reason or seen).replace("_", " ").lower()
            hint = (
                "is that port a TLS port (redis-server --tls-port)?"
                if "wrong version" in reason or "record layer" in reason
                else f"does it want a client certificate ({TLS_CERT_FILE}, {TLS_KEY_FILE})?"
            )
            return f"the TLS handshake failed ({reason}): {hint}"
        if isinstance(seen, ConnectionResetError) and url and url.startswith("rediss://"):
            return (
                "it reset the TLS connection at once: does it want a client certificate "
                f"({TLS_CERT_FILE}, {TLS_KEY_FILE}) signed by a CA it trusts?"
            )
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    if "certificate verify failed" in text.lower():  # redis-py keeps only the text sometimes
        return f"its TLS certificate is not trusted: {TLS_CA_FILE} must name the CA that signed it"
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__).rstrip(".")
