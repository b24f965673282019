"""Who may call what on the worker's web server: bearer tokens, roles, and the route policy.

Roles, each granting everything the ones before it grant (`ROLES`):

* `settlement`: freeze look-ups (`GET /freezes`, `GET /freezes/{kind}/{id}`), the
  pre-settlement check and the clinician's answer to it (`POST /v1/check`,
  `POST /v1/check/{check_id}/feedback`), what a settlement system asks before it pays;
* `supervisor`: reads of the sanctions state, which hold ids and histories (`GET /subjects/...`,
  `GET /institutions/{id}`, `GET /alerts/{alert_id}`);
* `supervisor` also reads the cases (`GET /v1/cases`, `GET /v1/cases/{case_id}`);
* `reviewer`: people's actions (`POST /alerts/{alert_id}/review`, `POST /unfreeze`, the case
  actions `POST /v1/cases/open` and `POST /v1/cases/{case_id}/{advance,assign,decide,recover}`);
* `admin`: everything, and faust's `/router` views (which worker holds which partitions).

two roles for reports from the public (docs/cases.md), outside the ladder:

* `intake`: the hotline's or the web form's front desk: files a report (`POST /v1/reports`) and
  nothing else (a `reviewer` may file one too);
* `reports:contact`: sees a reporter's name and contact in `GET /v1/reports/{report_id}`;
  granted by no other role, `admin` included (whistleblowers' identities are seen only by
  those named for it);

and one role outside that ladder: `institution:ID` (e.g. `institution:H001`), an institution's
own token, which grants only the routes of `INSTITUTION_SCOPED` and only for its own id (the
benchmark it is shown, `GET /v1/institutions/{id}/benchmark`); H002's token asking for H001 is
403, like a token without the role.

`POLICY` names the role of every route pattern the worker serves (`METHOD_POLICY` the role of
a method of a pattern whose methods differ: `POST /v1/reports`) (the console's pages under
`/console/` check their sign-in cookie themselves, against the same tokens and roles);
`/health`, `/ready`,
`/metrics`, `/status` and `/openapi.json` are open (they hold no id). A route that is in no
policy answers 404 whatever registered it: faust's built-in views are switched off in the app's
configuration, and this is the second lock, should a faust upgrade add one.

Tokens are opaque random strings (`new_token`), stored only as their SHA-256 in lines
`NAME ROLES sha256:HEX` (`ROLES` comma-separated; `#` comments), from the file
`CLAIMSTREAM_API_TOKENS_FILE` (re-read when it changes, `claimstream.stream.watched`) or the
variable `CLAIMSTREAM_API_TOKENS` (lines separated by `;`). A presented token is hashed and
compared with every stored hash in constant time. `CLAIMSTREAM_API_TOKEN`, the one write token
of earlier versions, still works as a caller named `CLAIMSTREAM_API_TOKEN` with the `reviewer`
role, with a deprecation warning at start; its actions take `by` from the request body, as
before (a named token's actions are made in its name).

Answers: 401 with `WWW-Authenticate: Bearer realm="claimstream"` (and `error="invalid_token"`)
without a token or with one that is not valid; 403 with `error="insufficient_scope"` and the
role needed when the token is valid but lacks the role; 503 while the token file cannot be used
(fail closed). Refusals are logged at WARNING with the route's pattern, the peer and, for a 403,
the caller's name; never the token, never the path (it may hold an id).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from aiohttp import web

from claimstream.model.config import ConfigError
from claimstream.stream.http.api import Caller
from claimstream.stream.http.routes import CALLER, json_response, route_of
from claimstream.stream.watched import WatchedFile

log = logging.getLogger(__name__)

ROLES = ("settlement", "supervisor", "reviewer", "admin")
#: reports from the public: who files them (front desk), and who sees a reporter's contact
INTAKE, CONTACT = "intake", "reports:contact"
SIDE_ROLES = (INTAKE, CONTACT)
TOKENS_FILE_VARIABLE = "CLAIMSTREAM_API_TOKENS_FILE"
TOKENS_VARIABLE = "CLAIMSTREAM_API_TOKENS"
LEGACY_VARIABLE = "CLAIMSTREAM_API_TOKEN"
LEGACY_ROLE = "reviewer"
REALM = 'Bearer realm="claimstream"'

#: route pattern -> the role it needs (None: open to anyone)
POLICY: Mapping[str, str | None] = {
    "/health": None,
    "/ready": None,
    "/metrics": None,
    "/status": None,
    "/openapi.json": None,
    "/freezes": "settlement",
    "/freezes/{kind}/{id}": "settlement",
    "/v1/check": "settlement",
    "/v1/check/{check_id}/feedback": "settlement",
    "/subjects/{kind}/{id}": "supervisor",
    "/subjects/{kind}/{id}/alerts": "supervisor",
    "/institutions/{id}": "supervisor",
    "/alerts/{alert_id}": "supervisor",
    "/alerts/{alert_id}/review": "reviewer",
    "/unfreeze": "reviewer",
    "/v1/institutions/{id}/benchmark": "supervisor",
    # casework (docs/cases.md): reads for supervisors, every case action for reviewers
    "/v1/cases": "supervisor",
    "/v1/cases/{case_id}": "supervisor",
    "/v1/cases/open": "reviewer",
    "/v1/cases/{case_id}/advance": "reviewer",
    "/v1/cases/{case_id}/assign": "reviewer",
    "/v1/cases/{case_id}/decide": "reviewer",
    "/v1/cases/{case_id}/recover": "reviewer",
    # reports from the public (docs/cases.md): filed by the front desk (METHOD_POLICY), read by
    # supervisors (the reporter's identity only with reports:contact), acted on by reviewers
    "/v1/reports": "supervisor",
    "/v1/reports/{report_id}": "supervisor",
    "/v1/reports/{report_id}/acknowledge": "reviewer",
    "/v1/reports/{report_id}/accept": "reviewer",
    "/v1/reports/{report_id}/reject": "reviewer",
    "/v1/reports/{report_id}/feedback": "reviewer",
    "/v1/reports/{report_id}/reward": "reviewer",
}
#: (method, route pattern) -> its role, where a pattern's methods need different roles
METHOD_POLICY: Mapping[tuple[str, str], str] = {("POST", "/v1/reports"): INTAKE}
#: route pattern -> the path parameter naming the institution whose own `institution:ID`
#: token may also call it (besides the role of `POLICY`)
INSTITUTION_SCOPED: Mapping[str, str] = {"/v1/institutions/{id}/benchmark": "id"}
INSTITUTION_ROLE = "institution"
#: faust's routing views (`/router/...`): the cluster's layout, for operators
ADMIN_PREFIXES = ("/router/",)
#: the supervisors' web console (`claimstream.stream.http.console`): its pages check their own
#: sign-in cookie against these same tokens and roles (a page: supervisor; an action: reviewer)
CONSOLE_PREFIX = "/console"
_NAME = re.compile(r"^[A-Za-z0-9._@+-]{1,128}$")
_DIGEST = re.compile(r"^sha256:([0-9a-f]{64})$")
_INSTITUTION = re.compile(r"^institution:[A-Za-z0-9._-]{1,64}$")


def required_role(pattern: str, method: str = "GET") -> str | None:
    """The role `method` on `pattern` needs (None: open); `KeyError` when no policy serves it."""
    if (method, pattern) in METHOD_POLICY:
        return METHOD_POLICY[method, pattern]
    if pattern in POLICY:
        return POLICY[pattern]
    if pattern.startswith(ADMIN_PREFIXES):
        return "admin"
    if pattern == CONSOLE_PREFIX or pattern.startswith(CONSOLE_PREFIX + "/"):
        return None
    raise KeyError(pattern)


def grants(roles: frozenset[str], needed: str) -> bool:
    """Whether holding `roles` grants `needed` (each role grants the ones before it; an
    institution's role grants none of them; `intake` is granted by itself or `reviewer` and
    above, `reports:contact` by itself only)."""
    if needed == CONTACT:
        return CONTACT in roles
    if needed == INTAKE:
        return INTAKE in roles or grants(roles, "reviewer")
    rank = ROLES.index(needed)
    return any(ROLES.index(role) >= rank for role in roles if role in ROLES)


def institution_role(institution_id: str) -> str:
    """The role of an institution's own token (`institution:H001`)."""
    return f"{INSTITUTION_ROLE}:{institution_id}"


