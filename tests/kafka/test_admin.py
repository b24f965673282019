"""`apply_topics` against a broker that is not there (against Tansu:
tests/integration/test_topics_apply.py)."""

from __future__ import annotations

import pytest

from claimstream.kafka.admin import apply_topics_sync
from claimstream.kafka.topology import load_topology
from claimstream.kafka.url import BrokerUnreachable
from tests.cli.support import closed_port


def test_no_broker_raises_broker_unreachable_naming_it() -> None:
    where = closed_port()
    with pytest.raises(BrokerUnreachable) as unreachable:
        apply_topics_sync(where, load_topology(), request_timeout=5)
    assert unreachable.value.bootstrap == where
    assert unreachable.value.detail == "no Kafka broker answered"
