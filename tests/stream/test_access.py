"""Who may call what (`claimstream.stream.http.access`), on the real worker app's web server
(no broker: nothing is started but its aiohttp application, with faust's own views applied as
the running worker applies them), walking the routes of the OpenAPI document; and the token
file itself."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from claimstream.freezes.memory import MemoryRegistry
from claimstream.model.config import ConfigError
from claimstream.stream.app import create_app
from claimstream.stream.http.access import (
    POLICY,
    ROLES,
    Access,
    Denied,
    grants,
    new_token,
    parse_tokens,
    required_role,
    token_line,
)
from claimstream.stream.http.api import Caller, openapi_document
from claimstream.stream.settings import Settings
from claimstream.stream.watched import WatchedFile

TOKENS = {role: new_token() for role in ROLES}  # one token per role, named after it
INLINE = ";".join(token_line(role, role, token) for role, token in TOKENS.items())
SECRET_ID = "P-330102199001011234"
VALUES = {
    "kind": "patient",
    "id": SECRET_ID,
    "alert_id": "alt-1",
    "check_id": "chk-1",
    "case_id": "case-1",
    "report_id": "rpt-1",
}
OPEN = {path for path, role in POLICY.items() if role is None}


def bearer(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[role]}"}


@pytest.fixture
async def worker() -> AsyncIterator[TestClient[Any, Any]]:
    """The real worker app's web server, faust's built-in views applied."""
    app = create_app(
        Settings(
            sanctions_enabled=False, audit_enabled=False, control_enabled=False, api_tokens=INLINE
        ),
        registry=MemoryRegistry(),
        sinks=[],
    )
    web_app = app.web.web_app  # type: ignore[attr-defined]

    async def unlisted(request: web.Request) -> web.Response:
        return web.json_response({"patient": SECRET_ID})

    web_app.router.add_get("/debug/{id}", unlisted)  # registered, in no policy
    app.web.blueprints.apply(app.web)  # type: ignore[attr-defined]
    client: TestClient[Any, Any] = TestClient(TestServer(web_app))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


def operations() -> list[tuple[str, str, str]]:
    """(method, path with ids filled in, path pattern) of every documented operation."""
    found = []
    for pattern, ops in openapi_document()["paths"].items():
        path = pattern.format(**VALUES)
        found += [(method.upper(), path, pattern) for method in ops]
    return found


async def call(
    client: TestClient[Any, Any], method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, str, Any]:
    body = b"[]" if method == "POST" else None  # a body no write accepts: 400 once let in
    async with client.request(method, path, headers=headers or {}, data=body) as response:
        return response.status, await response.text(), response.headers


@pytest.mark.parametrize(("method", "path", "pattern"), operations())
async def test_no_route_that_needs_a_role_answers_without_a_token(
    worker: TestClient[Any, Any], method: str, path: str, pattern: str
) -> None:
    status, text, headers = await call(worker, method, path)
    if pattern in OPEN:
        assert status not in (401, 403), pattern
        assert SECRET_ID not in text
        return
    assert status == 401, pattern
    assert headers["WWW-Authenticate"] == 'Bearer realm="claimstream"'
    assert SECRET_ID not in text


@pytest.mark.parametrize(("method", "path", "pattern"), operations())
@pytest.mark.parametrize("role", ROLES)
async def test_each_role_is_let_in_exactly_where_the_policy_grants_it(
    worker: TestClient[Any, Any], method: str, path: str, pattern: str, role: str
) -> None:
    needed = required_role(pattern, method)
    status, text, headers = await call(worker, method, path, bearer(role))
    if needed is None or grants(frozenset({role}), needed):
        assert status not in (401, 403), (role, pattern, text)
        return
    assert status == 403, (role, pattern)
    assert headers["WWW-Authenticate"] == (
        f'Bearer realm="claimstream", error="insufficient_scope", scope="{needed}"'
    )
    assert f"needs {needed}" in text and SECRET_ID not in text


async def test_a_token_that_is_not_valid_is_401_invalid_token(
    worker: TestClient[Any, Any],
) -> None:
    status, _, headers = await call(
        worker, "GET", f"/freezes/patient/{SECRET_ID}", {"Authorization": "Bearer cs_nope"}
    )
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Bearer realm="claimstream", error="invalid_token"'


@pytest.mark.parametrize(
    "path", ["/table/", "/table/alert-index/alt-1/", "/graph/", "/stats/", "/assignment/", "/"]
)
async def test_fausts_own_views_are_not_served(worker: TestClient[Any, Any], path: str) -> None:
    status, text, _ = await call(worker, "GET", path, bearer("admin"))
    assert status == 404, text


async def test_a_registered_route_in_no_policy_answers_404(worker: TestClient[Any, Any]) -> None:
    status, text, _ = await call(worker, "GET", f"/debug/{SECRET_ID}", bearer("admin"))
    assert status == 404
    assert "no such route" in text and "patient" not in text


@pytest.mark.parametrize(("role", "expected"), [(None, 401), ("reviewer", 403), ("admin", 200)])
async def test_fausts_router_view_is_for_admins(
    worker: TestClient[Any, Any], role: str | None, expected: int
) -> None:
    status, _, _ = await call(worker, "GET", "/router/", bearer(role) if role else None)
    assert status == expected


async def test_refusals_are_logged_without_the_token_or_the_path(
    worker: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="claimstream.stream.http.access"):
        await call(worker, "GET", f"/subjects/patient/{SECRET_ID}", bearer("settlement"))
        await call(worker, "GET", f"/subjects/patient/{SECRET_ID}", {"Authorization": "Bearer x1"})
    lines = [r.getMessage() for r in caplog.records if r.name == "claimstream.stream.http.access"]
    assert len(lines) == 2
    assert "(403) GET /subjects/{kind}/{id}" in lines[0] and "by settlement" in lines[0]
    assert "(401) GET /subjects/{kind}/{id}" in lines[1]
    for line in lines:
        assert SECRET_ID not in line and TOKENS["settlement"] not in line and "x1" not in line


# -- roles and tokens -------------------------------------------------------------------------


def test_each_role_grants_the_ones_before_it_and_no_other() -> None:
    assert grants(frozenset({"reviewer"}), "supervisor")
    assert grants(frozenset({"supervisor"}), "settlement")
    assert not grants(frozenset({"supervisor"}), "reviewer")
    assert not grants(frozenset({"settlement"}), "supervisor")
    assert all(grants(frozenset({"admin"}), role) for role in ROLES)


def test_a_stored_line_holds_the_tokens_hash_never_the_token() -> None:
    token = new_token()
    line = token_line("li.na", "reviewer", token)
    assert token not in line and line.startswith("li.na reviewer sha256:")
    tokens = parse_tokens(line.encode(), "tokens")
    found = tokens.find(token)
    assert found is not None and (found.name, found.roles) == ("li.na", frozenset({"reviewer"}))
    assert tokens.find(token + "x") is None


def test_the_documented_shell_one_liner_makes_a_line_the_parser_reads() -> None:
    import hashlib

    token = "cs_made-by-openssl"  # what `openssl rand -base64 32 | tr ...` prints
    hexdigest = hashlib.sha256(token.encode()).hexdigest()  # `printf %s "$t" | sha256sum`
    tokens = parse_tokens(f"ops settlement,admin sha256:{hexdigest}\n".encode(), "tokens")
    found = tokens.find(token)
    assert found is not None and found.roles == frozenset({"settlement", "admin"})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("li.na reviewer", "line 1: expected `NAME ROLES sha256:HEX`"),
        ("li.na judge sha256:" + "0" * 64, "unknown role 'judge'"),
        ("li.na reviewer s3cret", "the third field must be sha256:"),
        ("li/na reviewer sha256:" + "0" * 64, "is not a token name"),
        (f"a reviewer sha256:{'0' * 64}\na admin sha256:{'1' * 64}", "line 2: the name a"),
        (f"a reviewer sha256:{'0' * 64}\nb admin sha256:{'0' * 64}", "line 2: the same token"),
    ],
)
def test_a_token_file_that_cannot_be_used_names_the_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_tokens(text.encode(), "tokens.txt")
    assert message in str(caught.value)
    assert "s3cret" not in str(caught.value)


def file_access(path: Path) -> Access:
    return Access(WatchedFile(str(path), parse_tokens, "CLAIMSTREAM_API_TOKENS_FILE"))


def rewrite(path: Path, text: str) -> None:
    """Replace the file as an operator's editor or `mv` does (a new inode)."""
    fresh = path.with_suffix(".new")
    fresh.write_text(text)
    os.replace(fresh, path)


