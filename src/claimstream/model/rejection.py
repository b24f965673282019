"""Why an input was refused. Adapters turn a `Rejection` into a dead-letter record with origin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Stable reason codes (they appear in dead-letter records and as a metric label).
Reason = Literal[
    "not_utf8",
    "not_json",
    "not_object",
    "missing_field",
    "invalid_field",
    "naive_timestamp",
    "unknown_event_type",
    "late",
]
REASONS: tuple[Reason, ...] = (
    "not_utf8",
    "not_json",
    "not_object",
    "missing_field",
    "invalid_field",
    "naive_timestamp",
    "unknown_event_type",
    "late",
)


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: Reason
    detail: str  # one readable sentence naming the field and what was wrong


class InvalidEvent(Exception):
    """Raised inside the decoder only; `decode_event` converts it into a `Rejection`."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.rejection = Rejection(reason, detail)
