"""What the core emits: alert records with and without money and law."""

from __future__ import annotations

import dataclasses

from claimstream.model.outputs import Alert, Subject

ALERT = Alert(
    alert_id="alr-1",
    rule="duplicate_exam",
    rule_version=1,
    severity="warning",
    subject=Subject("patient", "P1"),
    patient_id="P1",
    institution_id="H2",
    doctor_id=None,
    department_id=None,
    event_ids=("c1", "c2"),
    occurred_at="2026-03-02T08:00:00+08:00",
    detected_at="2026-03-02T08:00:00+08:00",
    message="Patient P1 had exam CT-CHEST again.",
    details={"item_code": "CT-CHEST"},
)


def test_an_alert_with_money_and_law_writes_them_after_the_v1_fields() -> None:
    full = dataclasses.replace(
        ALERT,
        amount=480.0,
        legal_basis="《医疗保障基金使用监督管理条例》第十五条",
        behaviour="重复检查",
        lines=((1, "CT-CHEST", 480.0),),
    )
    written = full.to_dict()
    assert list(written)[-5:] == ["details", "amount", "legal_basis", "behaviour", "lines"]
    assert written["lines"] == [{"index": 1, "code": "CT-CHEST", "amount": 480.0}]
    assert written["amount"] == 480.0 and written["behaviour"] == "重复检查"


def test_an_alert_without_them_writes_the_v1_record_it_was_read_from() -> None:
    assert list(ALERT.to_dict())[-1] == "details"


def test_a_legal_basis_alone_makes_the_alert_write_a_null_amount_and_no_lines() -> None:
    written = dataclasses.replace(ALERT, legal_basis="《条例》", behaviour="分解住院").to_dict()
    assert (written["amount"], written["lines"]) == (None, [])