def test_a_changed_token_file_applies_to_the_next_call_without_a_restart(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tokens"
    old, new = new_token(), new_token()
    path.write_text(token_line("li.na", "reviewer", old) + "\n")
    access = file_access(path)
    assert isinstance(access.authenticate(f"Bearer {old}", "reviewer"), Caller)
    rewrite(path, token_line("li.na", "reviewer", new) + "\n")
    refused = access.authenticate(f"Bearer {old}", "reviewer")
    assert isinstance(refused, Denied) and refused.status == 401
    assert isinstance(access.authenticate(f"Bearer {new}", "reviewer"), Caller)


def test_a_token_file_broken_while_running_refuses_every_call_until_fixed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tokens"
    token = new_token()
    line = token_line("li.na", "reviewer", token) + "\n"
    path.write_text(line)
    access = file_access(path)
    rewrite(path, line + "oops\n")
    with caplog.at_level(logging.ERROR, logger="claimstream.stream.watched"):
        refused = access.authenticate(f"Bearer {token}", "reviewer")
    assert isinstance(refused, Denied) and refused.status == 503
    assert "line 2" in caplog.text and token not in caplog.text
    rewrite(path, line)
    assert isinstance(access.authenticate(f"Bearer {token}", "reviewer"), Caller)


def test_a_token_file_that_cannot_be_used_stops_the_worker_at_start(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text("li.na reviewer plain-token\n")
    with pytest.raises(ConfigError) as caught:
        create_app(Settings(api_tokens_file=str(path)), registry=MemoryRegistry(), sinks=[])
    assert "CLAIMSTREAM_API_TOKENS_FILE" in str(caught.value) and "line 1" in str(caught.value)
    assert "plain-token" not in str(caught.value)


def test_the_deprecated_single_token_is_a_reviewer_that_names_itself(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="claimstream.stream.http.access"):
        access = Access.configure(tokens_file=None, tokens=None, legacy="old-token")
    assert "CLAIMSTREAM_API_TOKEN is deprecated" in caplog.text and "old-token" not in caplog.text
    caller = access.authenticate("Bearer old-token", "reviewer")
    assert caller == Caller("CLAIMSTREAM_API_TOKEN", frozenset({"reviewer"}), legacy=True)
    refused = access.authenticate("Bearer old-token", "admin")
    assert isinstance(refused, Denied) and refused.status == 403