def is_role(text: str) -> bool:
    """One of `ROLES` or `SIDE_ROLES`, or an institution's role `institution:ID`."""
    return text in ROLES or text in SIDE_ROLES or _INSTITUTION.match(text) is not None


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    """A fresh token: 32 random bytes, URL-safe base64, prefixed `cs_` (easy to grep for)."""
    return "cs_" + secrets.token_urlsafe(32)


def token_line(name: str, roles: str, token: str) -> str:
    """The stored line of `token` (what goes in the token file: its hash, never the token)."""
    return f"{name} {roles} sha256:{digest(token).hex()}"


@dataclass(frozen=True, slots=True)
class StoredToken:
    name: str
    roles: frozenset[str]
    sha256: bytes


@dataclass(frozen=True, slots=True)
class Tokens:
    """Stored tokens; `find` compares a presented token with each in constant time."""

    stored: tuple[StoredToken, ...]

    def find(self, token: str) -> StoredToken | None:
        given = digest(token)
        found = None
        for entry in self.stored:  # every entry, no early exit
            if hmac.compare_digest(given, entry.sha256):
                found = entry
        return found


def parse_tokens(data: bytes, where: str, separator: str = "\n") -> Tokens:
    """Token lines (`NAME ROLES sha256:HEX`); `ConfigError` names the line, never its hash."""
    stored: list[StoredToken] = []
    for number, line in enumerate(data.decode("utf-8", "replace").split(separator), start=1):
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        parts = item.split()
        if len(parts) != 3:
            raise ConfigError(f"{where}: line {number}: expected `NAME ROLES sha256:HEX`")
        name, roles_text, hashed = parts
        if not _NAME.match(name):
            raise ConfigError(f"{where}: line {number}: {name!r} is not a token name")
        roles = frozenset(roles_text.split(","))
        unknown = sorted(role for role in roles if not is_role(role))
        if unknown:
            raise ConfigError(
                f"{where}: line {number}: unknown role {unknown[0]!r} (roles: "
                f"{', '.join((*ROLES, *SIDE_ROLES))}, or institution:ID)"
            )
        match = _DIGEST.match(hashed)
        if match is None:
            raise ConfigError(
                f"{where}: line {number}: the third field must be sha256: and 64 hex digits "
                "(the token's hash, never the token itself)"
            )
        entry = StoredToken(name, roles, bytes.fromhex(match.group(1)))
        if any(e.name == name for e in stored):
            raise ConfigError(f"{where}: line {number}: the name {name} is used twice")
        if any(e.sha256 == entry.sha256 for e in stored):
            raise ConfigError(f"{where}: line {number}: the same token is listed twice")
        stored.append(entry)
    return Tokens(tuple(stored))


