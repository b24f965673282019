"""Log levels that keep ids out of the worker's log, at every level.

Our own loggers (`claimstream.*`) log no patient, doctor or institution id at any level: they
name topics, partitions, offsets, route patterns, action ids and counts. Third-party libraries
are not so careful below INFO: at DEBUG aiokafka logs every request and response it exchanges
with the broker, record bytes included (a worker run over 400 simulated events at DEBUG wrote
75 of their ids that way), and faust logs what agents yield. So `quiet_third_party` keeps them
at INFO or above whatever level the worker runs at (`CLAIMSTREAM_LOG_LEVEL=DEBUG` is DEBUG for
our own loggers), twice over:

* the levels of their loggers (`THIRD_PARTY`) are raised to INFO, so the records are never made;
* `OwnDebugOnly`, a filter on the root handlers, drops any record below INFO that does not come
  from our own loggers, in case a library sets its own logger's level.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

OURS = "claimstream"
#: the libraries the worker runs on whose DEBUG output may quote records
THIRD_PARTY = ("aiokafka", "kafka", "faust", "mode", "aiohttp", "redis", "venusian", "asyncio")


class OwnDebugOnly(logging.Filter):
    """Lets through INFO and above from anyone, and below INFO only our own records."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.INFO:
            return True
        return record.name == OURS or record.name.startswith(OURS + ".")


def quiet_third_party(level: int, handlers: Iterable[logging.Handler] | None = None) -> None:
    """Keep third-party loggers at INFO or above when the worker logs at `level`, and add
    `OwnDebugOnly` to `handlers` (default: the root logger's)."""
    floor = max(level, logging.INFO) if level else logging.INFO
    for name in THIRD_PARTY:
        logger = logging.getLogger(name)
        if logger.level < floor:
            logger.setLevel(floor)
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        if not any(isinstance(f, OwnDebugOnly) for f in handler.filters):
            handler.addFilter(OwnDebugOnly())
