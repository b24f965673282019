"""The watermark markers' report: which input partitions a worker calls idle, and when."""

from __future__ import annotations

import orjson

from claimstream.detection.processor import MARKER_HEADER
from claimstream.model.records import Record
from claimstream.stream.detection.markers import SourceWatch, family_of_topic, marker_headers

CLAIMS = "settlement.claims.v1"
VISITS = "settlement.consultations.v1"
INPUTS = (CLAIMS, VISITS)
OWNED = [(CLAIMS, 0), (VISITS, 0)]


def watch(idle_after: float = 10.0) -> SourceWatch:
    out = SourceWatch(family_of_topic(INPUTS), idle_after)
    out.assigned(OWNED, now=0.0)
    return out


def read(topic: str, offset: int) -> Record:
    return Record(b"P1", b"{}", topic, 0, offset)


def test_families_come_from_the_input_topic_names() -> None:
    assert family_of_topic([*INPUTS, "claimstream.repartition.patient"]) == {
        CLAIMS: "claims",
        VISITS: "consultations",
    }


def test_each_owned_partition_is_reported_with_its_progress() -> None:
    body = watch().report(OWNED, {"claims/0": 5.0}, lambda where: 0, {}, now=1.0)
    assert body == {"claims/0": [5.0, False], "consultations/0": [None, False]}


def test_a_partition_quiet_and_read_to_its_end_is_idle() -> None:
    w = watch()
    w.seen([read(CLAIMS, 0), read(CLAIMS, 1)], now=1.0)
    body = w.report(OWNED, {}, lambda where: 2 if where[0] == CLAIMS else 0, {}, now=11.0)
    assert body["claims/0"][1] is True
    assert body["consultations/0"][1] is True  # never read, nothing there: idle since assigned


def test_a_quiet_partition_with_records_still_to_read_is_never_idle() -> None:
    w = watch()
    w.seen([read(CLAIMS, 0)], now=1.0)
    body = w.report(OWNED, {}, lambda where: 5, {}, now=100.0)
    assert body["claims/0"][1] is False


def test_a_partition_whose_end_is_not_known_yet_is_not_idle() -> None:
    body = watch().report(OWNED, {}, lambda where: None, {}, now=100.0)
    assert body == {"claims/0": [None, False], "consultations/0": [None, False]}


def test_committed_offsets_count_as_read() -> None:
    w = watch()
    body = w.report(OWNED, {}, lambda where: 7, {(CLAIMS, 0): 7}, now=100.0)
    assert body["claims/0"][1] is True
    assert body["consultations/0"][1] is False


def test_a_partition_assigned_again_counts_its_quiet_from_then() -> None:
    w = watch()
    w.assigned([(VISITS, 0)], now=50.0)  # claims/0 revoked
    w.assigned(OWNED, now=60.0)
    body = w.report(OWNED, {}, lambda where: 0, {}, now=65.0)
    assert body["claims/0"][1] is False
    assert body["consultations/0"][1] is True


def test_a_markers_body_is_one_json_header() -> None:
    ((name, value),) = marker_headers({"claims/0": [5.0, False]})
    assert name == MARKER_HEADER
    assert orjson.loads(value) == {"claims/0": [5.0, False]}
