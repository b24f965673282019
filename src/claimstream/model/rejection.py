"""Why an input was refused. Adapters turn a `Rejection` into a dead-letter record with origin."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: Stable reason codes (they appear in dead-letter records and as a metric label).
#: `implausible_timestamp`: occurred_at outside the contract's years or the configured
#: plausible range (decoder, replay and worker); `future_timestamp`: further ahead of the
#: worker's wall clock than the configured skew (worker only: replay of history has no "now").
Reason = Literal[
    "not_utf8",
    "not_json",
    "not_object",
    "missing_field",
    "invalid_field",
    "naive_timestamp",
    "implausible_timestamp",
    "future_timestamp",
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
    "implausible_timestamp",
    "future_timestamp",
    "unknown_event_type",
    "late",
)
#: What a dead letter says when processing an event raised (a bug, or data no check foresaw):
#: the event is refused, the state of its keys is left as it was before it.
PROCESSING_ERROR = "processing_error"


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: Reason
    detail: str  # one readable sentence naming the field and what was wrong


class InvalidEvent(Exception):
    """Raised inside the decoder only; `decode_event` converts it into a `Rejection`."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.rejection = Rejection(reason, detail)