@dataclass(frozen=True, slots=True)
class Denied:
    """A refusal: status, the error, and headers."""

    status: int
    error: str
    headers: Mapping[str, str]
    #: the caller's name, when the token was valid (a 403)
    caller: str | None = None


class Access:
    """Authenticates bearer tokens against the configured ones."""

    def __init__(
        self,
        file: WatchedFile[Tokens] | None = None,
        inline: Tokens | None = None,
        legacy: str | None = None,
    ) -> None:
        self.file = file
        self.inline = inline
        self.legacy = legacy

    @classmethod
    def configure(
        cls, *, tokens_file: str | None, tokens: str | None, legacy: str | None
    ) -> Access:
        """From the settings; `ConfigError` when a source cannot be used."""
        if tokens_file and tokens:
            raise ConfigError(f"set {TOKENS_FILE_VARIABLE} or {TOKENS_VARIABLE}, not both")
        file = WatchedFile(tokens_file, parse_tokens, TOKENS_FILE_VARIABLE) if tokens_file else None
        inline = parse_tokens(tokens.encode(), TOKENS_VARIABLE, separator=";") if tokens else None
        if legacy:
            log.warning(
                "%s is deprecated: it is one shared token (the role %s, actions in the name "
                "the request body gives); give each caller its own token in %s (docs/security.md)",
                LEGACY_VARIABLE,
                LEGACY_ROLE,
                TOKENS_FILE_VARIABLE,
            )
        access = cls(file, inline, legacy)
        if not access.configured:
            log.warning(
                "no API token configured (%s, %s): every API call but /health, /ready, "
                "/metrics, /status and /openapi.json is refused",
                TOKENS_FILE_VARIABLE,
                TOKENS_VARIABLE,
            )
        return access

    @property
    def configured(self) -> bool:
        return bool(self.file or self.inline or self.legacy)

    def authenticate(
        self, header: str | None, needed: str, institution: str | None = None
    ) -> Caller | Denied:
        """The caller of a request with `Authorization: header` holding role `needed`, or
        (`institution` given: a route of `INSTITUTION_SCOPED`) that institution's own role."""
        if not self.configured:
            return Denied(
                401,
                f"no API token is configured on this worker ({TOKENS_FILE_VARIABLE}, "
                f"{TOKENS_VARIABLE} and {LEGACY_VARIABLE} are unset): calls that need a role "
                "are refused",
                {"WWW-Authenticate": REALM},
            )
        scheme, _, given = (header or "").strip().partition(" ")
        token = given.strip()
        if scheme.lower() != "bearer" or not token:
            return Denied(
                401,
                "this call needs Authorization: Bearer <token>",
                {"WWW-Authenticate": REALM},
            )
        try:
            caller = self._find(token)
        except ConfigError:
            return Denied(
                503,
                f"the worker's token file ({TOKENS_FILE_VARIABLE}) cannot be used, so every "
                "call that needs a role is refused until it is fixed (the worker's log says why)",
                {"Retry-After": "30"},
            )
        if caller is None:
            return Denied(
                401,
                "the bearer token is not valid",
                {"WWW-Authenticate": f'{REALM}, error="invalid_token"'},
            )
        own = institution is not None and institution_role(institution) in caller.roles
        if not grants(caller.roles, needed) and not own:
            if any(role.startswith(f"{INSTITUTION_ROLE}:") for role in caller.roles):
                # an institution's token (its role names an id, which a log line must not)
                return Denied(
                    403,
                    f"the token of {caller.name} may read its own institution's figures only; "
                    f"this call needs {needed}"
                    + (", or the institution's own token" if institution is not None else ""),
                    {"WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{needed}"'},
                    caller.name,
                )
            held = ", ".join(sorted(caller.roles))
            return Denied(
                403,
                f"the token of {caller.name} has the role {held}; this call needs {needed}",
                {"WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{needed}"'},
                caller.name,
            )
        return caller

    def _find(self, token: str) -> Caller | None:
        found: Caller | None = None
        for tokens in (self.file.current() if self.file else None, self.inline):
            entry = tokens.find(token) if tokens is not None else None
            if entry is not None and found is None:
                found = Caller(entry.name, entry.roles)
        if self.legacy is not None:
            legacy = hmac.compare_digest(digest(token), digest(self.legacy))
            if legacy and found is None:
                found = Caller(LEGACY_VARIABLE, frozenset({LEGACY_ROLE}), legacy=True)
        return found


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def access_control(
    access: Access,
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """The middleware: every request to a route passes `POLICY` (after `json_errors`, which
    turns the 404 of a route no policy serves into JSON)."""

    @web.middleware
    async def check(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.http_exception is not None:
            return await handler(request)  # no route matched: the 404 / 405 as usual
        pattern = route_of(request)
        try:
            needed = required_role(pattern, request.method)
        except KeyError:
            raise web.HTTPNotFound() from None
        if needed is None:
            return await handler(request)
        scoped = INSTITUTION_SCOPED.get(pattern)
        institution = request.match_info.get(scoped) if scoped is not None else None
        answer = access.authenticate(request.headers.get("Authorization"), needed, institution)
        if isinstance(answer, Denied):
            log.warning(
                "API call refused (%d) %s %s from %s%s: %s",
                answer.status,
                request.method,
                pattern,
                request.remote,
                f" by {answer.caller}" if answer.caller else "",
                answer.error,
            )
            return json_response(answer.status, {"error": answer.error}, answer.headers)
        request[CALLER] = answer
        return await handler(request)

    return check
