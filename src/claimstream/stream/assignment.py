"""Which partitions of a topic this worker holds now.

The HTTP reads (cases, reports) and the timers (overdue notices, sanctions' day ends) each ask
the same question of faust's consumer; an app that is built but not started (tests, a worker
still joining its group) has no assignment to ask, which is not the same as an empty one.
"""

from __future__ import annotations

from typing import Any

from faust.exceptions import ConsumerNotStarted


def owned_partitions(app: Any, *topics: str) -> set[int] | None:
    """The partitions of `topics` assigned to this worker; None when there is no started
    consumer to ask."""
    consumer = getattr(app, "consumer", None)
    if consumer is None:
        return None
    try:
        assignment = consumer.assignment()
    except ConsumerNotStarted:
        return None
    return {tp.partition for tp in assignment if tp.topic in topics}
