"""A scripted HTTP server on loopback for the client's tests: it answers each request with the
next (status, body, headers) of its script and keeps what it was sent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

Answer = tuple[int, Any, dict[str, str]]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Script:
    answers: list[Answer]
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    #: seconds to stall before answering (a worker that does not answer in time)
    stall: float = 0.0


@contextmanager
def scripted(*answers: Answer, stall: float = 0.0) -> Iterator[Script]:
    script = Script(list(answers), stall=stall)
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            script.seen.append(Seen(self.command, self.path, dict(self.headers), body))
            if script.stall:
                release.wait(script.stall)
            status, payload, headers = script.answers.pop(0)
            data = orjson.dumps(payload)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    script.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield script
    finally:
        release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
