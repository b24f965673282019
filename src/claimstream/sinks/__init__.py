"""Output sinks: a small base and one implementation per file (kafka, registry, memory, jsonl)."""

from claimstream.sinks.base import Outputs, Sink

__all__ = ["Outputs", "Sink"]
