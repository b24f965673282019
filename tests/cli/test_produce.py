"""`claimstream produce` without a broker (`--dry-run`): routing, keys, partitions, refusals.
Publishing to Tansu and a worker re-keying: tests/integration/test_cli_produce.py."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from claimstream.cli.main import main
from claimstream.kafka.actions import partition_of
from claimstream.kafka.topology import load_topology
from tests.cli.support import simulated, write_lines

FAMILY_TOPIC = {
    "dispense": "settlement.dispensing.v1",
    "consultation": "settlement.consultations.v1",
    "admission": "settlement.stays.v1",
    "discharge": "settlement.stays.v1",
    "claim": "settlement.claims.v1",
}


def dry_run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["produce", *argv, "--dry-run", "--json"])
    return code, orjson.loads(capsys.readouterr().out)


def test_each_event_goes_to_its_familys_topic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = simulated(400)
    code, report = dry_run(capsys, str(write_lines(tmp_path / "e.jsonl", events)))
    assert code == 0
    expected = Counter(FAMILY_TOPIC[e["event_type"]] for e in events)
    assert {t: v["records"] for t, v in report["topics"].items()} == expected
    assert report["published"] == 0 and report["records"] == 400


def test_each_record_goes_to_its_patients_murmur2_partition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = simulated(400)
    code, report = dry_run(
        capsys, str(write_lines(tmp_path / "e.jsonl", events)), "--partitions", "5"
    )
    assert code == 0
    expected: dict[str, Counter[str]] = {}
    for e in events:
        partition = partition_of(e["patient_id"].encode(), 5)
        expected.setdefault(FAMILY_TOPIC[e["event_type"]], Counter())[str(partition)] += 1
    assert {t: v["partitions"] for t, v in report["topics"].items()} == expected


def test_the_declared_partition_count_is_used_without_a_broker(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    declared = load_topology().topic("settlement.claims.v1").partitions
    claims = [e for e in simulated(400) if e["event_type"] == "claim"]
    _, report = dry_run(capsys, str(write_lines(tmp_path / "e.jsonl", claims)))
    used = {int(p) for p in report["topics"]["settlement.claims.v1"]["partitions"]}
    assert used <= set(range(declared)) and len(used) > 1


def test_invalid_lines_are_refused_by_number_and_the_rest_is_routed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = simulated(10)
    lines: list[bytes | dict[str, Any]] = [*events[:5], b"{bad", *events[5:], {"event_type": "x"}]
    code = main(["produce", str(write_lines(tmp_path / "e.jsonl", lines)), "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 1
    first, second = err.splitlines()
    assert first.startswith(f"{tmp_path / 'e.jsonl'}:6: not_json: the message is not JSON: ")
    assert second.startswith(f"{tmp_path / 'e.jsonl'}:12: unknown_event_type: ")
    assert out.startswith("would publish 10 records (dry run: nothing sent)")
    assert "refused 2 line(s), not published (not_json 1, unknown_event_type 1)" in out


def test_strict_stops_at_the_first_refused_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events = simulated(10)
    path = write_lines(tmp_path / "e.jsonl", [*events[:3], b"{bad", *events[3:], b"{bad"])
    code, report = dry_run(capsys, str(path), "--strict")
    assert code == 1
    assert report["stopped_at_line"] == 4
    assert report["records"] == 3 and report["refused"] == 1


def test_raw_routes_invalid_lines_that_name_their_event_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = {"event_type": "claim", "patient_id": "P9"}  # no occurred_at: the worker refuses it
    path = write_lines(tmp_path / "e.jsonl", [broken, b"not json"])
    code, report = dry_run(capsys, str(path), "--raw")
    assert code == 1  # the second line has no topic
    assert report["topics"] == {
        "settlement.claims.v1": {
            "records": 1,
            "partitions": {str(partition_of(b"P9", 8)): 1},
        }
    }
    assert report["refusals"][0]["reason"] == "no_topic"


def test_raw_with_a_topic_sends_every_line_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines(tmp_path / "e.jsonl", [b"not json", {"x": 1}])
    code, report = dry_run(capsys, str(path), "--raw", "--topic", "settlement.claims.v1")
    assert code == 0
    assert report["topics"] == {"settlement.claims.v1": {"records": 2, "partitions": {}}}


def test_partitions_without_dry_run_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines(tmp_path / "e.jsonl", simulated(1))
    assert main(["produce", str(path), "--partitions", "3"]) == 2
    assert "--partitions is for --dry-run" in capsys.readouterr().err


def test_an_undeclared_topic_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_lines(tmp_path / "e.jsonl", simulated(1))
    assert main(["produce", str(path), "--dry-run", "--topic", "settlement.nope.v1"]) == 2
    assert "--topic settlement.nope.v1 is not declared" in capsys.readouterr().err
