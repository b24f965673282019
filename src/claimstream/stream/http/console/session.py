"""The console's session: the token in a cookie, and the CSRF token derived from it.

The cookie holds the person's bearer token itself (what they pasted at sign-in); every request
checks it again against the worker's tokens (`Access.authenticate`), so a token removed from
the token file signs its holder out at the next click. It is `HttpOnly` (no script reads it),
`SameSite=Strict` (no other site's page sends it), `Secure` when the console is served over TLS,
scoped to `/console` (the API never sees it) and lasts at most `MAX_AGE` seconds.

CSRF: every form carries `csrf`, the HMAC-SHA256 of a fixed label keyed by the session's token
(a synchronizer token derived from the session, so no server state: any worker checks it).
Another site can neither read the cookie nor compute the HMAC without it. A POST is refused
unless its `csrf` matches (compared in constant time) and, when the browser sends `Origin`, the
origin is this server's. SameSite alone is not relied on (older browsers ignore it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from aiohttp import web

COOKIE = "claimstream_console"
PATH = "/console"
#: a sign-in lasts a working day at most
MAX_AGE = 8 * 3600
_LABEL = b"claimstream console csrf v1"


def csrf_token(session_token: str) -> str:
    """The CSRF token of the session whose bearer token is `session_token`."""
    mac = hmac.new(session_token.encode(), _LABEL, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def csrf_ok(session_token: str, given: object) -> bool:
    """Whether a form's `csrf` field belongs to this session."""
    if not isinstance(given, str) or not given:
        return False
    return hmac.compare_digest(csrf_token(session_token).encode(), given.encode())


def same_origin(headers: Mapping[str, str], scheme: str, host: str | None) -> bool:
    """False when the browser says the request comes from another origin (`Origin`); a
    request without `Origin` (an older browser) is judged by its CSRF token alone."""
    origin = headers.get("Origin")
    if origin is None:
        return True
    return host is not None and origin == f"{scheme}://{host}"


def signed_in(response: web.StreamResponse, token: str, *, secure: bool) -> None:
    response.set_cookie(
        COOKIE,
        token,
        path=PATH,
        max_age=MAX_AGE,
        httponly=True,
        samesite="Strict",
        secure=secure,
    )


def signed_out(response: web.StreamResponse, *, secure: bool) -> None:
    response.set_cookie(
        COOKIE, "", path=PATH, max_age=0, httponly=True, samesite="Strict", secure=secure
    )
