"""Where the Kafka broker is: `$CLAIMSTREAM_BROKER_URL`, in faust's and aiokafka's spellings.

faust wants `kafka://host:port` URLs, aiokafka wants `host:port` bootstrap strings; people type
either. Everything that connects goes through these two functions so both forms work everywhere.
"""

from __future__ import annotations

import os

__all__ = ["DEFAULT_BROKER_URL", "ENV_BROKER_URL", "bootstrap_servers", "broker_url"]

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
