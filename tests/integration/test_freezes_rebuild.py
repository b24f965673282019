"""`claimstream freezes rebuild` on the real broker and a real redis-server.

Commands are published to claimstream.commands.v1 (several per partition, in multi-record
batches) and applied to Redis the way a worker does; then keys are deleted, altered, added and
corrupted. A dry run names every drift and changes nothing; the rebuild makes the registry equal
the ledger of the topic again, sets the commands' markers (a redelivery changes nothing), and a
second rebuild finds no drift.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime

import orjson
import pytest
import redis.asyncio as aioredis

from claimstream.cli.main import main
from claimstream.devtools.localbroker import LocalBroker
from claimstream.freezes.redis import RedisRegistry
from claimstream.model.outputs import Command, Scope
from claimstream.sanctions.ledger import FreezeLedger, compare
from tests.integration.stream_support import produce

pytestmark = pytest.mark.integration
TOPIC = "claimstream.commands.v1"
DAY = 86_400.0
NOW = float(int(time.time()))
_prefixes = itertools.count()


def iso(days: float) -> str:
    return datetime.fromtimestamp(NOW + days * DAY, UTC).isoformat()


def cmd(name: str, action: str, scope: Scope, start: float, end: float | None = None) -> Command:
    return Command(
        command_id=f"rb-{name}",
        action=action,  # type: ignore[arg-type]
        scope=scope,
        effective_from=iso(start),
        expires_at=None if end is None else iso(end),
        reason="rebuild test",
        rule="test",
        alert_ids=(),
    )


H = [Scope("institution", f"H{i}") for i in range(8)]
COMMANDS = [
    cmd("f0", "FREEZE", H[0], -0.5, 0.5),
    cmd("f1", "FREEZE", H[1], -1, 1),
    cmd("u1", "UNFREEZE", H[1], -0.5),  # lifted
    cmd("s2", "SUSPEND", H[2], -3),
    cmd("f2", "FREEZE", H[2], -1, 2),  # does not lift the suspension
    cmd("f3-today", "FREEZE", H[3], -0.25, 0.75),
    cmd("u3-midnight", "UNFREEZE", H[3], -0.5),  # the race: stays frozen
    cmd("f4-old", "FREEZE", H[4], -3, -2),  # expired
    cmd("f5-later", "FREEZE", H[5], 1, 2),  # not in force yet
    cmd("d6", "FREEZE", Scope("patient", "P6", "INS"), -1, 3),
    cmd("s7", "SUSPEND", Scope("doctor", "D7"), -2),
    cmd("f1", "FREEZE", H[1], -1, 1),  # redelivered after its UNFREEZE
]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().out


async def _redis(url: str, *ops: tuple[str, tuple[object, ...]]) -> list[object]:
    client = aioredis.Redis.from_url(url)
    try:
        return [await getattr(client, name)(*args) for name, args in ops]
    finally:
        await client.aclose()


async def _state(url: str, prefix: str) -> tuple[list[dict[str, object]], dict[str, bytes]]:
    registry = RedisRegistry(url, prefix)
    await registry.start()
    try:
        return [f.command for f in await registry.active(time.time())], await registry.stored()
    finally:
        await registry.close()


async def _apply(url: str, prefix: str, commands: list[Command]) -> list[str]:
    registry = RedisRegistry(url, prefix)
    await registry.start()
    try:
        return list(await registry.apply(commands, time.time()))
    finally:
        await registry.close()


@pytest.fixture(scope="module")
def published(local_broker: LocalBroker) -> LocalBroker:
    messages = [(TOPIC, c.scope.key().encode(), orjson.dumps(c.to_dict())) for c in COMMANDS]
    messages.append((TOPIC, b"institution:H0", b"{not json"))  # unreadable: reported, skipped
    produce(local_broker.bootstrap, messages)
    return local_broker


def test_rebuild_restores_a_tampered_registry(
    published: LocalBroker, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = f"rb{next(_prefixes)}"
    base = ["freezes", "rebuild", "--bootstrap", published.bootstrap]
    base += ["--redis-url", redis_url, "--prefix", prefix]
    asyncio.run(_apply(redis_url, prefix, COMMANDS))  # what the workers did
    ledger = FreezeLedger.rebuild(COMMANDS)
    held, _ = asyncio.run(_state(redis_url, prefix))
    assert compare(ledger.active(time.time()), held).ok

    code, out = run_cli([*base, "--dry-run"], capsys)
    assert code == 0, out
    assert "no drift" in out and "1 unreadable" in out

    key = f"{prefix}:freeze:"
    other = cmd("forged", "SUSPEND", H[0], -1).to_dict()
    asyncio.run(
        _redis(
            redis_url,
            ("delete", (key + "institution:H3",)),  # missing
            ("set", (key + "institution:H0", orjson.dumps(other))),  # different
            (
                "set",
                (key + "institution:H1", orjson.dumps(cmd("x", "FREEZE", H[1], -1, 1).to_dict())),
            ),
            ("set", (key + "patient:P6:INS", b"garbage")),  # unreadable
            ("delete", (key + "institution:H5",)),  # pending (not in force yet) gone
        )
    )
    code, out = run_cli([*base, "--dry-run"], capsys)
    assert code == 1, out
    assert "2 missing, 1 unexpected, 1 set by another command, 1 unreadable key(s)" in out
    for line in (
        "missing    institution:H3  (FREEZE rb-f3-today)",
        "missing    patient:P6:INS  (FREEZE rb-d6)",
        "unexpected institution:H1",
        "different  institution:H0",
        "unreadable " + key + "patient:P6:INS",
        "dry run: nothing changed (a rebuild would set 4, delete 1 key(s))",
    ):
        assert line in out, out
    _, stored = asyncio.run(_state(redis_url, prefix))
    assert orjson.loads(stored[key + "institution:H0"])["command_id"] == "rb-forged"

    code, out = run_cli(base, capsys)
    assert code == 0, out
    assert "rebuilt: set 4, deleted 1 key(s) in one step" in out, out
    held, stored = asyncio.run(_state(redis_url, prefix))
    agreement = compare(ledger.active(time.time()), held)
    assert agreement.ok, agreement
    assert sorted(stored) == sorted(
        key + k
        for k in (
            "institution:H0",
            "institution:H2",
            "institution:H3",
            "institution:H5",
            "patient:P6:INS",
            "doctor:D7",
        )
    )
    (ttl,) = asyncio.run(_redis(redis_url, ("pttl", (key + "doctor:D7",))))
    assert ttl == -1  # a SUSPEND never expires

    # the markers are set: a worker redelivering an old command changes nothing
    assert asyncio.run(_apply(redis_url, prefix, [COMMANDS[0], COMMANDS[1]])) == [
        "duplicate",
        "duplicate",
    ]
    code, out = run_cli([*base, "--dry-run"], capsys)
    assert code == 0 and "no drift" in out, out


def test_rebuild_of_an_empty_registry_and_json_report(
    published: LocalBroker, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = f"rb{next(_prefixes)}"
    argv = ["freezes", "rebuild", "--bootstrap", published.bootstrap, "--redis-url", redis_url]
    code, out = run_cli([*argv, "--prefix", prefix, "--json"], capsys)
    assert code == 0, out
    report = orjson.loads(out)
    assert report["applied"] and report["commands"] == len(COMMANDS) + 1
    assert report["missing"] == [
        "doctor:D7",
        "institution:H0",
        "institution:H2",
        "institution:H3",
        "patient:P6:INS",
    ]
    assert report["pending"] == ["institution:H5"]
    assert report["markers"] == len({c.command_id for c in COMMANDS})
    held, _ = asyncio.run(_state(redis_url, prefix))
    assert compare(FreezeLedger.rebuild(COMMANDS).active(time.time()), held).ok


def test_rebuild_errors_are_clear(
    published: LocalBroker, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["freezes", "rebuild", "--bootstrap", published.bootstrap, "--redis-url", ""])
    assert code == 2 and "no Redis" in capsys.readouterr().err
    code = main(
        [
            "freezes",
            "rebuild",
            "--bootstrap",
            published.bootstrap,
            "--redis-url",
            redis_url,
            "--topic",
            "claimstream.no-such-topic",
        ]
    )
    assert code == 2 and "does not exist" in capsys.readouterr().err
