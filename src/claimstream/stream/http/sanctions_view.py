"""What the query API may ask of the sanctions state a worker holds.

The sanctions agents' runtime (`claimstream.stream.sanctions.runtime`) implements it over its
faust tables; the API (`claimstream.stream.http.api`) only uses this protocol, so each side is
tested on its own. Answers are JSON-shaped dicts; `None` means "not in this worker's
partitions" (the HTTP side routes a read to the worker that owns the key, see
`claimstream.stream.http.routes`).
"""

from __future__ import annotations

from typing import Any, Protocol


class SanctionsView(Protocol):
    def key_of(self, kind: str, id_: str) -> str:
        """The table key of a subject (`institution:H1`)."""

    def subject(self, kind: str, id_: str) -> dict[str, Any] | None:
        """The subject's standing (`claimstream.sanctions.state.describe`) plus its active
        freezes and suspension, at the partition's event-time watermark."""

    def alerts(self, kind: str, id_: str, status: str | None = None) -> list[dict[str, Any]] | None:
        """The subject's alerts (alert.v1 dicts plus `status`: open, confirmed,
        false_positive) still held for its horizon, newest first; `status` filters."""

    def institution(self, id_: str) -> dict[str, Any] | None:
        """An institution's grade, active freezes, open alerts and responsibility roll-up
        (departments and doctors ranked, with evidence alert ids)."""

    def alert(self, alert_id: str) -> dict[str, Any] | None:
        """One alert of the alert index (alert.v1 plus `status` and `remediated`, as in a
        subject's alerts), while it is held (the sanctions horizon)."""
