"""The exit-code table every `claimstream` command follows, and the errors that carry a code.

| code | meaning |
|---|---|
| 0 | done; a check found nothing wrong |
| 1 | the command ran and found what it checks for (drift, difference, tampering, refused lines) |
| 2 | usage or input error: bad arguments, an unreadable file, an invalid configuration or
|   | `CLAIMSTREAM_*` variable, an unknown id, a topic that does not exist |
| 3 | a service could not be reached or did not answer in time: broker, Redis, a worker's API |
| 70 | internal error (a bug): one line saying so, then the traceback |
| 130 | interrupted (Ctrl-C) |
| 141 | stdout closed early (e.g. `| head`): nothing more is printed |

A command either returns its code or raises a `CommandError` (`Unreachable` for code 3);
`claimstream.cli.main` prints the error as one line, `claimstream COMMAND: message`, on stderr.
The helpers below build those lines, so every command names the address it tried and what to
do about it in the same words. docs/cli.md carries the same table.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from claimstream.freezes.connection import RedisOptions
    from claimstream.kafka.security import KafkaSecurity

OK = 0
FOUND = 1
USAGE = 2
UNREACHABLE = 3
INTERNAL = 70
INTERRUPTED = 130
BROKEN_PIPE = 141


class CommandError(Exception):
    """Stop the command: `main` prints `claimstream COMMAND: <message>` and exits with `code`."""

    code: int = USAGE

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class Unreachable(CommandError):
    """A service (broker, Redis, a worker's HTTP API) did not answer: exit 3."""

    code = UNREACHABLE


def quiet_kafka_logs() -> None:
    """aiokafka logs every failed connection attempt on its own; the CLI says it once, plainly.
    (Not for the worker, whose logs are the operator's view of the client.)"""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def broker_address(value: str | None) -> str:
    """`host:port[,...]` for aiokafka from `--bootstrap` / `$CLAIMSTREAM_BROKER_URL` / the
    default, or a usage error naming what is wrong with it."""
    from claimstream.kafka.url import bootstrap_servers

    try:
        return bootstrap_servers(value)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def require_broker(
    value: str | None, timeout: float = 5.0, *, security: KafkaSecurity | None = None
) -> str:
    """`broker_address(value)`, once the broker there accepts a Kafka connection with the
    `CLAIMSTREAM_KAFKA_*` settings (or `security`); else `Unreachable` (exit 3), or a usage
    error (exit 2) when those settings are invalid or the broker refuses them.

    Every command that talks to the broker calls this first: a closed port, a wrong host, an
    untrusted certificate or a refused login is then one sentence with the address and what
    to fix, not a Kafka client's retries.
    """
    import asyncio

    from claimstream.kafka.security import BrokerRefused, KafkaSecurity, check_connection
    from claimstream.kafka.url import BrokerUnreachable, check_reachable
    from claimstream.model.config import ConfigError

    quiet_kafka_logs()
    bootstrap = broker_address(value)
    try:
        security = security if security is not None else KafkaSecurity.from_env()
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    try:
        check_reachable(bootstrap, timeout=timeout)
        asyncio.run(check_connection(bootstrap, security, within=max(timeout, 5.0)))
    except BrokerUnreachable as exc:
        raise broker_unreachable(exc, value) from None
    except BrokerRefused as exc:
        raise CommandError(f"{exc} (Kafka security: {security.describe()})") from None
    return bootstrap


def broker_unreachable(exc: Exception, value: str | bool | None = False) -> Unreachable:
    """The one line for a broker that did not answer. `value` is what the user gave
    (`--bootstrap`), None when nothing was given, False when unknown."""
    from claimstream.kafka.url import ENV_BROKER_URL, BrokerUnreachable, broker_origin

    if isinstance(exc, BrokerUnreachable):
        where, detail = exc.bootstrap, exc.detail
    else:
        where, detail = "", str(exc) or type(exc).__name__
    if value is not False:
        origin = broker_origin(value if isinstance(value, str) else None)
        detail += {
            "given": "; address from --bootstrap",
            "the default": f"; the default address, ${ENV_BROKER_URL} is not set",
        }.get(origin, f"; address from {origin}")
    return Unreachable(
        f"cannot reach the broker{' at ' + where if where else ''} ({detail}): is it running? "
        f"`claimstream broker` starts a local one; --bootstrap or {ENV_BROKER_URL} names another"
    )


def redis_failure(url: str, exc: Exception) -> CommandError:
    """The one line for a Redis that did not answer (exit 3), or that answered and refused
    the login, a command or the TLS handshake (exit 2, a configuration to fix). The URL's
    password is not shown."""
    from claimstream.freezes.connection import refusal

    refused = refusal(exc, url)
    if refused is not None:
        return CommandError(f"Redis at {redact(url)} refused the connection: {refused}")
    detail = _os_reason(exc) or str(exc).rstrip(".") or type(exc).__name__
    return Unreachable(
        f"cannot reach Redis at {redact(url)} ({detail}): is redis-server running? "
        "--redis-url or CLAIMSTREAM_REDIS_URL names another"
    )


def redis_options(url: str) -> RedisOptions:
    """The `CLAIMSTREAM_REDIS_*` password file and TLS files for `url` (a
    `claimstream.freezes.connection.RedisOptions`), or a usage error naming the variable."""
    from claimstream.freezes.connection import RedisOptions
    from claimstream.model.config import ConfigError

    try:
        return RedisOptions.for_url(url)
    except ConfigError as exc:
        raise CommandError(str(exc)) from None


def redact(url: str) -> str:
    """`url` with its password (if any) replaced by `***`, for messages."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _os_reason(exc: BaseException) -> str | None:
    """`connection refused`, `no answer in time`: the operating system's reason behind a
    client library's wrapping of it, if there is one."""
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return None
        if isinstance(seen, TimeoutError):
            return "no answer in time"
        if isinstance(seen, OSError) and (seen.errno or seen.strerror):
            return _lower(os.strerror(seen.errno) if seen.errno else str(seen.strerror))
        seen = seen.__cause__ or seen.__context__
    return None


def _lower(text: str) -> str:
    return text[:1].lower() + text[1:]
