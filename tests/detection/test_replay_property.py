"""One extra event, whatever its time, changes nothing about anyone else (hypothesis).

The property. Take any stream S and one extra event X with any occurred_at the decoder accepts
(years 1900..2199, any offset: from the far past to the far future), any subjects (new ones or
those already in S) and its own event id (ids are unique by contract: an event reusing another's
id *is* a redelivery of it, and whichever copy comes first counts), inserted anywhere in S. Then
`replay` of S and of S+X both finish without a processing error, and they give the same
alerts about every *other key*: an alert is about one of X's keys when its subject is X's
patient, X's doctor or X's institution, or when it comes from a rule keyed by patient (doctor,
institution) and names X's patient (doctor, institution): such a rule keeps its state under
that id, and a patient rule may name a doctor or an institution as its subject; or when it
comes from the rule keyed by trace code and is about one of X's codes. Every other
alert must be identical, ids, evidence and times included.

The streams. Events of a few patients, doctors and institutions, of every type, with rules'
thresholds lowered so that they alert; times that rise by up to two days per event and are
each up to the allowed lateness (1 h) behind the stream's latest, so no event is late on its
own input partition (the stated precondition of alignment, docs/time.md); some events
redelivered. The plausible range is the whole of the contract's, so X reaches every rule
(no year is refused before the rules run); partitions 1 to 3 so watermarks move within a short
stream, and sweeps as often as every event, so idle-key expiry is exercised too.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from claimstream.detection.replay import ReplaySinks, replay
from claimstream.rules import RULES
from tests.detection.support import eager_config

CONFIG = eager_config(
    earliest_event_time="1900-01-01T00:00:00+23:59",
    latest_event_time="2199-12-31T23:59:59.999999-23:59",
)
PATIENTS = ("P1", "P2", "P3", "P4")
DOCTORS = ("D1", "D2", "D3")
INSTITUTIONS = ("H1", "H2", "H3")
START = datetime(2026, 3, 1, 8, 0, tzinfo=timezone(timedelta(hours=8)))
DRUGS = ("INS", "MET", "XB01AAH017A001010100007", "XB01ACA057A012010100008")
#: a few codes, so packs are settled again (trace_code_reuse keeps state per code)
TRACE_CODES = ("T1", "T2", "T3")


@st.composite
def bodies(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["dispense", "consultation", "admission", "discharge", "claim"]))
    if kind == "dispense":
        return {
            "event_type": kind,
            "drug_code": draw(st.sampled_from(DRUGS)),
            "days_supply": draw(st.sampled_from([5, 7, 30, 90])),
            "quantity": draw(st.integers(1, 4)),
            "chronic": draw(st.booleans()),
            "atc_code": draw(st.sampled_from(["A10AE04", "B01AA03", "B01AC06"])),
            "trace_codes": draw(st.lists(st.sampled_from(TRACE_CODES), max_size=2, unique=True)),
        }
    if kind == "consultation":
        return {"event_type": kind, "mode": draw(st.sampled_from(["online", "offline"]))}
    if kind in ("admission", "discharge"):
        return {
            "event_type": kind,
            "admission_id": draw(st.sampled_from(["A1", "A2", "A3"])),
            "diagnosis_code": draw(st.sampled_from(["J18.9", "I63.9"])),
        }
    special = draw(st.booleans())
    items = [{"code": "EX-MRI", "category": "exam", "quantity": 1, "unit_price": 900}]
    return {
        "event_type": kind,
        "claim_id": f"C{draw(st.integers(0, 5))}",
        "visit_type": draw(st.sampled_from(["outpatient", "inpatient", "online"])),
        "total_amount": draw(st.sampled_from([50.0, 100.0, 400.0])),
        "fund_amount": 30.0,
        "diagnosis_code": draw(st.sampled_from(["J18.9", "I63.9"])),
        "items": [{**items[0], "special_exam": special}] if draw(st.booleans()) else [],
    }


@st.composite
def streams(draw: st.DrawFn) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    latest = START
    for i in range(draw(st.integers(1, 40))):
        latest += timedelta(seconds=draw(st.integers(0, 2 * 86_400)))
        occurred = latest - timedelta(seconds=draw(st.integers(0, 3_599)))
        event = {
            "event_id": f"e{i}",
            "occurred_at": occurred.isoformat(),
            "patient_id": draw(st.sampled_from(PATIENTS)),
            "institution_id": draw(st.sampled_from(INSTITUTIONS)),
            "doctor_id": draw(st.sampled_from(DOCTORS)),
            **draw(bodies()),
        }
        events.append(event)
        if draw(st.integers(0, 9)) == 0:
            events.append(event)  # redelivered
    return events


offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))


@st.composite
def any_time(draw: st.DrawFn) -> str:
    moment = datetime(
        draw(st.sampled_from([1900, 2199]) | st.integers(1900, 2199)),
        draw(st.integers(1, 12)),
        draw(st.integers(1, 28)),
        draw(st.integers(0, 23)),
        draw(st.integers(0, 59)),
        draw(st.integers(0, 59)),
        draw(st.sampled_from([0, 999_999])),
        tzinfo=draw(offsets),
    )
    return moment.isoformat()


@st.composite
def strangers(draw: st.DrawFn, stream: list[dict[str, Any]]) -> dict[str, Any]:
    near = stream[draw(st.integers(0, len(stream) - 1))]["occurred_at"]
    return {
        "event_id": "x1",
        "occurred_at": draw(any_time() | st.just(near)),
        "patient_id": draw(st.sampled_from([*PATIENTS, "PX"])),
        "institution_id": draw(st.sampled_from([*INSTITUTIONS, "HX"])),
        "doctor_id": draw(st.sampled_from([*DOCTORS, "DX"])),
        **draw(bodies()),
    }


def run(events: list[dict[str, Any]], partitions: int, sweep_every: int) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    sinks = ReplaySinks(
        alerts=alerts.append,
        dead_letters=lambda d: errors.append(d) if d["reason"] == "processing_error" else None,
    )
    replay(
        (orjson.dumps(e) for e in events),
        sinks,
        config=CONFIG,
        clock="event",
        partitions=partitions,
        sweep_every=sweep_every,
    )
    assert errors == []
    return alerts


def about_its_keys(alert: dict[str, Any], stranger: dict[str, Any]) -> bool:
    ids = {
        "patient": stranger["patient_id"],
        "doctor": stranger["doctor_id"],
        "institution": stranger["institution_id"],
    }
    subject = alert["subject"]
    kind = RULES[alert["rule"]].key_kind
    if kind == "trace_code":  # its key is the code: X's codes are X's keys too
        return subject["id"] == ids[subject["kind"]] or alert["details"]["trace_code"] in (
            stranger.get("trace_codes") or ()
        )
    return subject["id"] == ids[subject["kind"]] or alert[f"{kind}_id"] == ids[kind]


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_one_extra_event_with_any_accepted_time_changes_no_other_keys_alerts(
    data: st.DataObject,
) -> None:
    stream = data.draw(streams())
    stranger = data.draw(strangers(stream))
    at = data.draw(st.integers(0, len(stream)))
    partitions = data.draw(st.integers(1, 3))
    sweep_every = data.draw(st.sampled_from([1, 10_000]))
    without = run(stream, partitions, sweep_every)
    with_it = run([*stream[:at], stranger, *stream[at:]], partitions, sweep_every)

    def others(alerts: list[dict[str, Any]]) -> list[bytes]:
        return sorted(orjson.dumps(a) for a in alerts if not about_its_keys(a, stranger))

    assert others(with_it) == others(without)


def test_replay_of_a_file_with_the_contracts_last_instant_and_beyond_exits_0(
    tmp_path: Path,
) -> None:
    base = {"event_type": "consultation", "patient_id": "P1", "institution_id": "H1"}
    lines = [
        {**base, "event_id": "a", "occurred_at": "2026-03-01T08:00:00+08:00", "mode": "online"},
        {**base, "event_id": "b", "occurred_at": "2199-12-31T23:59:59-23:59", "mode": "online"},
        {**base, "event_id": "c", "occurred_at": "9999-12-31T23:59:59-08:00", "mode": "online"},
        {**base, "event_id": "d", "occurred_at": "2026-03-01T09:00:00+08:00", "mode": "online"},
    ]
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in lines))
    dead = tmp_path / "dead.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "claimstream",
            "replay",
            str(events),
            "-q",
            "--dead-letter",
            str(dead),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    reasons = [orjson.loads(line)["reason"] for line in dead.read_bytes().splitlines()]
    assert reasons == ["implausible_timestamp", "implausible_timestamp"]
