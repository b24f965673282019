"""A small typed client of a claimstream worker's API, for settlement-system engineers.

The pre-settlement check (`POST /v1/check`: may this be settled?), the clinician's answer to it
(`POST /v1/check/{check_id}/feedback`) and the freeze look-up (`GET /freezes/{kind}/{id}`),
with a timeout per try and retries with backoff on 502/503 and connection errors. `Client`
blocks (the standard library's urllib); `AsyncClient` is the same for asyncio (aiohttp).
docs/check.md shows both.

    from claimstream.client import Client, Handling
    client = Client("http://worker:6066", token="cs_...")
    result = client.check(dispensing)                  # an event of the event contract
    result.decision                                    # "pass" | "warn" | "hold" | "reject"
    client.feedback(result.check_id, [Handling.to(result.violations[0], "modified")])

An adapter like `claimstream.kafka` and `claimstream.freezes`: it imports nothing of
claimstream's core, so a settlement system can vendor it (pyproject, import-linter).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from claimstream.client.answers import (
    Accepted,
    CheckResult,
    ClaimstreamError,
    Decision,
    FreezeStatus,
    Handling,
    Line,
    RequestRefused,
    Violation,
    WorkerUnavailable,
)
from claimstream.client.calls import Retry
from claimstream.client.sync import Client

if TYPE_CHECKING:
    from claimstream.client.aio import AsyncClient

__all__ = [
    "Accepted",
    "AsyncClient",
    "CheckResult",
    "ClaimstreamError",
    "Client",
    "Decision",
    "FreezeStatus",
    "Handling",
    "Line",
    "RequestRefused",
    "Retry",
    "Violation",
    "WorkerUnavailable",
]


def __getattr__(name: str) -> Any:
    """`AsyncClient` on first use: the blocking client does not load aiohttp."""
    if name == "AsyncClient":
        from claimstream.client.aio import AsyncClient

        return AsyncClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
