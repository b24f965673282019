"""Where the Kafka broker is: `$CLAIMSTREAM_BROKER_URL`, in faust's and aiokafka's spellings.

faust wants `kafka://host:port` URLs, aiokafka wants `host:port` bootstrap strings; people type
either. Everything that connects goes through these two functions so both forms work everywhere.

`check_reachable` is the cheap first step of every command that talks to the broker: a TCP
connection to the bootstrap addresses, so "nothing listens there" is one plain sentence
(`BrokerUnreachable`) instead of a client library's retries and reprs.
"""

from __future__ import annotations

import os
import socket

__all__ = [
    "DEFAULT_BROKER_URL",
    "ENV_BROKER_URL",
    "BrokerUnreachable",
    "bootstrap_servers",
    "broker_origin",
    "broker_url",
    "check_reachable",
]

ENV_BROKER_URL = "CLAIMSTREAM_BROKER_URL"
DEFAULT_BROKER_URL = "kafka://127.0.0.1:9092"
_DEFAULT_PORT = 9092


def _hosts(value: str | None) -> list[str]:
    raw = value or os.environ.get(ENV_BROKER_URL) or DEFAULT_BROKER_URL
    hosts: list[str] = []
    for part in raw.replace(";", ",").split(","):
        host = part.strip()
        if not host:
            continue
        scheme, sep, rest = host.partition("://")
        if sep:
            if scheme.lower() != "kafka":
                raise ValueError(f"broker URL scheme must be kafka://, not {scheme}://")
            host = rest.rstrip("/")
        if ":" not in host:
            host = f"{host}:{_DEFAULT_PORT}"
        hosts.append(host)
    if not hosts:
        raise ValueError(f"no broker address in {raw!r}")
    return hosts


def bootstrap_servers(value: str | None = None) -> str:
    """`host:port[,host:port]` for aiokafka, from `value`, else the env var, else the default."""
    return ",".join(_hosts(value))


def broker_url(value: str | None = None) -> str:
    """`kafka://host:port[;kafka://host:port]` for faust's `broker` setting."""
    return ";".join(f"kafka://{host}" for host in _hosts(value))


def broker_origin(value: str | None = None) -> str:
    """Where the address `bootstrap_servers(value)` returns came from, for error messages."""
    if value:
        return "given"
    if os.environ.get(ENV_BROKER_URL):
        return f"${ENV_BROKER_URL}"
    return "the default"


class BrokerUnreachable(ConnectionError):
    """No broker answered at `bootstrap` (refused, unresolvable, or no answer in time)."""

    def __init__(self, bootstrap: str, detail: str) -> None:
        super().__init__(f"cannot reach the broker at {bootstrap} ({detail})")
        self.bootstrap = bootstrap
        self.detail = detail


def check_reachable(bootstrap: str, timeout: float = 5.0) -> None:
    """Return once one of the `host:port` addresses in `bootstrap` accepts a TCP connection;
    raise `BrokerUnreachable` (with the first address's reason) when none does.

    Only the connection is tried: a broker that accepts it but then misbehaves is the client's
    to report. Cheap (one connect per address), synchronous, no Kafka client needed.
    """
    reasons: list[str] = []
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                return
        except ValueError:
            reasons.append(f"bad port in {address!r}")
        except TimeoutError:
            reasons.append(f"no answer within {timeout:g} s")
        except socket.gaierror as exc:
            reasons.append(f"unknown host {host!r}: {_lower(exc.strerror or str(exc))}")
        except OSError as exc:
            reasons.append(_lower(exc.strerror or str(exc)))
    raise BrokerUnreachable(bootstrap, reasons[0] if reasons else "no address")


def _lower(text: str) -> str:
    """`Connection refused` -> `connection refused`, for a reason inside a sentence."""
    return text[:1].lower() + text[1:]
