"""A real Prometheus server (Debian's `prometheus` binary) on a free loopback port, for tests.

Its configuration is deploy/prometheus/prometheus.yml with the "claimstream" job pointed at the
given targets, 1 s scrape and evaluation intervals, the deploy alerting rules loaded, and no
Alertmanager. Storage is a temporary directory. `stop()` always ends the process.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from claimstream.devtools.subproc import die_with_parent, terminate_group
from tests.ops.support import DEPLOY, RULES_FILE

T = TypeVar("T")


class PrometheusStartError(RuntimeError):
    pass


class _Exited(Exception):
    """The server process ended while we waited for it to become ready."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(probe: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            got = probe()
        except (OSError, ValueError) as exc:  # not up yet / not there yet
            got, last_error = None, exc
        if got:
            return got
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}: {last_error}")
        time.sleep(interval)


def http_get(url: str, timeout: float = 5.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # loopback only
        return bytes(resp.read())


class PrometheusServer:
    def __init__(self, binary: str, workdir: Path, targets: Sequence[str]) -> None:
        self.binary = binary
        self.workdir = workdir
        self.targets = list(targets)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "prometheus.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text("utf-8"))
        job = next(j for j in config["scrape_configs"] if j["job_name"] == "claimstream")
        job["static_configs"] = [{"targets": self.targets}]
        job["scrape_interval"] = "1s"
        job["scrape_timeout"] = "1s"
        config["global"].update(scrape_interval="1s", evaluation_interval="1s")
        config.pop("alerting", None)
        config["scrape_configs"] = [job]
        rules_dir = self.workdir / "rules"
        rules_dir.mkdir(exist_ok=True)
        shutil.copy(RULES_FILE, rules_dir / RULES_FILE.name)
        config["rule_files"] = [str(rules_dir / "*.yml")]
        path = self.workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    def start(self, timeout: float = 60.0, attempts: int = 3) -> PrometheusServer:
        config = self.write_config()
        for _ in range(attempts):
            self.port = free_port()
            storage = self.workdir / f"data-{self.port}"
            with self.log_path.open("ab") as log:
                self.proc = subprocess.Popen(
                    [
                        self.binary,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={storage}",
                        f"--web.listen-address=127.0.0.1:{self.port}",
                        "--log.level=warn",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                    preexec_fn=die_with_parent,
                )
            try:
                wait_for(self._ready, timeout, "prometheus /-/ready")
                return self
            except _Exited:  # e.g. the port was taken meanwhile: try another one
                self.stop()
            except TimeoutError:  # running but never ready: retrying will not help
                self.stop()
                break
        raise PrometheusStartError(f"prometheus did not start; log:\n{self.log()}")

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise _Exited
        return http_get(f"{self.url}/-/ready").startswith(b"Prometheus")

    def log(self) -> str:
        return self.log_path.read_text("utf-8", errors="replace")[-4000:]

    def api(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        doc = json.loads(http_get(f"{self.url}/api/v1/{path}{query}"))
        if doc.get("status") != "success":
            raise AssertionError(f"{path} {params}: {doc}")
        return doc["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        result = data["result"]
        return result if isinstance(result, list) else [{"value": result}]

    def query_status(self, expr: str) -> tuple[int, dict[str, Any]]:
        """HTTP status and body of an instant query, without raising on a bad expression."""
        url = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return int(resp.status), json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), json.loads(exc.read() or b"{}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            terminate_group(proc, timeout=15)
