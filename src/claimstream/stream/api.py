"""The query and action API on the worker's web server.

(Being built. Until then this installs nothing.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import faust

    from claimstream.stream.app import Runtime
    from claimstream.stream.publish import BatchPublisher


def install_api(app: faust.App, runtime: Runtime, publisher: BatchPublisher) -> None:
    """Add the API's views to `app`."""
