"""The console's session: the token in a cookie, and the CSRF token derived from it.

The cookie holds the person's bearer token itself (what they pasted at sign-in); every request
checks it again against the worker's tokens (`Access.authenticate`), so a token removed from
the token file signs its holder out at the next click. It is `HttpOnly` (no script reads it),
`SameSite=Strict` (no other site's page sends it), `Secure` when the console is served over TLS
(directly or behind a proxy sending `X-Forwarded-Proto: https`),
scoped to `/console` (the API never sees it) and lasts at most `MAX_AGE` seconds.

CSRF: every form carries `csrf`, the HMAC-SHA256 of a fixed label keyed by the session's token
(a synchronizer token derived from the session, so no server state: any worker checks it).
Another site can neither read the cookie nor compute the HMAC without it. A POST is refused
unless its `csrf` matches (compared in constant time) and, when the browser sends `Origin`, it
names the host the request was sent to. SameSite alone is not relied on (older browsers ignore it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

from aiohttp import web
from yarl import URL

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


def same_origin(headers: Mapping[str, str], host: str | None) -> bool:
    """False when the browser says the request comes from another site: its `Origin` names
    another host than the one it asked (`Host`, or `X-Forwarded-Host` behind a proxy). A
    request without `Origin` (an older browser) is judged by its CSRF token alone. The scheme
    is not compared: behind a TLS proxy the page is https and the worker sees http."""
    origin = headers.get("Origin")
    if origin is None:
        return True
    netloc = URL(origin).raw_authority if origin.startswith(("http://", "https://")) else None
    if not netloc:
        return False  # "null" (a sandboxed frame, a redirect across sites) or garbage
    asked = {h for h in (host, headers.get("X-Forwarded-Host")) if h}
    return netloc in asked


def over_tls(secure: bool, headers: Mapping[str, str]) -> bool:
    """Whether the browser reached the console over TLS: directly, or through a proxy saying
    so (`X-Forwarded-Proto: https`; believing it only ever makes the cookie stricter)."""
    return secure or headers.get("X-Forwarded-Proto", "").lower() == "https"


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
