"""`claimstream broker` as a newcomer uses it: the export block makes the next commands work
as written, `--detach` returns once it is ready, Ctrl-C is exit 130 and leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from claimstream.devtools.subproc import free_port, port_in_use, terminate_group
from claimstream.kafka.topology import load_topology
from tests.cli.support import claimstream, cli_env

pytestmark = pytest.mark.integration


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def children(pid: int) -> list[int]:
    """Every process whose parent is `pid` (Tansu, under the broker command)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def exports(text: str) -> dict[str, str]:
    return dict(
        line.removeprefix("export ").split("=", 1)
        for line in text.splitlines()
        if line.startswith("export ")
    )


@pytest.fixture
def detached(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """`claimstream broker --detach --port P > broker.env`, killed at the end whatever happens."""
    env_file = tmp_path / "broker.env"
    port = free_port()
    with env_file.open("wb") as out:
        result = subprocess.run(
            [sys.executable, "-m", "claimstream", "broker", "--detach", "--port", str(port)],
            stdout=out,
            stderr=subprocess.PIPE,
            env=cli_env(),
            timeout=120,
            check=False,
        )
    variables = exports(env_file.read_text())
    pid = int(variables.get("CLAIMSTREAM_BROKER_PID", "0"))
    try:
        assert result.returncode == 0, result.stderr.decode()
        yield env_file, variables
    finally:
        if pid and alive(pid):
            os.kill(pid, signal.SIGTERM)
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_detach_writes_a_block_that_makes_the_next_command_work_as_written(
    detached: tuple[Path, dict[str, str]],
) -> None:
    env_file, variables = detached
    assert variables["CLAIMSTREAM_BROKER_URL"].startswith("kafka://127.0.0.1:")
    assert variables["CLAIMSTREAM_BROKER_FLAVOR"] == "tansu"
    check = subprocess.run(
        ["bash", "-c", f". {env_file} && {sys.executable} -m claimstream topics apply --check"],
        capture_output=True,
        env=cli_env(),
        timeout=120,
        check=False,
    )
    assert check.returncode == 0, check.stderr.decode()
    assert b"declared topics on 127.0.0.1:" in check.stdout


def test_killing_the_exported_pid_stops_the_broker_and_tansu(
    detached: tuple[Path, dict[str, str]],
) -> None:
    _, variables = detached
    pid = int(variables["CLAIMSTREAM_BROKER_PID"])
    tansu = children(pid)
    assert len(tansu) == 1 and alive(tansu[0])
    os.kill(pid, signal.SIGTERM)
    assert gone(pid) and gone(tansu[0])


def test_a_failed_start_is_reported_by_the_detaching_command(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "claimstream", "broker", "--detach", "--file", str(tmp_path / "x")],
        capture_output=True,
        env=cli_env(),
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == b""
    assert b"claimstream broker: " in result.stderr


def test_in_the_foreground_stdout_is_only_the_block_and_ctrl_c_is_130() -> None:
    port = free_port()
    process = claimstream(
        "broker", "--port", str(port), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]  # ready once they are there
        tansu = children(process.pid)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            terminate_group(process, 10)
    assert process.returncode == 130, err.decode()
    assert lines[0].startswith(b"# Tansu on 127.0.0.1:")
    assert lines[1:] == [
        f"export CLAIMSTREAM_BROKER_URL=kafka://127.0.0.1:{port}\n".encode(),
        b"export CLAIMSTREAM_BROKER_FLAVOR=tansu\n",
    ]
    assert out == b""  # nothing else on stdout: `> broker.env` is a sourceable file
    assert f"{len(load_topology().topics)} declared topics".encode() in err
    assert tansu and all(gone(pid) for pid in tansu)


def test_sigterm_stops_it_with_exit_0() -> None:
    process = claimstream(
        "broker", "--port", str(free_port()), "--no-topics", stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        process.stdout.readline()
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            terminate_group(process, 10)
    assert process.returncode == 0


def test_without_a_port_it_takes_the_default_one_when_free() -> None:
    if port_in_use("127.0.0.1", 9092):
        pytest.skip("something listens on 127.0.0.1:9092 already")
    process = claimstream(
        "broker", "--no-topics", stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()
        url = process.stdout.readline()
    finally:
        terminate_group(process, 10)
        if process.stdout is not None:
            process.stdout.close()
    assert url == b"export CLAIMSTREAM_BROKER_URL=kafka://127.0.0.1:9092\n"
