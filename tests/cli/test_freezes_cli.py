"""`claimstream freezes` arguments (the rebuild: tests/integration/test_freezes_rebuild.py)."""

from __future__ import annotations

import pytest

from claimstream.cli.main import build_parser, main


def test_rebuild_without_redis_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLAIMSTREAM_REDIS_URL", raising=False)
    assert main(["freezes", "rebuild", "--bootstrap", "127.0.0.1:1"]) == 2
    assert "no Redis: give --redis-url" in capsys.readouterr().err


def test_rebuild_with_a_bad_bootstrap_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["freezes", "rebuild", "--bootstrap", "http://x", "--redis-url", "redis://127.0.0.1:1"]
    assert main(argv) == 2
    assert "kafka://" in capsys.readouterr().err


def test_the_lookup_form_still_parses_without_an_action() -> None:
    args = build_parser().parse_args(["freezes", "--kind", "patient", "--id", "P1"])
    assert args.freezes_action is None and args.subject_id == "P1"
    args = build_parser().parse_args(["freezes", "rebuild", "--dry-run", "--prefix", "x"])
    assert args.freezes_action == "rebuild" and args.dry_run and args.rebuild_prefix == "x"


def test_rebuild_help_names_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["freezes", "rebuild", "--help"])
    out = capsys.readouterr().out
    for option in ("--bootstrap", "--redis-url", "--prefix", "--dry-run", "--json"):
        assert option in out


async def test_asking_a_worker_presents_the_client_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`claimstream freezes --worker` against the real worker app's web server, which needs the
    settlement role: refused without CLAIMSTREAM_CLIENT_TOKEN, answered with it."""
    import asyncio
    from typing import Any

    from aiohttp.test_utils import TestServer

    from claimstream.freezes.memory import MemoryRegistry
    from claimstream.stream.app import create_app
    from claimstream.stream.http.access import new_token, token_line
    from claimstream.stream.settings import Settings

    token = new_token()
    settings = Settings(
        sanctions_enabled=False,
        audit_enabled=False,
        control_enabled=False,
        api_tokens=token_line("his", "settlement", token),
    )
    app = create_app(settings, registry=MemoryRegistry(), sinks=[])
    server = TestServer(app.web.web_app, host="127.0.0.1")  # type: ignore[attr-defined]
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        argv: Any = ["freezes", "--worker", url, "--json"]
        assert await asyncio.to_thread(main, argv) == 2
        assert "HTTP 401" in capsys.readouterr().err
        monkeypatch.setenv("CLAIMSTREAM_CLIENT_TOKEN", token)
        assert await asyncio.to_thread(main, argv) == 0
        assert '"freezes"' in capsys.readouterr().out
    finally:
        await server.close()


def test_a_lookup_asks_the_worker_again_while_it_is_unavailable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.client.scripted import scripted

    monkeypatch.delenv("CLAIMSTREAM_REDIS_URL", raising=False)
    busy = (503, {"error": "the registry's Redis is down"}, {"Retry-After": "0"})
    frozen = (200, {"frozen": True, "freezes": []}, {})
    with scripted(busy, frozen) as worker:
        argv = ["freezes", "--kind", "doctor", "--id", "D 1", "--drug-code", "X01"]
        assert main([*argv, "--worker", worker.url, "--retries", "1"]) == 0
    assert [seen.path for seen in worker.seen] == ["/freezes/doctor/D%201?drug_code=X01"] * 2
    assert capsys.readouterr().out == "doctor D 1 for drug X01: FROZEN\n"
