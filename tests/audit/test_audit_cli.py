"""`claimstream audit verify --file`: exit 0 intact, 1 tampered (naming the line and what was
done: truncated, dropped, rewritten, forged), 2 unusable input, 3 broker unreachable; `keygen`
and `checkpoint`."""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from claimstream.audit import new_state
from claimstream.audit.checkpoint import Checkpointer
from claimstream.audit.keys import HmacKeyRing, PublicKeys, Signer, parse_hmac_ring
from claimstream.audit.store import DirectoryStore
from claimstream.cli.main import main
from claimstream.devtools.subproc import free_port
from tests.audit.support import keyed_trail, legacy_trail, trail
from tests.audit.test_verify import forged_after, rehashed, stream_trail


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


def test_an_unreachable_broker_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "audit",
        "verify",
        "--topic",
        "claimstream.audit.v1",
        "--bootstrap",
        f"127.0.0.1:{free_port()}",
    ]
    assert main(argv) == 3
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


# --- keys and checkpoints ----------------------------------------------------------------------


@dataclass
class Keys:
    dir: Path
    ring: HmacKeyRing
    signer: Signer

    def args(self) -> list[str]:
        return [
            "--hmac-key-file",
            str(self.dir / "hmac.keys"),
            "--public-key",
            str(self.dir / "public.pem"),
            "--checkpoints",
            str(self.dir / "checkpoints"),
        ]


@pytest.fixture
def keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Keys:
    folder = tmp_path / "keys"
    assert main(["audit", "keygen", "--dir", str(folder)]) == 0
    capsys.readouterr()
    ring = parse_hmac_ring((folder / "hmac.keys").read_text(), "hmac.keys")
    signer = Signer.from_pem((folder / "signing.pem").read_bytes(), "signing.pem")
    return Keys(folder, ring, signer)


def signed_trail(keys: Keys) -> list[dict]:
    """A two-partition keyed trail, its heads checkpointed as the agent would."""
    records = keyed_trail(partitions=2, key=keys.ring.current)
    writer = Checkpointer(keys.signer, DirectoryStore(keys.dir / "checkpoints"))
    states = {p: new_state(p) for p in (0, 1)}
    for r in records:
        states[r["partition"]].update(seq=r["seq"] + 1, head=r["hash"])
    assert len(writer.observe(states)) == 2
    return records


