"""Third-party loggers stay at INFO or above whatever the worker's level
(`claimstream.observability.logs`); our own follow it."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from claimstream.observability.logs import THIRD_PARTY, OwnDebugOnly, quiet_third_party


@pytest.fixture
def captured() -> Iterator[tuple[logging.Handler, io.StringIO]]:
    """A handler on the root logger at DEBUG; the third-party levels are put back after."""
    levels = {name: logging.getLogger(name).level for name in THIRD_PARTY}
    for name in THIRD_PARTY:  # as a fresh process has them (other tests may have changed them)
        logging.getLogger(name).setLevel(logging.NOTSET)
    root = logging.getLogger()
    old_level = root.level
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler, stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def test_at_debug_our_debug_lines_pass_and_aiokafkas_wire_dump_does_not(
    captured: tuple[logging.Handler, io.StringIO],
) -> None:
    handler, stream = captured
    quiet_third_party(logging.DEBUG, [handler])
    logging.getLogger("claimstream.stream.audit").debug("audit batch of 3")
    logging.getLogger("aiokafka.conn").debug("Request 7: ProduceRequest(b'P000123')")
    logging.getLogger("aiokafka.consumer").info("joined the group")
    text = stream.getvalue()
    assert "audit batch of 3" in text and "joined the group" in text
    assert "P000123" not in text


def test_the_filter_drops_third_party_debug_even_when_a_library_lowers_its_own_level(
    captured: tuple[logging.Handler, io.StringIO],
) -> None:
    handler, stream = captured
    quiet_third_party(logging.DEBUG, [handler])
    logging.getLogger("faust.agents").setLevel(logging.DEBUG)  # a library doing so itself
    logging.getLogger("faust.agents").debug("yielded: P000123")
    assert "P000123" not in stream.getvalue()
    assert sum(isinstance(f, OwnDebugOnly) for f in handler.filters) == 1


def test_a_warning_level_worker_keeps_third_party_at_warning(
    captured: tuple[logging.Handler, io.StringIO],
) -> None:
    handler, _ = captured
    quiet_third_party(logging.WARNING, [handler])
    assert logging.getLogger("aiokafka").level == logging.WARNING
