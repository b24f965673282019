"""Every command that talks to a service says, against one that does not answer, in one line,
which address it tried and what to do, and exits 3."""

from __future__ import annotations

from pathlib import Path

import pytest

from claimstream.cli.main import main
from tests.cli.support import closed_port, simulated, write_lines

BROKER_COMMANDS = [
    ["topics", "apply"],
    ["topics", "apply", "--check"],
    ["rules", "list"],
    ["rules", "set", "readmission_24h", "max_gap_hours=48"],
    ["alerts", "list"],
    ["alerts", "show", "alt-0"],
    ["alerts", "review", "alt-0", "--verdict", "confirmed", "--by", "li.na"],
    ["alerts", "review", "alt-0", "--verdict", "confirmed", "--by", "li.na", "--no-check"],
    ["unfreeze", "institution:H1", "--reason", "appeal upheld", "--by", "li.na"],
    ["produce", "EVENTS"],
    ["audit", "verify", "--topic", "claimstream.audit.v1"],
]


@pytest.mark.parametrize("argv", BROKER_COMMANDS, ids=" ".join)
def test_a_closed_broker_address_is_one_line_and_exit_3(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    where = closed_port()
    events = str(write_lines(tmp_path / "events.jsonl", simulated(3)))
    argv = [events if a == "EVENTS" else a for a in argv]
    assert main([*argv, "--bootstrap", where]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    name = " ".join(a for a in argv[:2] if not a.startswith(("alt-", "institution:", "/")))
    assert err.startswith(f"claimstream {name}: cannot reach the broker at {where} ")
    assert "connection refused; address from --bootstrap" in err
    assert "`claimstream broker` starts a local one" in err


def test_the_broker_address_from_the_environment_is_named_as_such(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    where = closed_port()
    monkeypatch.setenv("CLAIMSTREAM_BROKER_URL", f"kafka://{where}")
    assert main(["topics", "apply"]) == 3
    assert f"at {where} (connection refused; address from $CLAIMSTREAM_BROKER_URL)" in (
        capsys.readouterr().err
    )


def test_the_worker_against_a_closed_broker(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    where = closed_port()
    monkeypatch.setenv("CLAIMSTREAM_BROKER_URL", where)
    monkeypatch.setenv("CLAIMSTREAM_AUDIT_UNKEYED", "true")
    assert main(["worker"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"claimstream worker: cannot reach the broker at {where} ")


def test_freezes_rebuild_against_a_closed_broker(capsys: pytest.CaptureFixture[str]) -> None:
    where = closed_port()
    argv = ["freezes", "rebuild", "--bootstrap", where, "--redis-url", "redis://127.0.0.1:1"]
    assert main(argv) == 3
    assert f"claimstream freezes rebuild: cannot reach the broker at {where}" in (
        capsys.readouterr().err
    )


def test_a_closed_redis_is_one_line_without_its_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    host = closed_port()
    url = f"redis://:s3cret@{host}/0"
    assert main(["freezes", "--redis-url", url, "--kind", "patient", "--id", "P1"]) == 3
    err = capsys.readouterr().err
    assert err == (
        f"claimstream freezes: cannot reach Redis at redis://:***@{host}/0 (connection "
        "refused): is redis-server running? --redis-url or CLAIMSTREAM_REDIS_URL names another\n"
    )


def test_a_closed_worker_api_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CLAIMSTREAM_REDIS_URL", raising=False)
    url = f"http://{closed_port()}"
    assert main(["freezes", "--worker", url]) == 3
    err = capsys.readouterr().err
    assert err.startswith(f"claimstream freezes: the worker at {url} did not answer (")
    assert "Connection refused" in err
    assert err.endswith(
        "is `claimstream worker` running? --worker or CLAIMSTREAM_WEB_PORT names another\n"
    )
    assert len(err.splitlines()) == 1
