"""`claimstream audit verify --file`: exit 0 intact, 1 tampered (naming the line), 2 unusable."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from claimstream.cli.main import main
from claimstream.devtools.subproc import free_port
from tests.audit.support import trail
from tests.audit.test_verify import stream_trail


def write(path: Path, records: list) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def test_an_intact_file_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = write(tmp_path / "audit.jsonl", trail(partitions=2))
    assert main(["audit", "verify", "--file", str(file)]) == 0
    assert capsys.readouterr().out.startswith("OK: ")


def test_an_altered_record_is_named_by_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = trail()
    records[5]["body"]["reason"] = "nothing to see"
    file = write(tmp_path / "audit.jsonl", records)
    assert main(["audit", "verify", "--file", str(file)]) == 1
    out = capsys.readouterr().out
    assert "changed: line 6 (partition 0, seq 5" in out


def test_json_report_and_a_broken_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = tmp_path / "audit.jsonl"
    file.write_bytes(write(tmp_path / "x", trail()).read_bytes() + b"{not json\n")
    assert main(["audit", "verify", "--file", str(file), "--json"]) == 1
    report = orjson.loads(capsys.readouterr().out)
    assert report["problem"]["kind"] == "malformed"
    assert report["problem"]["line"] == len(trail()) + 1


def test_a_known_head_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = trail()
    file = write(tmp_path / "audit.jsonl", records[:-1])
    head = f"0:{records[-1]['hash']}"
    assert main(["audit", "verify", "--file", str(file), "--head", head]) == 1
    assert "truncated" in capsys.readouterr().out
    assert main(["audit", "verify", "--file", str(file), "--head", "0:short"]) == 2


def test_an_unreachable_broker_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "audit",
        "verify",
        "--topic",
        "claimstream.audit.v1",
        "--bootstrap",
        f"127.0.0.1:{free_port()}",
    ]
    assert main(argv) == 2
    assert "cannot reach the broker" in capsys.readouterr().err


def test_chains_of_the_stream_and_their_heads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    records = stream_trail()
    file = write(tmp_path / "audit.jsonl", [*records[:4], records[2], *records[4:]])
    head = f"0/alerts:{[r for r in records if r['source'] == 'alerts'][-1]['hash']}"
    assert main(["audit", "verify", "--file", str(file), "--head", head]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: ") and "1 redelivered exact copy skipped" in out
    assert main(["audit", "verify", "--file", str(file), "--strict"]) == 1
    assert "duplicated: line 5 (chain 0/commands, seq 1" in capsys.readouterr().out
    assert main(["audit", "verify", "--file", str(file), "--head", "0/a/b:" + "0" * 64]) == 2


def test_a_missing_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "verify", "--file", str(tmp_path / "none.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err
