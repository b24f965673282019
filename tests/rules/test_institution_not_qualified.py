"""institution_not_qualified: institutions without a valid agreement, or out of its scope."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from claimstream.detection.config import DetectionConfig
from claimstream.detection.decode import decode_event
from claimstream.model.events import Event
from claimstream.testing import admission, consultation, dispense
from tests.rules._catalogue import (
    alerts,
    claim,
    commands,
    duplicated,
    item,
    same_alerts_in_every_order,
)
from tests.rules._credentials import config

RULE = "institution_not_qualified"


@pytest.fixture
def cfg(tmp_path: Path) -> DetectionConfig:
    return config(tmp_path / "registry", RULE)


def at(occurred_at: str, inst: str, event_type: str = "dispense", **fields: Any) -> Event:
    body: dict[str, Any] = {
        "dispense": {"drug_code": "X", "days_supply": 7, "quantity": 2, "unit_price": 10.0},
        "consultation": {"mode": "offline"},
    }[event_type]
    raw = {
        "event_id": "e-" + "".join(c for c in occurred_at if c.isalnum()),
        "event_type": event_type,
        "occurred_at": occurred_at,
        "patient_id": "P1",
        "institution_id": inst,
        **body,
        **fields,
    }
    decoded = decode_event(raw)
    assert isinstance(decoded, Event), decoded
    return decoded


def reasons(events: list[Event], cfg: DetectionConfig) -> list[str]:
    return [a.details["reason"] for a in alerts(RULE, events, cfg)]


@pytest.mark.parametrize(
    ("occurred_at", "expected"),
    [
        ("2026-03-02T12:00:00+08:00", []),  # the day before expiry
        ("2026-03-02T23:59:59+08:00", []),  # the last second of the last valid day
        ("2026-03-03T00:00:00+08:00", ["expired"]),  # local midnight starts the day after
        ("2026-03-02T16:00:00+00:00", ["expired"]),  # the same instant written in UTC
        ("2026-03-02T15:59:59+00:00", []),  # 23:59:59 local, written in UTC
        ("2026-03-04T10:00:00+08:00", ["expired"]),
    ],
)
def test_an_agreement_is_valid_through_its_last_local_day(
    occurred_at: str, expected: list[str], cfg: DetectionConfig
) -> None:
    assert reasons([at(occurred_at, "Y1")], cfg) == expected


@pytest.mark.parametrize(
    ("occurred_at", "expected"),
    [
        ("2026-03-04T23:59:59+08:00", ["not_yet_valid"]),
        ("2026-03-05T00:00:00+08:00", []),
    ],
)
def test_an_agreement_is_valid_from_its_first_local_day(
    occurred_at: str, expected: list[str], cfg: DetectionConfig
) -> None:
    assert reasons([at(occurred_at, "H2", "consultation")], cfg) == expected


def test_a_renewal_without_a_gap_keeps_the_institution_qualified(cfg: DetectionConfig) -> None:
    events = [at("2026-03-31T23:59:59+08:00", "H1"), at("2026-04-01T00:00:00+08:00", "H1")]
    assert reasons(events, cfg) == []


def test_a_day_between_two_agreements_is_lapsed(cfg: DetectionConfig) -> None:
    events = [
        at("2026-02-28T23:00:00+08:00", "H3"),
        at("2026-03-01T00:00:00+08:00", "H3"),
        at("2026-03-09T23:59:59+08:00", "H3"),
        at("2026-03-10T00:00:00+08:00", "H3"),
    ]
    assert reasons(events, cfg) == ["lapsed", "lapsed"]


def test_an_institution_the_registry_does_not_list_is_unknown(cfg: DetectionConfig) -> None:
    (alert,) = alerts(RULE, [dispense("d", 0, inst="H9", unit_price=12.5, quantity=2)], cfg)
    assert alert.details["reason"] == "unknown_institution"
    assert (alert.subject.kind, alert.subject.id) == ("institution", "H9")
    assert alert.amount == 25.0


def test_a_pharmacy_billing_an_inpatient_stay_is_out_of_scope(cfg: DetectionConfig) -> None:
    stay = claim(
        "c", 0, inst="Y1", visit_type="inpatient", total=5000.0, items=[item("BED", "service")]
    )
    (alert,) = alerts(RULE, [stay], cfg)
    assert alert.details["reason"] == "service_out_of_scope"
    assert alert.details["agreement_type"] == "定点零售药店"
    assert alert.amount == 5000.0


def test_a_pharmacy_admitting_a_patient_is_out_of_scope(cfg: DetectionConfig) -> None:
    assert reasons([admission("a", 0, stay="S1", inst="Y1")], cfg) == ["service_out_of_scope"]


def test_a_pharmacy_dispensing_is_in_scope(cfg: DetectionConfig) -> None:
    assert reasons([dispense("d", 0, inst="Y1")], cfg) == []


def test_an_offline_consultation_at_an_internet_hospital_is_out_of_scope(
    cfg: DetectionConfig,
) -> None:
    assert reasons([consultation("c", 0, mode="offline", institution_id="IH1")], cfg) == [
        "service_out_of_scope"
    ]


def test_an_online_consultation_at_an_internet_hospital_is_in_scope(cfg: DetectionConfig) -> None:
    assert reasons([consultation("c", 0, mode="online", institution_id="IH1")], cfg) == []


def test_claim_items_of_a_category_outside_the_agreement_are_the_lines_and_the_amount(
    cfg: DetectionConfig,
) -> None:
    items = [item("RX", "drug", price=30.0), item("CT", "exam", price=400.0, quantity=2)]
    (alert,) = alerts(RULE, [claim("c", 0, inst="Y1", items=items, total=830.0)], cfg)
    assert alert.details["reason"] == "category_out_of_scope"
    assert alert.lines == ((1, "CT", 800.0),)
    assert alert.amount == 800.0


def test_scope_is_not_judged_when_check_scope_is_off(tmp_path: Path) -> None:
    cfg = config(tmp_path / "r", RULE, check_scope="false")
    assert reasons([admission("a", 0, stay="S1", inst="Y1")], cfg) == []


def test_the_alert_records_the_registry_version_and_the_law(cfg: DetectionConfig) -> None:
    (alert,) = alerts(RULE, [dispense("d", 0, inst="H9")], cfg)
    assert alert.details["credentials_version"].startswith("sha256:")
    assert alert.details["reference_version"] == "test-1"
    assert alert.severity == "high"
    assert alert.legal_basis.startswith("《医疗保障基金使用监督管理条例》")
    assert cfg.rules[RULE].on_check == "reject"


def test_a_change_of_the_registry_changes_the_recorded_version(tmp_path: Path) -> None:
    first = alerts(RULE, [dispense("d", 0, inst="H9")], config(tmp_path / "a", RULE))
    from tests.rules._credentials import AGREEMENTS, registry

    registry(tmp_path / "b", AGREEMENTS + "H8,another,定点医疗机构,2026-01-01,,,,\n")
    cfg = DetectionConfig.default(reference_data_path=str(tmp_path / "b")).with_rule_changes(
        RULE, {"enabled": "true"}
    )
    second = alerts(RULE, [dispense("d", 0, inst="H9")], cfg)
    assert first[0].details["credentials_version"] != second[0].details["credentials_version"]


def test_with_commands_on_the_institution_is_frozen_until_the_end_of_the_local_day(
    tmp_path: Path,
) -> None:
    cfg = config(tmp_path / "r", RULE, issue_commands="true")
    (command,) = commands(RULE, [at("2026-03-03T09:00:00+08:00", "Y1")], cfg)
    assert (command.action, command.scope.kind, command.scope.id) == ("FREEZE", "institution", "Y1")
    assert command.expires_at == "2026-03-04T00:00:00+08:00"


def test_it_is_off_by_default_against_the_packaged_illustrative_registry() -> None:
    assert alerts(RULE, [dispense("d", 0, inst="H9")]) == []


def test_each_event_is_one_alert_whatever_the_order(cfg: DetectionConfig) -> None:
    events = [
        dispense("d1", 0, inst="H9"),
        dispense("d2", 0.2, inst="H9"),
        dispense("d3", 0.4, inst="H1"),
    ]
    assert len(same_alerts_in_every_order(RULE, events, cfg)) == 2


def test_a_redelivered_event_changes_nothing(cfg: DetectionConfig) -> None:
    assert len(alerts(RULE, duplicated([dispense("d", 0, inst="H9")]), cfg)) == 1
