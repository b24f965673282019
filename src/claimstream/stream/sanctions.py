"""Sanctions in the stream: alerts and people's actions in, escalation decisions out.

(Being built: see the design in the issue notes. Until then this installs nothing.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import faust

    from claimstream.stream.app import Runtime
    from claimstream.stream.publish import BatchPublisher


def install_sanctions(app: faust.App, runtime: Runtime, publisher: BatchPublisher) -> None:
    """Add the sanctions agents and tables to `app` and set `runtime.sanctions`."""