def verify_file(
    tmp_path: Path, keys: Keys, records: list, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    file = write(tmp_path / "audit.jsonl", records)
    code = main(["audit", "verify", "--file", str(file), *keys.args()])
    return code, capsys.readouterr().out


def test_keygen_writes_secret_files_private_and_prints_no_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "k"
    assert main(["audit", "keygen", "--dir", str(folder)]) == 0
    out = capsys.readouterr().out
    assert stat.S_IMODE((folder / "hmac.keys").stat().st_mode) == 0o600
    assert stat.S_IMODE((folder / "signing.pem").stat().st_mode) == 0o600
    secret = (folder / "hmac.keys").read_text().splitlines()[-1]
    assert secret not in out and "PRIVATE" not in out
    assert main(["audit", "keygen", "--dir", str(folder)]) == 2  # never overwrites


def test_keygen_rotate_adds_keys_and_keeps_the_old_ones(
    keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audit", "keygen", "--dir", str(keys.dir), "--rotate"]) == 0
    ring = parse_hmac_ring((keys.dir / "hmac.keys").read_text(), "hmac.keys")
    assert ring.ids[0] == keys.ring.current.key_id and len(ring.ids) == 2
    public = PublicKeys.from_pem((keys.dir / "public.pem").read_bytes(), "public.pem")
    new = Signer.from_pem((keys.dir / "signing.pem").read_bytes(), "signing.pem")
    assert public.ids == sorted([keys.signer.key_id, new.key_id])


def test_an_untouched_keyed_trail_verifies_without_warnings(
    tmp_path: Path, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = verify_file(tmp_path, keys, signed_trail(keys), capsys)
    assert code == 0 and out.startswith("OK: 8 record(s) in 2 partition(s); 8 MAC(s) verified")
    assert "WARNING" not in out


def test_verify_names_a_truncated_tail(
    tmp_path: Path, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = verify_file(tmp_path, keys, signed_trail(keys)[:-1], capsys)
    assert code == 1 and "truncated: line 6 (partition 1, seq 2" in out


def test_verify_names_a_dropped_chain(
    tmp_path: Path, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    records = [r for r in signed_trail(keys) if r["partition"] == 0]
    code, out = verify_file(tmp_path, keys, records, capsys)
    assert code == 1 and "dropped: " in out and "the whole chain was removed" in out


def test_verify_names_a_rehashed_rewrite(
    tmp_path: Path, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    records = signed_trail(keys)
    records[2]["body"]["severity"] = "info"  # partition 0, seq 1
    code, out = verify_file(tmp_path, keys, rehashed(records, 2), capsys)
    assert code == 1 and "rewritten: line 3 (partition 0, seq 1" in out


def test_verify_names_a_forged_append(
    tmp_path: Path, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = verify_file(tmp_path, keys, forged_after(signed_trail(keys)), capsys)
    assert code == 1 and "forged: line 9 (partition 0, seq 4, act-forged)" in out


def test_a_changed_checkpoint_file_is_tampering(
    tmp_path: Path, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    records = signed_trail(keys)
    (path,) = (keys.dir / "checkpoints").glob("partition-0001/*.json")
    document = orjson.loads(path.read_bytes())
    document["chains"]["1"]["records"] -= 1  # hide the last record of partition 1
    path.write_bytes(orjson.dumps(document))
    code, out = verify_file(tmp_path, keys, records[:-1], capsys)
    assert code == 1 and out.startswith("TAMPERED: checkpoint ") and "does not verify" in out


def test_checkpoints_without_a_public_key_are_a_usage_error(
    tmp_path: Path, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(tmp_path / "audit.jsonl", signed_trail(keys))
    argv = ["audit", "verify", "--file", str(file), "--checkpoints", str(keys.dir / "checkpoints")]
    assert main(argv) == 2
    assert "no public key" in capsys.readouterr().err


def test_verify_takes_keys_and_checkpoints_from_the_environment(
    tmp_path: Path, keys: Keys, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLAIMSTREAM_AUDIT_HMAC_KEY_FILE", str(keys.dir / "hmac.keys"))
    monkeypatch.setenv("CLAIMSTREAM_AUDIT_SIGNING_KEY_FILE", str(keys.dir / "signing.pem"))
    monkeypatch.setenv("CLAIMSTREAM_AUDIT_CHECKPOINT_DIR", str(keys.dir / "checkpoints"))
    file = write(tmp_path / "audit.jsonl", signed_trail(keys)[:-1])
    assert main(["audit", "verify", "--file", str(file)]) == 1
    assert "truncated: " in capsys.readouterr().out


def test_a_legacy_trail_verifies_with_a_warning_and_a_cut_over_checkpoint_pins_it(
    tmp_path: Path, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(tmp_path / "audit.jsonl", legacy_trail())
    assert main(["audit", "verify", "--file", str(file)]) == 0
    assert "WARNING: 8 record(s) carry no MAC (unkeyed" in capsys.readouterr().out
    sign = ["--signing-key-file", str(keys.dir / "signing.pem")]
    point = ["audit", "checkpoint", "--file", str(file), *sign, *keys.args()]
    assert main(point) == 0
    assert "signed 1 chain head(s)" in capsys.readouterr().out
    write(file, legacy_trail()[:-1])
    assert main(["audit", "verify", "--file", str(file), *keys.args()]) == 1
    assert "truncated: " in capsys.readouterr().out
    assert main(point) == 1  # a trail that no longer verifies is not signed


def test_require_mac_refuses_a_legacy_trail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = write(tmp_path / "audit.jsonl", legacy_trail())
    assert main(["audit", "verify", "--file", str(file), "--require-mac"]) == 1
    assert "forged: line 1" in capsys.readouterr().out
