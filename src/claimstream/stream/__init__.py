"""The faust stream worker: `create_app(settings)` builds a fresh app (no module-level app)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import faust

    from claimstream.stream.settings import Settings

__all__ = ["create_app"]


def create_app(settings: Settings, **kwargs: Any) -> faust.App:
    """See `claimstream.stream.app.create_app` (imported lazily: faust is heavy)."""
    from claimstream.stream.app import create_app as _create_app

    return _create_app(settings, **kwargs)
