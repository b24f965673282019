"""What the casework integration tests share: a worker of the local broker with casework on,
whose API knows a few named people's tokens, and a call of its API with one person's token.

    worker = casework_worker(broker.url, TOKENS, ROLES, "claimstream-cases-it", tmp)
    status, body = api_call(worker.port, TOKENS[SUPERVISOR], "GET", "/v1/cases")
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from claimstream.stream.http.access import token_line
from tests.integration.stream_support import WorkerProcess, log_tail, wait_for


def api_call(port: int, token: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """`method path` of the worker on loopback `port` with `token`: (status, JSON body), an
    HTTP error's too."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read())


def casework_worker(
    broker_url: str,
    tokens: Mapping[str, str],
    roles: Mapping[str, str],
    app_id: str,
    tmp: Path,
    name: str = "worker",
    **env: str,
) -> WorkerProcess:
    """A worker with casework on (data in `tmp/data`, its log `tmp/NAME.log`), whose API knows
    `tokens` (person -> token) with `roles` (person -> roles), once its web server answers;
    stopped again when it does not (`env`: more variables)."""
    lines = ";".join(token_line(who, roles[who], tokens[who]) for who in tokens)
    worker = WorkerProcess(
        broker_url,
        env={
            "CLAIMSTREAM_API_TOKENS": lines,
            "CLAIMSTREAM_APP_ID": app_id,
            "CLAIMSTREAM_CASES_ENABLED": "true",
            "CLAIMSTREAM_DATA_DIR": str(tmp / "data"),
            **env,
        },
        log_path=tmp / f"{name}.log",
    ).start()
    try:
        wait_for(lambda: worker.status() is not None, 90, f"{name}'s web server",
                 explain=lambda: log_tail(worker.log_path))  # fmt: skip
    except BaseException:
        worker.stop()
        raise
    return worker
