"""The two stages of the peer comparison in `replay`: institution months, then peer groups."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import orjson

from claimstream.detection.config import DetectionConfig
from claimstream.detection.engine import Engine
from claimstream.detection.peers import PeerStage, closed_through, stored_months
from claimstream.detection.replay import ReplaySinks, replay
from claimstream.devtools.simulate import generate
from claimstream.model.indicators import Figures, InstitutionMonth

REPO = Path(__file__).resolve().parents[2]
#: about four months of event time from 2026-03-01: March to May close for every group
QUARTER = {"count": 40_000, "span_days": 160.0, "seed": 7}
#: the simulator's hospitals see 20-30 stays a month: compare from 20
CONFIG = DetectionConfig.default().with_rule_changes("peer_outlier", {"min_volume": 20})


def replayed(
    drifting: int, config: DetectionConfig = CONFIG
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    lines = [orjson.dumps(e) for e in generate(**QUARTER, drifting=drifting)]  # type: ignore[arg-type]
    alerts: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = []
    replay(
        lines,
        ReplaySinks(alerts=alerts.append, records=records.append),
        config=config,
        clock="event",
    )
    return alerts, records


def test_a_simulated_quarter_with_drifting_institutions_flags_them_and_no_other() -> None:
    alerts, records = replayed(drifting=2)
    flagged = {
        (a["institution_id"], a["details"]["indicator"])
        for a in alerts
        if a["rule"] == "peer_outlier"
    }
    assert {institution for institution, _ in flagged} == {"H006", "H007"}
    assert ("H006", "cost_per_visit") in flagged
    assert {r["month"] for r in records} == {"2026-03", "2026-04", "2026-05", "2026-06"}


def test_without_drift_nobody_is_an_outlier() -> None:
    alerts, _ = replayed(drifting=0)
    assert [a for a in alerts if a["rule"] == "peer_outlier"] == []


def test_the_benchmark_reads_a_groups_stored_months_in_order() -> None:
    peers = PeerStage(Engine(DetectionConfig.default(), None))
    state = peers.new_state()
    for label, institution in [("2026-02", "B"), ("2026-02", "A"), ("2026-03", "A")]:
        peers.on_record(state, InstitutionMonth(institution, "g", label, Figures(visits=1)))
    assert [(r.month, r.institution_id) for r in stored_months(state)] == [
        ("2026-02", "A"),
        ("2026-02", "B"),
        ("2026-03", "A"),
    ]
    assert closed_through(state) == "2026-02"


def test_the_published_months_follow_their_schema() -> None:
    schema = orjson.loads((REPO / "topics" / "schemas" / "indicators.v1.json").read_bytes())
    validator = jsonschema.Draft202012Validator(schema)
    _, records = replayed(drifting=1)
    assert records
    for record in records:
        validator.validate(record)


def test_out_of_order_and_redelivered_claims_change_no_month_and_no_alert() -> None:
    lines = [orjson.dumps(e) for e in generate(**QUARTER, drifting=2)]  # type: ignore[arg-type]
    assert len(lines) % 2 == 0
    shuffled: list[bytes] = []
    for n in range(0, len(lines), 2):  # neighbours swapped: minutes apart, within 1 h
        shuffled += [lines[n + 1], lines[n]]
        if n % 40 == 0:
            shuffled.append(lines[n])  # and one in 20 delivered twice

    def run(source: list[bytes]) -> tuple[set[bytes], set[bytes]]:
        alerts: list[dict[str, Any]] = []
        records: list[dict[str, Any]] = []
        replay(
            source,
            ReplaySinks(alerts=alerts.append, records=records.append),
            config=CONFIG,
            clock="event",
        )
        peer = {orjson.dumps(a) for a in alerts if a["rule"] == "peer_outlier"}
        return peer, {orjson.dumps(r) for r in records}

    in_order = run(lines)
    assert in_order[0]
    assert run(shuffled) == in_order
