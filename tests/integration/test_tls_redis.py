"""The freeze registry on a hardened redis-server: TLS only, the passwordless `default` user off,
and an ACL user allowed the registry's commands on its key prefix and nothing else
(`claimstream.freezes.connection.acl_line`). The registry keeps the ledger's rules there as it
does on a plain server; `claimstream freezes` and the worker's start-up check reach it; a wrong
password or an untrusted certificate is one line and exit 2, never showing the password.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from redis.exceptions import NoPermissionError

from claimstream.devtools.localbroker import LocalBroker
from claimstream.devtools.subproc import terminate_group
from claimstream.freezes.connection import RedisOptions, acl_line, refusal
from claimstream.freezes.redis import RedisRegistry
from tests.cli.support import claimstream, cli_env
from tests.freezes.test_memory import (
    NOW,
    _base,
    check_against_ledger,
    command,
    contract_command,
    named_sequences,
)
from tests.support.pki import Pki, make_pki
from tests.support.redis_server import RedisServer, RedisServerError, RedisTls
from tests.support.services import unavailable

pytestmark = pytest.mark.integration
USER = "claimstream-worker"
SECRET = "registry-secret-7f3a"
_prefixes = itertools.count()


@dataclass
class Secured:
    url: str  # rediss://claimstream-worker@127.0.0.1:PORT/0, no password
    pki: Pki
    password_file: Path
    options: RedisOptions


def start(tls: RedisTls, users: list[str]) -> RedisServer:
    try:
        return RedisServer(tls=tls, users=users).start()
    except RedisServerError as exc:
        unavailable(str(exc))


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Secured]:
    root = tmp_path_factory.mktemp("redis-tls")
    pki = make_pki(root / "pki")
    password = root / "password"
    password.write_text(SECRET + "\n", encoding="utf-8")
    rule = acl_line(USER, "acl*", SECRET).removeprefix("user ")  # ~acl*:* : the tests' prefixes
    server = start(RedisTls(pki.server.cert, pki.server.key, pki.ca), [rule])
    try:
        url = server.url.replace("rediss://", f"rediss://{USER}@")
        env = {"CLAIMSTREAM_REDIS_PASSWORD_FILE": str(password),
               "CLAIMSTREAM_REDIS_TLS_CA_FILE": pki.ca}  # fmt: skip
        yield Secured(url, pki, password, RedisOptions.for_url(url, env))
    finally:
        server.stop()


@pytest.fixture
async def registry(secured: Secured) -> AsyncIterator[RedisRegistry]:
    reg = RedisRegistry(secured.url, f"acl{next(_prefixes)}", secured.options)
    await reg.start()
    try:
        yield reg
    finally:
        await reg.close()


def cli(*args: str, **env: str) -> tuple[int, str]:
    """`claimstream ARGS` in a process of its own with `env` as its only `CLAIMSTREAM_*`
    variables: (exit code, stderr). A process, not `main()` here: after a refused TLS handshake
    asyncio may close the socket a loop turn after the command's loop ended, and the test run
    would report that as an unclosed socket of whatever test runs next."""
    proc = claimstream(*args, env=cli_env(**env), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        terminate_group(proc, timeout=5)
    return proc.returncode, err.decode()


def one_line(err: str) -> str:
    assert err.count("\n") == 1, err
    return err


# --- the registry's contract over TLS, as the ACL user ------------------------------------------


@pytest.mark.parametrize("name", list(named_sequences()))
async def test_the_registry_over_tls_as_its_acl_user_equals_the_ledger(
    registry: RedisRegistry, name: str
) -> None:
    await check_against_ledger(registry, named_sequences()[name])


async def test_two_writers_racing_over_tls_agree_with_the_ledger(secured: Secured) -> None:
    """WATCH / MULTI / EXEC retries work under the ACL (the commands are in its list)."""
    prefix = f"acl{next(_prefixes)}"
    writers = [RedisRegistry(secured.url, prefix, secured.options) for _ in range(2)]
    for w in writers:
        await w.start()
    try:
        freezes = [
            contract_command(f"r{i}", "FREEZE", -1, 0.5 + (i * 7 % 40) / 20) for i in range(40)
        ]
        await asyncio.gather(*(writers[i % 2].apply([c], _base) for i, c in enumerate(freezes)))
        held = [f.command["command_id"] for f in await writers[0].active(_base)]
        assert held == ["cmd-r17"]
    finally:
        for w in writers:
            await w.close()


async def test_the_rebuilds_swap_and_scan_work_under_the_acl(registry: RedisRegistry) -> None:
    await registry.apply([command("c1", until=2_000_000_000)], NOW)
    stored = await registry.stored()
    assert len(stored) == 1
    (key,) = stored
    assert await registry.swap(stored, {}, ["rebuilt-1"], NOW)  # unchanged: the swap applies
    assert await registry.stored() == stored
    assert key.startswith(f"{registry.prefix}:freeze:")


async def test_the_acl_user_cannot_write_outside_its_key_prefix(secured: Secured) -> None:
    outsider = RedisRegistry(secured.url, "claimstream", secured.options)
    await outsider.start()
    try:
        with pytest.raises(NoPermissionError) as caught:
            await outsider.apply([command("c1", until=2_000_000_000)], NOW)
        assert "its ACL refused a command" in (refusal(caught.value) or "")
    finally:
        await outsider.close()


# --- refusals: one line, exit 2, no password ----------------------------------------------------


def test_freezes_reads_the_registry_over_tls(secured: Secured) -> None:
    async def freeze() -> None:
        reg = RedisRegistry(secured.url, "acl-cli", secured.options)
        await reg.start()
        try:
            await reg.apply([command("c-cli", until=2_000_000_000)], time.time())
        finally:
            await reg.close()

    asyncio.run(freeze())
    argv = ["freezes", "--redis-url", secured.url, "--redis-prefix", "acl-cli", "--json"]
    proc = claimstream(
        *argv,
        "--kind", "patient", "--id", "P1", "--drug-code", "INS",
        env=cli_env(
            CLAIMSTREAM_REDIS_PASSWORD_FILE=str(secured.password_file),
            CLAIMSTREAM_REDIS_TLS_CA_FILE=secured.pki.ca,
        ),
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        terminate_group(proc, timeout=5)
    assert proc.returncode == 0
    assert orjson.loads(out)["frozen"] is True


def test_a_wrong_redis_password_is_one_line_exit_2_without_the_password(
    secured: Secured, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("wrong-password-9\n", encoding="utf-8")
    code, err = cli(
        "freezes",
        "--redis-url",
        secured.url,
        CLAIMSTREAM_REDIS_PASSWORD_FILE=str(wrong),
        CLAIMSTREAM_REDIS_TLS_CA_FILE=secured.pki.ca,
    )
    assert code == 2
    assert "refused the login" in one_line(err) and "CLAIMSTREAM_REDIS_PASSWORD_FILE" in err
    assert "wrong-password-9" not in err and SECRET not in err


def test_a_password_in_the_url_is_masked_in_the_refusal(secured: Secured) -> None:
    url = secured.url.replace(f"{USER}@", f"{USER}:wrong-in-url@")
    code, err = cli("freezes", "--redis-url", url, CLAIMSTREAM_REDIS_TLS_CA_FILE=secured.pki.ca)
    assert code == 2
    assert f"{USER}:***@" in one_line(err) and "wrong-in-url" not in err


def test_an_untrusted_redis_certificate_is_refused_naming_the_ca_variable(
    secured: Secured,
) -> None:
    code, err = cli(
        "freezes",
        "--redis-url",
        secured.url,
        CLAIMSTREAM_REDIS_PASSWORD_FILE=str(secured.password_file),
        CLAIMSTREAM_REDIS_TLS_CA_FILE=secured.pki.stranger_ca,
    )
    assert code == 2
    assert "not trusted" in one_line(err) and "CLAIMSTREAM_REDIS_TLS_CA_FILE" in err


def test_the_worker_refuses_to_start_on_a_wrong_redis_password(
    secured: Secured, local_broker: LocalBroker, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("wrong-password-9\n", encoding="utf-8")
    code, err = cli(
        "worker",
        **local_broker.environment(),
        CLAIMSTREAM_AUDIT_UNKEYED="true",
        CLAIMSTREAM_REDIS_URL=secured.url,
        CLAIMSTREAM_REDIS_PASSWORD_FILE=str(wrong),
        CLAIMSTREAM_REDIS_TLS_CA_FILE=secured.pki.ca,
    )
    assert code == 2
    last = err.splitlines()[-1]  # after the unkeyed audit trail's warning
    assert last.startswith("claimstream worker: Redis at rediss://claimstream-worker@127.0.0.1:")
    assert "refused the login" in last and "wrong-password-9" not in err


# --- mutual TLS --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mutual(secured: Secured) -> Iterator[str]:
    pki = secured.pki
    tls = RedisTls(
        pki.server.cert,
        pki.server.key,
        pki.ca,
        client_ca=pki.ca,
        probe_cert=pki.client.cert,
        probe_key=pki.client.key,
    )
    server = start(tls, [acl_line(USER, "acl*", SECRET).removeprefix("user ")])
    try:
        yield server.url.replace("rediss://", f"rediss://{USER}@")
    finally:
        server.stop()


async def test_mutual_tls_redis_answers_a_client_with_its_certificate(
    secured: Secured, mutual: str
) -> None:
    env = {"CLAIMSTREAM_REDIS_PASSWORD_FILE": str(secured.password_file),
           "CLAIMSTREAM_REDIS_TLS_CA_FILE": secured.pki.ca,
           "CLAIMSTREAM_REDIS_TLS_CERT_FILE": secured.pki.client.cert,
           "CLAIMSTREAM_REDIS_TLS_KEY_FILE": secured.pki.client.key}  # fmt: skip
    reg = RedisRegistry(mutual, "acl-mtls", RedisOptions.for_url(mutual, env))
    await reg.start()
    try:
        assert await reg.apply([command("m1", until=2_000_000_000)], NOW) == ["applied"]
    finally:
        await reg.close()


def test_mutual_tls_redis_refuses_a_client_without_a_certificate(
    secured: Secured, mutual: str
) -> None:
    code, err = cli(
        "freezes",
        "--redis-url",
        mutual,
        CLAIMSTREAM_REDIS_PASSWORD_FILE=str(secured.password_file),
        CLAIMSTREAM_REDIS_TLS_CA_FILE=secured.pki.ca,
    )
    assert code == 2
    assert "CLAIMSTREAM_REDIS_TLS_CERT_FILE" in one_line(err)
