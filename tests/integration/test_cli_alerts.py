"""`claimstream alerts list|show|review` against alerts on Tansu's alerts topic."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from claimstream.cli.main import main
from claimstream.devtools.localbroker import LocalBroker
from claimstream.kafka.actions import ACTIONS_TOPIC
from claimstream.model.outputs import Alert, Subject
from tests.integration.stream_support import produce, read_topic

pytestmark = pytest.mark.integration
ALERTS = "claimstream.alerts.v1"
NOW = datetime.now(UTC)


def alert(
    alert_id: str, rule: str, subject: Subject, detected_hours_ago: float, **ids: str
) -> Alert:
    detected = (NOW - timedelta(hours=detected_hours_ago)).isoformat(timespec="seconds")
    return Alert(
        alert_id=alert_id,
        rule=rule,
        rule_version=1,
        severity="high",
        subject=subject,
        patient_id=ids.get("patient_id"),
        institution_id=ids.get("institution_id"),
        doctor_id=ids.get("doctor_id"),
        department_id=None,
        event_ids=(f"e-{alert_id}",),
        occurred_at=detected,
        detected_at=detected,
        message=f"test alert {alert_id}",
        details={"n": 1},
    )


ALERT_LIST = [
    alert("alt-old", "readmission_24h", Subject("patient", "P1"), 72, patient_id="P1",
          institution_id="H1"),
    alert("alt-mid", "excess_quantity", Subject("patient", "P2"), 10, patient_id="P2",
          institution_id="H2"),
    alert("alt-new", "readmission_24h", Subject("institution", "H2"), 1, institution_id="H2"),
]  # fmt: skip


@pytest.fixture(scope="module")
def broker(local_broker: LocalBroker) -> Iterator[LocalBroker]:
    records = [(ALERTS, a.subject.id.encode(), orjson.dumps(a.to_dict())) for a in ALERT_LIST]
    records.append((ALERTS, b"P1", orjson.dumps(ALERT_LIST[0].to_dict())))  # redelivered
    records.append((ALERTS, b"P9", b"not an alert"))
    produce(local_broker.bootstrap, records)
    yield local_broker


def listed(capsys: pytest.CaptureFixture[str], broker: LocalBroker, *args: str) -> list[str]:
    assert main(["alerts", "list", "--bootstrap", broker.url, "--json", *args]) == 0
    return [orjson.loads(line)["alert_id"] for line in capsys.readouterr().out.splitlines()]


def test_list_shows_each_alert_once_newest_first(
    broker: LocalBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    assert listed(capsys, broker) == ["alt-new", "alt-mid", "alt-old"]


def test_list_filters_by_rule_subject_time_and_count(
    broker: LocalBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    assert listed(capsys, broker, "--rule", "readmission_24h") == ["alt-new", "alt-old"]
    assert listed(capsys, broker, "--subject", "institution:H2") == ["alt-new", "alt-mid"]
    assert listed(capsys, broker, "--since", "24h") == ["alt-new", "alt-mid"]
    since = (NOW - timedelta(hours=5)).isoformat()
    assert listed(capsys, broker, "--since", since) == ["alt-new"]
    assert listed(capsys, broker, "--limit", "1") == ["alt-new"]


def test_list_as_a_table(broker: LocalBroker, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["alerts", "list", "--bootstrap", broker.url, "--rule", "excess_quantity"]) == 0
    out, err = capsys.readouterr()
    header, row = out.splitlines()
    assert header.split() == ["DETECTED", "SEVERITY", "RULE", "SUBJECT", "ALERT", "MESSAGE"]
    assert "excess_quantity" in row and "patient:P2" in row and "alt-mid" in row
    assert err.endswith(f"1 of 3 alerts on {ALERTS} match\n")


def test_an_unknown_rule_is_a_usage_error(
    broker: LocalBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["alerts", "list", "--bootstrap", broker.url, "--rule", "nope"]) == 2
    assert "unknown rule 'nope'" in capsys.readouterr().err


def test_show_prints_the_whole_alert(
    broker: LocalBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["alerts", "show", "alt-mid", "--bootstrap", broker.url, "--json"]) == 0
    shown = orjson.loads(capsys.readouterr().out)
    assert shown["alert"] == ALERT_LIST[1].to_dict()
    assert shown["where"].startswith(f"{ALERTS}[")


def test_show_of_an_unknown_id_is_exit_2(
    broker: LocalBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["alerts", "show", "alt-nope", "--bootstrap", broker.url]) == 2
    assert capsys.readouterr().err.startswith(
        f"claimstream alerts show: no alert alt-nope on {ALERTS} (3 alerts read)"
    )


def test_review_of_an_unknown_id_is_refused_and_publishes_nothing(
    broker: LocalBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["alerts", "review", "alt-typo", "--verdict", "confirmed", "--by", "li.na"]
    assert main([*argv, "--bootstrap", broker.url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("claimstream alerts review: refused, nothing published: no alert")
    assert "published" not in capsys.readouterr().out
    assert [k for k, _ in read_topic(broker.bootstrap, ACTIONS_TOPIC) if k == b"alt-typo"] == []


def test_review_of_a_known_id_is_published_and_show_lists_it(
    broker: LocalBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["alerts", "review", "alt-old", "--verdict", "confirmed", "--by", "li.na", "--note",
            "records checked", "--bootstrap", broker.url]  # fmt: skip
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("published ")
    assert main(["alerts", "show", "alt-old", "--bootstrap", broker.url]) == 0
    out = capsys.readouterr().out
    assert "review      confirmed by li.na at " in out and "(records checked)" in out
