"""The audit agent: alerts, commands and people's actions appended to the audit hash chain.

(Being built. Until then this installs nothing.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import faust

    from claimstream.stream.app import Runtime
    from claimstream.stream.publish import BatchPublisher


def install_audit(app: faust.App, runtime: Runtime, publisher: BatchPublisher) -> None:
    """Add the audit agent and its chain-head table to `app`."""
