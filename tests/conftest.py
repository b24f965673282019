"""The suite's one conftest: fixtures that start real servers on loopback (Tansu,
redis-server) and a headless browser (Debian's Chromium), and always stop them.

A missing server binary skips the test on a developer's machine but fails it under CI (where
`make test` installs everything), so a broken install can never pass as "skipped".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from claimstream.devtools.localbroker import BrokerStartError, LocalBroker
from claimstream.kafka.topology import Topology, load_topology
from tests.support import stores
from tests.support.brokers import start_broker_with_topics
from tests.support.browser import launched_chromium
from tests.support.redis_server import RedisServer, RedisServerError
from tests.support.services import unavailable


def pytest_configure(config: pytest.Config) -> None:
    try:
        stores.from_environment()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked `both_stores` runs once per table store (`table_store`'s parameter)."""
    if metafunc.definition.get_closest_marker("both_stores") is not None:
        ids = [stores.IDS[store] for store in stores.STORES]
        metafunc.parametrize("table_store", stores.STORES, ids=ids, indirect=True)


@pytest.fixture(autouse=True)
def table_store(request: pytest.FixtureRequest) -> Iterator[str]:
    """The table store of the workers this test starts (`tests.support.stores`): the
    `both_stores` variant's, else `CLAIMSTREAM_TEST_STORE`'s (`memory://` when unset)."""
    store: str = getattr(request, "param", None) or stores.from_environment()
    with stores.using(store):
        yield store


@pytest.fixture(scope="module")
def topology() -> Topology:
    """The repo's topics.toml as declared (8 partitions per co-partitioned group)."""
    return load_topology()


@pytest.fixture(scope="module")
def local_broker(topology: Topology) -> Iterator[LocalBroker]:
    """A running Tansu broker with every declared topic created; one per test module."""
    broker = start_broker_with_topics(topology)
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def broker_at() -> Iterator[Callable[[int], LocalBroker]]:
    """A factory of private brokers for one test: `broker_at(partitions)` starts a Tansu broker
    with every declared topic at `partitions`; each one started is stopped after the test."""
    started: list[LocalBroker] = []

    def start(partitions: int) -> LocalBroker:
        broker = start_broker_with_topics(partitions)
        started.append(broker)
        return broker

    try:
        yield start
    finally:
        for broker in started:
            broker.stop()


@pytest.fixture
def bare_broker() -> Iterator[LocalBroker]:
    """A running Tansu broker with no topics, for tests of topic creation itself."""
    try:
        broker = LocalBroker().start()
    except BrokerStartError as exc:
        unavailable(f"local broker unavailable: {exc}")
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """`redis://127.0.0.1:PORT/0` of a private, non-persistent redis-server; one per module."""
    try:
        server = RedisServer().start()
    except RedisServerError as exc:
        unavailable(str(exc))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Debian's Chromium, headless, through Playwright (`executable_path`: never a browser
    Playwright downloads); open pages on it with `tests.support.browser.watched_page`."""
    async with launched_chromium() as launched:
        yield launched


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where a browser test keeps its screenshots on failure: the test's own `tmp_path`
    (pytest keeps the last three runs' under its basetemp); the failure message names the file."""
    return tmp_path
