"""What every sink implements: take one batch of outputs, make it durable, then return.

The worker calls `write` for every batch *before* the batch's input offsets may be committed,
so a sink that returns has done its part of at-least-once delivery. Outputs carry
deterministic ids, so a sink that sees a batch twice (after a crash) must be idempotent or let
its consumer deduplicate by id.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from claimstream.model.outputs import Alert, Command, DeadLetter


@dataclass(slots=True)
class Outputs:
    """Everything one batch produced, in processing order."""

    alerts: list[Alert] = field(default_factory=list)
    shadow_alerts: list[Alert] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.alerts or self.shadow_alerts or self.commands or self.dead_letters)


class Sink(ABC):
    """A destination for outputs. `start`/`stop` bracket its life; both default to no-ops."""

    name: str = "sink"

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open connections."""

    async def stop(self) -> None:  # noqa: B027 - optional hook
        """Flush and close."""

    @abstractmethod
    async def write(self, outputs: Outputs) -> None:
        """Deliver `outputs`; return only once they are durable (or raise)."""
