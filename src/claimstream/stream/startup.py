"""The worker's one-line start-up message, written once its partitions are assigned, and the
worker class whose logging keeps ids out (`worker_class`).

`claimstream worker: ready: broker HOST:PORT, consumer group G, 26 partitions
(settlement.claims.v1: 2, ...), web http://HOST:PORT` tells an operator reading a container log
where the worker is connected, what it holds and where to ask it. It names topics and counts
only (no key, no id). Later assignments (rebalances) are logged at INFO in the same form.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, cast

log = logging.getLogger(__name__)


def worker_class() -> type[Any]:
    """faust's `Worker`, with third-party loggers kept at INFO or above once it has set up
    logging (`claimstream.observability.logs`: their DEBUG output quotes records)."""
    import faust

    from claimstream.observability.logs import quiet_third_party

    class Worker(faust.Worker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            quiet_third_party(level, logger.handlers)

    return Worker


def startup_line(*, broker: str, group: str, assignment: Iterable[Any], web_url: str) -> str:
    """The message for `assignment` (topic-partitions with `.topic`)."""
    per_topic = Counter(tp.topic for tp in assignment)
    held = ", ".join(f"{topic}: {n}" for topic, n in sorted(per_topic.items()))
    total = sum(per_topic.values())
    return (
        f"claimstream worker: ready: broker {broker}, consumer group {group}, "
        f"{total} partitions ({held or 'none'}), web {web_url}"
    )


def announce_when_assigned(
    app: Any, *, broker: str, group: str, web_url: str, write: Callable[[str], None]
) -> None:
    """`write` the start-up line at the first completed assignment of `app` (faust's
    `on_rebalance_complete`), log it at INFO at every later one."""
    announced = False

    async def assigned(sender: Any, *args: Any, **kwargs: Any) -> None:
        nonlocal announced
        line = startup_line(
            broker=broker, group=group, assignment=app.consumer.assignment(), web_url=web_url
        )
        if announced:
            log.info("%s", line.replace("ready:", "reassigned:", 1))
            return
        announced = True
        write(line)

    app.on_rebalance_complete.connect(cast(Any, assigned))
