"""The registry guard: a worker notices that Redis lost the freeze registry and rebuilds it.

The registry is a cache of the commands topic (`rebuild`), and Redis can lose what it holds: a
restart without persistence, or with a snapshot older than the last writes; FLUSHALL; keys
evicted under `maxmemory`; a failover to a replica that lagged. Settlement systems read the
registry, so a loss is repaired by the workers themselves, without waiting for someone to run
`claimstream freezes rebuild`.

Every `interval` seconds each worker's guard looks at the registry (`look`: one round trip for
the server's `run_id` from INFO and the sentinel key `{prefix}:registry`, which holds the
`run_id` of the server the registry was last rebuilt or confirmed on):

* sentinel there, written on this very server: nothing happened;
* sentinel missing: the registry lost its data (trigger `lost`), or, at the worker's first
  look, holds nothing yet (`start`: a new Redis, or one emptied while no worker ran);
* sentinel there but written on another server (the `run_id` changed): Redis restarted, or a
  replica took over, and kept its data, perhaps from a snapshot older than the last writes
  (`restart`). A restart that kept everything is thus told apart from one that lost it; the
  registry is checked against the topic all the same, which writes nothing when it is whole.

On a trigger the guard takes the rebuild lock (`{prefix}:registry:rebuild-lock`, SET NX with
a TTL, released only by its holder), runs `rebuild` (the same code as the command: replay the
commands topic into the ledger, swap the differing keys in one step, set the markers) and
writes the sentinel with the `run_id` it looked at, in one transaction with a check that it
still holds the lock (WATCH, read, MULTI: the registry's own commands, no script, so the ACL
user of `connection.REGISTRY_ACL_COMMANDS` may run it): a Redis that restarted empty during
the rebuild has lost the lock too, so it is not marked whole, and the next look sees the loss.
A server that refuses INFO (that ACL user does) gives no `run_id`: a loss is still noticed, a
restart that kept older data is not (the worker says so once). A worker that finds the lock
taken looks again at its next turn, by which time the sentinel is usually back.

The lock only saves the others the work: rebuilds are idempotent and safe when two run. Each
reads the registry before the commands that go with it, so a rebuild never writes a key older
than what a worker or another rebuild already put there (the swap fails on any key changed in
between and the rebuild reads again); a lock that expired in the middle of a long rebuild
costs one more rebuild, never a wrong key.

Meanwhile the workers go on applying new commands (a FREEZE applied to the emptied registry
is corrected by the rebuild if the ledger says a SUSPEND was in force), and `trusted()` says
why answers read from the registry cannot be trusted until the rebuild is done (the worker's
`GET /freezes` answers 503).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Literal

from claimstream.freezes.base import FreezeRegistry, Look, RegistryUnavailable
from claimstream.freezes.rebuild import Rebuild, rebuild

log = logging.getLogger(__name__)

Trigger = Literal["start", "lost", "restart"]
TRIGGERS: tuple[Trigger, ...] = ("start", "lost", "restart")
#: how a rebuild ended: nothing differed, keys were written, or it failed (retried next look)
Outcome = Literal["clean", "repaired", "failed"]
OUTCOMES: tuple[Outcome, ...] = ("clean", "repaired", "failed")

#: seconds between two looks at the registry
INTERVAL = 5.0
#: seconds the rebuild lock is held at most (a longer rebuild may meet a second one: harmless)
LOCK_TTL = 120.0

#: reads the commands not read before, as (where, value) pairs (see `rebuild`)
Read = Callable[[], Awaitable[Iterable[tuple[str, bytes | None]]]]
#: opens the commands topic for one rebuild
Commands = Callable[[], AbstractAsyncContextManager[Read]]


class RebuildUnconfirmed(RuntimeError):
    """The rebuild ran but could not mark the registry whole: the next look decides again."""


class GuardEvents:
    """What the guard tells the rest of the worker (metrics, logs); every hook is a no-op here.

    The stream layer's subclass turns them into `claimstream_registry_rebuilds_total`,
    `claimstream_registry_rebuilding`, `claimstream_sink_up{sink="registry"}` and one log line
    per event.
    """

    def reachable(self, error: Exception | None) -> None:
        """The look reached the registry (`error` None) or did not."""

    def rebuilding(self, trigger: Trigger) -> None:
        """A rebuild starts."""

    def rebuilt(self, trigger: Trigger, outcome: Outcome, result: Rebuild) -> None:
        """A rebuild ended: nothing differed (`clean`) or keys were written (`repaired`)."""

    def failed(self, trigger: Trigger, error: Exception) -> None:
        """A rebuild failed (outcome `failed`); the next look tries again."""


def describe(trigger: Trigger) -> str:
    """Why a rebuild runs, for a log line."""
    return {
        "start": "held nothing when this worker started (a new Redis, or one emptied while no "
        "worker ran)",
        "lost": "lost its data (Redis restarted empty, was flushed or evicted keys)",
        "restart": "is on a Redis server that restarted or took over (its run_id changed) and "
        "kept its data, maybe from an older snapshot",
    }[trigger]


class RegistryGuard:
    """Looks after one registry for one worker: `await guard.step()` every `interval` s
    (`run` does), or `run` as a task."""

    def __init__(
        self,
        registry: FreezeRegistry,
        commands: Commands,
        events: GuardEvents | None = None,
        *,
        clock: Callable[[], float] = time.time,
        lock_ttl: float = LOCK_TTL,
    ) -> None:
        self.registry = registry
        self.commands = commands
        self.events = events or GuardEvents()
        self.clock = clock
        self.lock_ttl = lock_ttl
        self.token = uuid.uuid4().hex
        #: a loss or restart seen and not yet repaired (by this worker or another one)
        self.pending: Trigger | None = None
        self._looked = False

    def trusted(self) -> str | None:
        """None when answers read from the registry can be trusted, else why not: it has not
        been looked at since start, or it lost its data (or holds none yet) and the rebuild is
        not done."""
        if not self._looked:
            return "the freeze registry has not been checked since start; ask again shortly"
        if self.pending in ("start", "lost"):
            return (
                "the freeze registry lost its data and is being rebuilt from the commands "
                "topic; ask again shortly"
            )
        return None

    async def check(self) -> tuple[Trigger | None, Look]:
        """Look at the registry; what happened to it, if anything (`RegistryUnavailable` when
        it cannot be reached)."""
        try:
            look = await self.registry.look()
        except Exception as exc:  # unreachable, or refused (an ACL): the sink's outage says so
            self.events.reachable(exc)
            raise
        self.events.reachable(None)
        first, self._looked = not self._looked, True
        if first and look.run_id is None:
            log.warning(
                "Redis does not tell its run_id (INFO refused?): a loss of the freeze registry "
                "is noticed, a restart that kept older data is not"
            )
        if not look.marked:
            return ("start" if first else "lost"), look
        if look.run_id is not None and look.marked_on != look.run_id:
            return "restart", look
        return None, look

    async def step(self) -> Rebuild | None:
        """One look, and a rebuild when it found a loss or a restart (unless another worker
        holds the lock); the rebuild's result, else None."""
        try:
            trigger, look = await self.check()
        except Exception:  # noqa: BLE001 - reported by check; look again later
            return None
        if trigger is None:
            self.pending = None
            return None
        if trigger != "restart" or self.pending is None:
            self.pending = trigger  # a loss outranks a restart until it is repaired
        try:
            if not await self.registry.lock(self.token, self.lock_ttl):
                return None  # another worker rebuilds it: look again next time
        except RegistryUnavailable:
            return None
        except Exception as exc:  # noqa: BLE001 - refused (an ACL): said once, tried again
            self.events.failed(trigger, exc)
            return None
        try:
            self.events.rebuilding(trigger)
            async with self.commands() as read:
                result = await rebuild(self.registry, read, clock=self.clock)
            if not await self.registry.mark(look.run_id, self.clock(), self.token):
                raise RebuildUnconfirmed(
                    "the rebuild lock was gone when the rebuild ended (Redis restarted or the "
                    "lock expired); the registry is not marked whole"
                )
        except Exception as exc:  # noqa: BLE001 - broker, Redis, conflict: tried again next look
            self.events.failed(trigger, exc)
            return None
        finally:
            with contextlib.suppress(Exception):  # it expires anyway
                await self.registry.unlock(self.token)
        self.pending = None
        self.events.rebuilt(trigger, "repaired" if result.plan.writes else "clean", result)
        return result

    async def run(self, interval: float = INTERVAL) -> None:
        """`step` every `interval` seconds until cancelled; a bug in a step is logged, not
        fatal (the guard must not take the worker down)."""
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:  # the next look may well succeed
                log.exception("the freeze registry guard failed; looking again in %.0f s", interval)
            await asyncio.sleep(interval)
