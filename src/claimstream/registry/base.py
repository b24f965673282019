"""The freeze registry: which scopes are frozen or suspended right now, answered in one lookup.

Key scheme (Redis, and the in-process registry mirrors it):

    {prefix}:freeze:{kind}:{id}              a whole patient / doctor / institution
    {prefix}:freeze:{kind}:{id}:{drug_code}  one drug of it
    {prefix}:cmd:{command_id}                "already applied" marker (idempotency)

`prefix` defaults to `claimstream`. The value of a freeze key is the JSON of the command that
set it (action, scope, effective_from, expires_at, reason, rule, alert_ids, command_id); a
FREEZE key expires at the command's `expires_at`, a SUSPEND key never expires, an UNFREEZE
deletes the key of its scope. So "is institution X frozen right now?" is
`GET claimstream:freeze:institution:X` and "is patient Y frozen for drug Z?" is
`GET claimstream:freeze:patient:Y:Z` (non-nil: frozen). A client that also honours
whole-subject freezes for a drug asks both keys in one round trip with `MGET`, which is what
`lookup(kind, id, drug_code)` does.

Commands arrive at least once (Kafka redelivery): each is applied at most once by its
deterministic `command_id` (the marker), and a shorter FREEZE never shortens a longer one or
lifts a SUSPEND already in force.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson

from claimstream.core.outputs import Command

DEFAULT_PREFIX = "claimstream"
#: how long the "already applied" marker of a command is kept (redelivery window)
MARKER_TTL_SECONDS = 30 * 24 * 3600

Applied = Literal["applied", "duplicate", "expired", "superseded"]


def freeze_key(prefix: str, kind: str, id_: str, drug_code: str | None = None) -> str:
    base = f"{prefix}:freeze:{kind}:{id_}"
    return f"{base}:{drug_code}" if drug_code else base


def marker_key(prefix: str, command_id: str) -> str:
    return f"{prefix}:cmd:{command_id}"


def command_value(command: Command) -> bytes:
    """The stored value of a freeze key: the command as published."""
    return orjson.dumps(command.to_dict())


def epoch_ms(iso_time: str | None) -> int:
    """Milliseconds since the epoch of an ISO-8601 time with offset; 0 for None (no expiry)."""
    if iso_time is None:
        return 0
    return int(datetime.fromisoformat(iso_time).timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class Freeze:
    """A freeze or suspension in force, as stored (the command that set it)."""

    key: str
    command: dict[str, Any]

    @property
    def action(self) -> str:
        return str(self.command.get("action"))

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, **self.command}


def is_active(command: dict[str, Any], now: float) -> bool:
    """Effective already and not yet expired (the key's TTL enforces expiry too)."""
    start = command.get("effective_from")
    end = command.get("expires_at")
    try:
        if isinstance(start, str) and datetime.fromisoformat(start).timestamp() > now:
            return False
        if isinstance(end, str) and datetime.fromisoformat(end).timestamp() <= now:
            return False
    except ValueError:
        return True
    return True


class FreezeRegistry(ABC):
    """Where settlement commands take effect. Implementations: Redis, in-process memory."""

    prefix: str = DEFAULT_PREFIX

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect; the in-process registry has nothing to do."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Disconnect."""

    @abstractmethod
    async def apply(self, commands: Iterable[Command], now: float) -> list[Applied]:
        """Apply commands in order, each at most once by `command_id`; say what each did."""

    @abstractmethod
    async def lookup(
        self, kind: str, id_: str, drug_code: str | None = None, *, now: float
    ) -> list[Freeze]:
        """The freezes in force for the subject (and, with `drug_code`, for that drug of it)."""

    @abstractmethod
    async def active(self, now: float, limit: int = 1000) -> list[Freeze]:
        """Freezes in force (up to `limit`), for `claimstream freezes` without a subject."""

    def keys_for(self, kind: str, id_: str, drug_code: str | None) -> list[str]:
        keys = [freeze_key(self.prefix, kind, id_)]
        if drug_code:
            keys.append(freeze_key(self.prefix, kind, id_, drug_code))
        return keys
