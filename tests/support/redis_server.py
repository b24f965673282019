"""A throwaway redis-server on loopback for tests: free port, no persistence, stopped for sure.

Uses Debian's `redis-server` (scripts/install-system-deps.sh installs it; Debian builds it with
TLS). Nothing is written to disk: no RDB snapshots, no AOF, and the working directory is a
temporary one.

`RedisServer(tls=RedisTls(...), users=[...])` is the hardened server of the transport tests:
TLS only (`--port 0 --tls-port N`, a client certificate required when `RedisTls.client_ca`
is set) and ACL users instead of the passwordless `default` user, which is switched off.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from claimstream.devtools.subproc import die_with_parent, free_port, terminate_group

_PORT_ATTEMPTS = 5


class RedisServerError(RuntimeError):
    """redis-server is missing or did not answer PING in time."""


def redis_ping(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a Redis server answers PING on host:port (raw RESP, no client library)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass(frozen=True)
class RedisTls:
    """The server's PEM certificate and key, the CA clients trust, and (mutual TLS) the CA
    client certificates must come from plus a client pair for the readiness probe."""

    cert_file: str
    key_file: str
    ca_file: str
    client_ca: str | None = None
    probe_cert: str | None = None
    probe_key: str | None = None


def redis_answers_tls(host: str, port: int, tls: RedisTls, timeout: float = 0.5) -> bool:
    """True when a TLS Redis server answers PING at all (`+PONG`, or `-NOAUTH` with ACLs)."""
    context = ssl.create_default_context(cafile=tls.ca_file)
    if tls.probe_cert is not None:
        context.load_cert_chain(tls.probe_cert, tls.probe_key)
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as sock,
        ):
            sock.sendall(b"PING\r\n")
            return sock.recv(64)[:1] in (b"+", b"-")
    except OSError:
        return False


class RedisServer:
    """`with RedisServer() as server: server.url` -> "redis://127.0.0.1:PORT/0".

    `tls`: TLS only, `server.url` is then "rediss://127.0.0.1:PORT/0". `users`: ACL rules, one
    user each (`"worker on >secret ~claimstream:* -@all +ping"`); the `default` user is then
    switched off, so every client must log in.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        startup_timeout: float = 10.0,
        tls: RedisTls | None = None,
        users: Sequence[str] = (),
        extra_args: Sequence[str] = (),
    ) -> None:
        self.host = host
        self.startup_timeout = startup_timeout
        self.tls = tls
        self.users = tuple(users)
        #: more redis-server arguments (`--aclfile PATH`: then give `users` nothing)
        self.extra_args = tuple(extra_args)
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("redis-server is not running")
        scheme = "rediss" if self.tls is not None else "redis"
        return f"{scheme}://{self.host}:{self.port}/0"

    def start(self) -> Self:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RedisServerError(
                "redis-server not found; run scripts/install-system-deps.sh (Debian: apt-get "
                "install redis-server)"
            )
        self._dir = tempfile.TemporaryDirectory(prefix="claimstream-redis-")
        for _ in range(_PORT_ATTEMPTS):
            port = free_port(self.host)
            if self._spawn_and_wait(binary, port):
                self.port = port
                return self
        self.stop()
        raise RedisServerError(f"redis-server did not answer PING on {self.host}")

    def stop(self) -> None:
        proc, self._proc, self.port = self._proc, None, None
        if proc is not None:
            terminate_group(proc, timeout=5.0)
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn_and_wait(self, binary: str, port: int) -> bool:
        assert self._dir is not None
        args = [
            binary,
            "--bind", self.host,
            "--port", str(port),
            "--save", "",
            "--appendonly", "no",
            "--dir", self._dir.name,
            "--daemonize", "no",
            "--logfile", str(Path(self._dir.name) / "redis.log"),
        ]  # fmt: skip
        if self.tls is not None:
            args[args.index("--port") + 1] = "0"  # no plaintext port at all
            args += [
                "--tls-port", str(port),
                "--tls-cert-file", self.tls.cert_file,
                "--tls-key-file", self.tls.key_file,
                "--tls-ca-cert-file", self.tls.client_ca or self.tls.ca_file,
                "--tls-auth-clients", "yes" if self.tls.client_ca else "no",
            ]  # fmt: skip
        if self.users:
            args += ["--user", "default", "off"]
            for rule in self.users:
                args += ["--user", *rule.split()]
        args += self.extra_args
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        self._proc = proc
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline and proc.poll() is None:
            if self.tls is not None:
                if redis_answers_tls(self.host, port, self.tls):
                    return True
            elif redis_ping(self.host, port) or (
                (self.users or self.extra_args) and _answers(self.host, port)
            ):
                return True
            time.sleep(0.02)
        terminate_group(proc, timeout=5.0)
        self._proc = None
        return False


def _answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a server answers PING at all (`-NOAUTH` from a server without a default user)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64)[:1] in (b"+", b"-")
    except OSError:
        return False
