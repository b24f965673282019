"""`TopicReader` against a broker that is not there (reading a real topic:
tests/integration/test_freezes_rebuild.py and test_cli_alerts.py)."""

from __future__ import annotations

import pytest

from claimstream.kafka.reader import ReaderUnreachable, TopicReader, TopicReadError
from claimstream.kafka.url import BrokerUnreachable
from tests.cli.support import closed_port


async def test_no_broker_is_a_read_error_and_an_unreachable_broker() -> None:
    where = closed_port()
    with pytest.raises(ReaderUnreachable) as unreachable:
        async with TopicReader(where, "claimstream.alerts.v1", connect_timeout=5):
            pass
    assert isinstance(unreachable.value, TopicReadError)
    assert isinstance(unreachable.value, BrokerUnreachable)
    assert (
        str(unreachable.value) == f"cannot reach the broker at {where} (no Kafka broker answered)"
    )
