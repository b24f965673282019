"""Broker addresses in both spellings, and the reachability check every command starts with."""

from __future__ import annotations

import socket

import pytest

from claimstream.kafka.url import (
    BrokerUnreachable,
    bootstrap_servers,
    broker_origin,
    broker_url,
    check_reachable,
)
from tests.cli.support import closed_port


def test_both_spellings_give_both_forms() -> None:
    assert bootstrap_servers("kafka://h1:1;h2") == "h1:1,h2:9092"
    assert broker_url("h1:1,h2") == "kafka://h1:1;kafka://h2:9092"


def test_a_closed_port_is_unreachable_naming_the_address_and_the_reason() -> None:
    where = closed_port()
    with pytest.raises(BrokerUnreachable) as unreachable:
        check_reachable(where, timeout=2)
    assert str(unreachable.value) == f"cannot reach the broker at {where} (connection refused)"
    assert unreachable.value.bootstrap == where
    assert isinstance(unreachable.value, OSError)  # old `except OSError` callers still catch it


def test_an_unknown_host_is_unreachable() -> None:
    with pytest.raises(BrokerUnreachable, match=r"unknown host 'no-such-host\.invalid'"):
        check_reachable("no-such-host.invalid:9092", timeout=2)


def test_one_listening_address_is_enough() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        check_reachable(f"{closed_port()},127.0.0.1:{server.getsockname()[1]}", timeout=2)


def test_where_the_address_came_from(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLAIMSTREAM_BROKER_URL", raising=False)
    assert broker_origin(None) == "the default"
    assert broker_origin("h:1") == "given"
    monkeypatch.setenv("CLAIMSTREAM_BROKER_URL", "h:1")
    assert broker_origin(None) == "$CLAIMSTREAM_BROKER_URL"
