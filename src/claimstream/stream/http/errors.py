"""Every error the worker's web server answers is JSON: `{"error": "..."}` with its status.

aiohttp answers an unknown path (404), a known path with the wrong method (405, with `Allow`)
and a request it cannot take (400, 413, ...) with plain text, and an exception in a handler
with a 500 page; `json_errors` (a middleware on the whole web server, faust's own routes
included) turns each into JSON. A 500 says only that it is an internal error: the traceback is
logged (with the route's pattern, never the path, which may hold an id), not sent.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from claimstream.stream.http.routes import json_response, route_of

log = logging.getLogger(__name__)

#: headers of aiohttp's error that the JSON answer keeps
_KEPT = ("Allow", "Retry-After", "WWW-Authenticate")


@web.middleware
async def json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and the like are not errors
        headers = {name: exc.headers[name] for name in _KEPT if name in exc.headers}
        return json_response(exc.status, {"error": _message(request, exc)}, headers)
    except Exception:
        log.exception("internal error answering %s %s", request.method, route_of(request))
        return json_response(500, {"error": "internal error (the worker's log has the details)"})


def _message(request: web.Request, exc: web.HTTPException) -> str:
    if exc.status == 404:
        return f"no such route: {request.method} {request.path} (GET /openapi.json lists them)"
    if exc.status == 405:
        allowed = ", ".join(sorted(getattr(exc, "allowed_methods", ()) or ()))
        return f"{request.method} is not allowed on {request.path} (allowed: {allowed})"
    text = (exc.text or exc.reason or "").strip()
    if text.startswith(f"{exc.status}:"):  # aiohttp's default body: "404: Not Found"
        text = text.partition(":")[2].strip()
    return text or exc.reason
