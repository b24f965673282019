"""deploy/: every connection of the compose stack to Kafka and Redis is encrypted and
authenticated, each service with its own login, every secret a Docker secret that
deploy/make-secrets.sh makes; and what that script makes works: a real redis-server started
with its certificate and ACL file lets the registry in as claimstream-worker over TLS, and
refuses the default user. (No Docker engine here: compose's structure, not a running stack.)
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from claimstream.audit.keys import PublicKeys
from claimstream.audit.settings import WriterSettings
from claimstream.freezes.connection import REGISTRY_ACL_COMMANDS, RedisOptions
from claimstream.freezes.redis import RedisRegistry
from claimstream.sanctions.signatures import ActionSigner, ActionVerifier, parse_keyring
from claimstream.stream.http.access import parse_tokens
from tests.ops.support import DEPLOY, load_yaml
from tests.support.redis_server import RedisServer, RedisServerError, RedisTls
from tests.support.services import unavailable

COMPOSE = DEPLOY / "compose.yaml"
MAKE_SECRETS = DEPLOY / "make-secrets.sh"
SETUP_USERS = DEPLOY / "kafka" / "setup-users.sh"
KAFKA_CLIENTS = ("worker-1", "worker-2", "topics-init")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = load_yaml(COMPOSE)
    assert isinstance(doc, dict)
    return doc


def env_of(compose: dict[str, Any], service: str) -> dict[str, str]:
    return {k: str(v) for k, v in compose["services"][service].get("environment", {}).items()}


def secret_names(compose: dict[str, Any], service: str) -> set[str]:
    entries = compose["services"][service].get("secrets", [])
    return {e["source"] if isinstance(e, dict) else e for e in entries}


def mounted(path: str) -> str:
    """The secret a `/run/secrets/NAME` path is."""
    assert path.startswith("/run/secrets/"), path
    return path.removeprefix("/run/secrets/")


@pytest.fixture(scope="module")
def secrets_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        unavailable("openssl not found (Debian package 'openssl')")
    out = tmp_path_factory.mktemp("deploy") / "secrets"
    subprocess.run(["bash", str(MAKE_SECRETS), str(out)], check=True, capture_output=True)
    return out


# --- Kafka ------------------------------------------------------------------------------------


def test_kafka_offers_clients_sasl_ssl_only(compose: dict[str, Any]) -> None:
    kafka = env_of(compose, "kafka")
    protocols = dict(p.split(":") for p in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    for listener in kafka["KAFKA_LISTENERS"].split(","):
        name, _, address = listener.partition("://")
        if protocols[name] != "SASL_SSL":  # only the container's own loopback may be plaintext
            assert address.startswith("localhost:"), listener
    assert set(kafka["KAFKA_SASL_ENABLED_MECHANISMS"].split(",")) == {"SCRAM-SHA-512", "PLAIN"}


def test_kafka_denies_what_no_acl_allows(compose: dict[str, Any]) -> None:
    kafka = env_of(compose, "kafka")
    assert kafka["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert kafka["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"


def test_every_kafka_client_logs_in_with_scram_over_tls_from_a_secret_file(
    compose: dict[str, Any],
) -> None:
    for name in KAFKA_CLIENTS:
        env = env_of(compose, name)
        assert env["CLAIMSTREAM_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL", name
        assert env["CLAIMSTREAM_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512", name
        assert "CLAIMSTREAM_KAFKA_SASL_PASSWORD" not in env, f"{name}: a password in compose"
        needed = {
            mounted(env["CLAIMSTREAM_KAFKA_SASL_PASSWORD_FILE"]),
            mounted(env["CLAIMSTREAM_KAFKA_SSL_CA_FILE"]),
        }
        assert needed <= secret_names(compose, name), name


def test_each_kind_of_service_has_its_own_kafka_user(compose: dict[str, Any]) -> None:
    users = {
        name: env_of(compose, name)["CLAIMSTREAM_KAFKA_SASL_USERNAME"] for name in KAFKA_CLIENTS
    }
    assert users["worker-1"] == users["worker-2"] == "claimstream-worker"
    assert users["topics-init"] == "claimstream-topics"


def test_kafka_users_creates_every_user_the_stack_logs_in_as(compose: dict[str, Any]) -> None:
    script = SETUP_USERS.read_text(encoding="utf-8")
    created = set(re.findall(r"^scram (\S+) ", script, flags=re.MULTILINE))
    used = {env_of(compose, name)["CLAIMSTREAM_KAFKA_SASL_USERNAME"] for name in KAFKA_CLIENTS}
    assert used <= created
    for user in created:
        assert f"allow {user} " in script, f"{user} has no ACL"
    users = compose["services"]["kafka-users"]
    assert users["depends_on"]["kafka"]["condition"] == "service_healthy"
    init = compose["services"]["topics-init"]
    assert init["depends_on"]["kafka-users"]["condition"] == "service_completed_successfully"


def test_the_worker_may_read_its_inputs_and_write_only_claimstream_topics() -> None:
    script = SETUP_USERS.read_text(encoding="utf-8")
    worker = [line for line in script.splitlines() if line.startswith("allow claimstream-worker")]
    writes = [line for line in worker if " Write" in line]
    assert writes and all("--topic claimstream " in line for line in writes), writes
    assert any("--group claimstream -- Read" in line for line in worker)
    assert not any("TransactionalId" in line or "--cluster" in line for line in worker)


# --- Redis ------------------------------------------------------------------------------------


def test_redis_listens_with_tls_only_and_its_acl_file(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--port") + 1] == "0"
    assert "--tls-port" in command
    assert mounted(command[command.index("--aclfile") + 1]) in secret_names(compose, "redis")


def test_the_workers_reach_redis_as_an_acl_user_with_a_password_file(
    compose: dict[str, Any],
) -> None:
    for name in ("worker-1", "worker-2"):
        env = env_of(compose, name)
        url = env["CLAIMSTREAM_REDIS_URL"]
        assert re.fullmatch(r"rediss://claimstream-worker@redis:\d+/0", url), url
        assert mounted(env["CLAIMSTREAM_REDIS_PASSWORD_FILE"]) in secret_names(compose, name)
        assert mounted(env["CLAIMSTREAM_REDIS_TLS_CA_FILE"]) in secret_names(compose, name)


# --- the secrets ------------------------------------------------------------------------------


def test_every_secret_file_compose_names_is_made_by_make_secrets(
    compose: dict[str, Any], secrets_dir: Path
) -> None:
    files = [s["file"] for s in compose["secrets"].values() if s["file"].startswith("./secrets/")]
    assert len(files) >= 10
    for file in files:
        assert (secrets_dir / file.removeprefix("./secrets/")).is_file(), file
    used = {name for svc in compose["services"] for name in secret_names(compose, svc)}
    assert used <= set(compose["secrets"])


def test_the_secrets_stay_out_of_version_control() -> None:
    assert "secrets/" in (DEPLOY / ".gitignore").read_text(encoding="utf-8").split()


def test_the_kafka_keystore_opens_with_its_password_and_names_the_broker(
    secrets_dir: Path,
) -> None:
    password = (secrets_dir / "kafka_keystore_password").read_bytes()
    key, cert, _ = pkcs12.load_key_and_certificates(
        (secrets_dir / "kafka.keystore.p12").read_bytes(), password
    )
    assert key is not None and cert is not None
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"kafka", "localhost"} <= set(names.get_values_for_type(x509.DNSName))


def test_the_jaas_file_defines_only_the_admin_login(secrets_dir: Path) -> None:
    jaas = (secrets_dir / "kafka_jaas.conf").read_text(encoding="utf-8")
    admin = (secrets_dir / "kafka_admin_password").read_text(encoding="utf-8")
    assert re.findall(r"user_([\w-]+)=", jaas) == ["kafka-admin"]
    assert f'"{admin}"' in jaas


def test_the_redis_acl_allows_exactly_the_registry_commands_by_password_hash(
    secrets_dir: Path,
) -> None:
    lines = (secrets_dir / "redis_users.acl").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "user default off"
    worker = lines[1].split()
    assert worker[:3] == ["user", "claimstream-worker", "on"]
    assert worker[3].startswith("#") and len(worker[3]) == 65  # a SHA-256, not the password
    assert [w for w in worker if w.startswith("+")] == [f"+{c}" for c in REGISTRY_ACL_COMMANDS]
    settlement = lines[2].split()
    assert settlement[1] == "claimstream-settlement" and "~claimstream:freeze:*" in settlement
    assert [w for w in settlement if w.startswith("+")] == ["+ping", "+get", "+mget"]


def test_a_rerun_keeps_every_secret(secrets_dir: Path) -> None:
    before = {p.name: p.read_bytes() for p in secrets_dir.iterdir()}
    subprocess.run(["bash", str(MAKE_SECRETS), str(secrets_dir)], check=True, capture_output=True)
    assert {p.name: p.read_bytes() for p in secrets_dir.iterdir()} == before


@pytest.fixture(scope="module")
def deployed_redis(secrets_dir: Path) -> Iterator[str]:
    """redis-server as compose starts it: its certificate, TLS only, the ACL file."""
    tls = RedisTls(
        str(secrets_dir / "redis.pem"), str(secrets_dir / "redis.key"), str(secrets_dir / "ca.pem")
    )
    try:
        server = RedisServer(
            tls=tls, extra_args=["--aclfile", str(secrets_dir / "redis_users.acl")]
        )
        server.start()
    except RedisServerError as exc:
        unavailable(str(exc))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.mark.integration
def test_the_made_secrets_let_the_registry_in_over_tls(
    deployed_redis: str, secrets_dir: Path
) -> None:
    url = deployed_redis.replace("rediss://", "rediss://claimstream-worker@")
    env = {"CLAIMSTREAM_REDIS_PASSWORD_FILE": str(secrets_dir / "redis_worker_password"),
           "CLAIMSTREAM_REDIS_TLS_CA_FILE": str(secrets_dir / "ca.pem")}  # fmt: skip

    async def active() -> int:
        registry = RedisRegistry(url, "claimstream", RedisOptions.for_url(url, env))
        await registry.start()
        try:
            return len(await registry.active(0.0))
        finally:
            await registry.close()

    assert asyncio.run(active()) == 0


@pytest.mark.integration
def test_the_made_secrets_leave_the_default_user_off(
    deployed_redis: str, secrets_dir: Path
) -> None:
    """A client that does not log in is told NOAUTH (plain sockets: no client library)."""
    port = int(deployed_redis.rsplit(":", 1)[1].split("/")[0])
    context = ssl.create_default_context(cafile=str(secrets_dir / "ca.pem"))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as sock,
    ):
        sock.sendall(b"PING\r\n")
        assert sock.recv(64).startswith(b"-NOAUTH")


# --- the keys and tokens the workers read ---------------------------------------------------


def test_the_made_audit_keys_are_what_a_worker_writes_with(secrets_dir: Path) -> None:
    keys = WriterSettings.from_env(
        {
            "CLAIMSTREAM_AUDIT_HMAC_KEY_FILE": str(secrets_dir / "audit_hmac.keys"),
            "CLAIMSTREAM_AUDIT_SIGNING_KEY_FILE": str(secrets_dir / "audit_signing.pem"),
            "CLAIMSTREAM_AUDIT_CHECKPOINT_DIR": str(secrets_dir / "checkpoints"),
        }
    )
    assert keys.hmac is not None and keys.signer is not None
    public = PublicKeys.from_pem((secrets_dir / "audit_public.pem").read_bytes(), "public")
    assert public.ids == [keys.signer.key_id]


def test_an_action_the_made_api_key_signs_verifies_against_the_made_keyring(
    secrets_dir: Path,
) -> None:
    signer = ActionSigner.from_pem((secrets_dir / "api_signing.pem").read_bytes(), "api key")
    keyring = parse_keyring((secrets_dir / "action_keys.pem").read_bytes(), "keyring")
    record = signer.sign({"schema": "action.v1", "action_id": "act-1", "by": "li.na"})
    assert ActionVerifier(lambda: keyring).check(record) == "api"


def test_the_made_tokens_are_stored_hashed_with_their_roles(secrets_dir: Path) -> None:
    stored = (secrets_dir / "api_tokens").read_bytes()
    tokens = parse_tokens(stored, "api_tokens")
    ops = (secrets_dir / "api_token_ops").read_text()
    gateway = (secrets_dir / "api_token_settlement-gw").read_text()
    assert ops.encode() not in stored and gateway.encode() not in stored
    found = tokens.find(ops)
    assert found is not None and found.roles == frozenset({"admin"})
    found = tokens.find(gateway)
    assert found is not None and found.roles == frozenset({"settlement"})
    assert (secrets_dir / "api_token_ops").stat().st_mode & 0o077 == 0
