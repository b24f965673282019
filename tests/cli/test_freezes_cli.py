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
