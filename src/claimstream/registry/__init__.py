"""Freeze registry: where settlement commands take effect (Redis, or in-process for the demo)."""

from claimstream.registry.base import Freeze, FreezeRegistry, freeze_key
from claimstream.registry.memory import MemoryRegistry
from claimstream.registry.redis import RedisRegistry, registry_from_url

__all__ = [
    "Freeze",
    "FreezeRegistry",
    "MemoryRegistry",
    "RedisRegistry",
    "freeze_key",
    "registry_from_url",
]
