"""The freeze registry: which scopes are frozen or suspended right now, answered in one lookup.

Key scheme (Redis, and the in-process registry mirrors it):

    {prefix}:freeze:{kind}:{id}              a whole patient / doctor / institution
    {prefix}:freeze:{kind}:{id}:{drug_code}  one drug of it
    {prefix}:cmd:{command_id}                "already applied" marker (idempotency)
    {prefix}:registry                        the sentinel: which Redis server (`run_id`) the
                                             registry was last rebuilt or confirmed on
                                             (`freezes.guard`); missing: the registry lost
                                             its data (or is new)
    {prefix}:registry:rebuild-lock           held by the worker rebuilding the registry

`prefix` defaults to `claimstream`. `{id}` and `{drug_code}` go in through `model.ids.key_part`
(`%` and `:` percent-escaped), so `patient:PV` for drug `XA10AE04` and a patient whose id is
`PV:XA10AE04` never share a key; ids the event contract accepts contain neither character, so
their keys read exactly as above. The value of a freeze key is the JSON of the command that
set it (action, scope, effective_from, expires_at, reason, rule, alert_ids, command_id); a
FREEZE key expires at the command's `expires_at`, a SUSPEND key never expires, an UNFREEZE
deletes the key of its scope unless what the key holds began after the UNFREEZE's
`effective_from` (an UNFREEZE reaching the topic late lifts only what it was about). So "is
institution X frozen right now?" is `GET claimstream:freeze:institution:X` and "is patient Y
frozen for drug Z?" is `GET claimstream:freeze:patient:Y:Z` (non-nil: frozen). A client
that also honours whole-subject freezes for a drug asks both keys in one round trip with
`MGET`, which is what `lookup(kind, id, drug_code)` does.

Commands arrive at least once (Kafka redelivery): each is applied at most once by its
deterministic `command_id` (the marker), and a shorter FREEZE never shortens a longer one or
lifts a SUSPEND already in force.

The rules are `claimstream.sanctions.ledger.FreezeLedger`'s, applied to one key: `decide` runs
the ledger on the key's current value and the command, so the registry holds exactly what the
ledger of the commands topic says is in force (`claimstream freezes rebuild` relies on it).
Times are the commands' own (a FREEZE is judged at its `effective_from`); the wall clock only
decides that an already expired result is not stored, which changes nothing in force from
then on.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson

from claimstream.model.ids import key_part
from claimstream.model.outputs import Command

DEFAULT_PREFIX = "claimstream"
#: how long the "already applied" marker of a command is kept (redelivery window)
MARKER_TTL_SECONDS = 30 * 24 * 3600

#: what applying a command did: "invalid" is a command whose times cannot be read (it changes
#: nothing; the ledger refuses it too)
Applied = Literal["applied", "duplicate", "expired", "superseded", "invalid"]


def freeze_key(prefix: str, kind: str, id_: str, drug_code: str | None = None) -> str:
    base = f"{prefix}:freeze:{kind}:{key_part(id_)}"
    return f"{base}:{key_part(drug_code)}" if drug_code else base


def marker_key(prefix: str, command_id: str) -> str:
    return f"{prefix}:cmd:{command_id}"


def sentinel_key(prefix: str) -> str:
    return f"{prefix}:registry"


def rebuild_lock_key(prefix: str) -> str:
    return f"{prefix}:registry:rebuild-lock"


class RegistryUnavailable(ConnectionError):
    """The registry's server cannot be reached, or cannot answer yet (Redis loading its data):
    nothing was read or changed; try again later. A `ConnectionError` (so an `OSError`), as
    any other service that does not answer."""


@dataclass(frozen=True, slots=True)
class Look:
    """What one look at the registry's server found (`freezes.guard`).

    `run_id` identifies the server process (Redis changes it at every restart; None when the
    server does not say), `marked_on` the `run_id` the sentinel was written on (None: no
    sentinel, the registry lost its data or is new).
    """

    run_id: str | None
    marked_on: str | None
    marked: bool


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


@dataclass(frozen=True, slots=True)
class Keep:
    """Leave the scope's key as it is."""


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete the scope's key."""


@dataclass(frozen=True, slots=True)
class Store:
    """Set the scope's key to `value`, expiring at `expires_ms` (epoch ms; None: never)."""

    value: bytes
    expires_ms: int | None


Write = Keep | Delete | Store


def held_command(value: bytes | None) -> Command | None:
    """The command a freeze key holds; None for no key (or a value that is not a command)."""
    if value is None:
        return None
    from claimstream.sanctions.codec import command_from_dict

    try:
        return command_from_dict(orjson.loads(value))
    except (ValueError, TypeError, AttributeError):  # orjson.JSONDecodeError is a ValueError
        return None


def decide(held: bytes | None, command: Command, now: float) -> tuple[Applied, Write]:
    """What a (not yet applied) command does to its scope's key holding `held` at `now`.

    The ledger's rule on a one-entry ledger: UNFREEZE removes the entry unless it began after
    the UNFREEZE's `effective_from`; SUSPEND replaces it; a FREEZE replaces it unless the entry
    in force at the FREEZE's `effective_from` lasts at least as long. A result that has expired
    by `now` is not stored (the key is deleted instead: nothing is in force either way).
    """
    from claimstream.sanctions.ledger import FreezeLedger

    key = command.scope.key()
    current = held_command(held)
    ledger = FreezeLedger(entries={key: current} if current is not None else {})
    try:
        outcome = ledger.apply(command)
    except ValueError:
        return "invalid", Keep()
    if outcome == "superseded":
        return "superseded", Keep()
    entry = ledger.entries.get(key)
    if entry is None:
        return "applied", Delete()
    expires_ms = epoch_ms(entry.expires_at) if entry.expires_at is not None else None
    if expires_ms is not None and expires_ms <= int(now * 1000):
        return "expired", Delete()
    return "applied", Store(command_value(entry), expires_ms)


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

    @abstractmethod
    async def stored(self) -> dict[str, bytes]:
        """Every freeze key of the prefix with its value (expired keys left out)."""

    @abstractmethod
    async def swap(
        self,
        seen: Mapping[str, bytes | None],
        writes: Mapping[str, Write],
        markers: Iterable[str],
        now: float,
    ) -> bool:
        """Apply `writes` and set the "already applied" markers of `markers` (command ids) in
        one atomic step, provided every key of `seen` still holds the value given (None: no
        key); False, changing nothing, when one does not (another writer came in between)."""

    # -- what the guard needs (`freezes.guard`) -----------------------------------------

    @abstractmethod
    async def look(self) -> Look:
        """The server's `run_id` and the sentinel (`RegistryUnavailable` when unreachable)."""

    @abstractmethod
    async def mark(self, run_id: str | None, at: float, token: str) -> bool:
        """Write the sentinel (the registry is whole on the server `run_id`, since `at`) if
        `token` still holds the rebuild lock; False, writing nothing, when it does not (the
        lock expired, or the server lost it with everything else during the rebuild)."""

    @abstractmethod
    async def lock(self, token: str, ttl: float) -> bool:
        """Take the rebuild lock for `ttl` s as `token`; False when another holder has it."""

    @abstractmethod
    async def unlock(self, token: str) -> None:
        """Release the rebuild lock if `token` still holds it."""

    def keys_for(self, kind: str, id_: str, drug_code: str | None) -> list[str]:
        keys = [freeze_key(self.prefix, kind, id_)]
        if drug_code:
            keys.append(freeze_key(self.prefix, kind, id_, drug_code))
        return keys
