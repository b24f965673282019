"""readmission_24h: admitted again less than 24 h after a discharge, at any institution."""

from __future__ import annotations

import pytest

from claimstream.testing import admission, alerts_of, discharge, run, with_rule

RULE = "readmission_24h"


def stays(gap_hours: float, *, second_inst: str = "H2") -> list:
    return [
        admission("a1", 0, stay="S1", inst="H1"),
        discharge("d1", 96, stay="S1", inst="H1"),
        # another diagnosis family, so split_hospitalization stays out of these tests
        admission("a2", 96 + gap_hours, stay="S2", inst=second_inst, diagnosis_code="K35.8"),
    ]


@pytest.mark.parametrize(
    ("gap_hours", "alerted"),
    [(0.0, True), (23 + 59 / 60, True), (24.0, False), (24 + 1 / 60, False)],
)
def test_readmission_less_than_24_hours_after_discharge(gap_hours: float, alerted: bool) -> None:
    assert bool(alerts_of(RULE, run(stays(gap_hours)))) is alerted


def test_the_alert_names_both_institutions() -> None:
    (alert,) = alerts_of(RULE, run(stays(10)))
    assert alert.severity == "high"
    assert (alert.subject.kind, alert.subject.id) == ("patient", "P1")
    assert alert.event_ids == ("d1", "a2")
    assert alert.details["discharge_institution_id"] == "H1"
    assert alert.details["admission_institution_id"] == "H2"
    assert "H1" in alert.message and "H2" in alert.message


def test_freezes_the_readmitting_institution_until_the_end_of_the_local_day() -> None:
    (command,) = run(stays(10)).commands  # admitted 2026-03-05 18:00 +08:00
    assert command.action == "FREEZE"
    assert (command.scope.kind, command.scope.id) == ("institution", "H2")
    assert command.effective_from == "2026-03-05T18:00:00+08:00"
    assert command.expires_at == "2026-03-06T00:00:00+08:00"


def test_same_institution_readmission_counts_too() -> None:
    (alert,) = alerts_of(RULE, run(stays(3, second_inst="H1")))
    assert alert.details["same_institution"] is True


def test_a_duplicate_admission_changes_nothing() -> None:
    events = stays(5)
    result = run([*events, events[-1]])
    assert len(result.alerts) == 1 and len(result.commands) == 1


def test_out_of_order_discharge_within_lateness_gives_the_same_alert() -> None:
    events = stays(0.5)  # admission 30 minutes after the discharge
    reordered = [events[0], events[2], events[1]]
    assert [a.alert_id for a in run(reordered).alerts] == [a.alert_id for a in run(events).alerts]
    assert len(run(reordered).alerts) == 1


def test_a_discharge_later_than_the_lateness_is_dead_lettered() -> None:
    events = stays(5)
    result = run([events[0], events[2], events[1]])  # discharge arrives 5 h behind
    assert result.alerts == []
    assert result.rejection is not None and result.rejection.reason == "late"


def test_stays_carry_no_price_so_the_amount_is_null_and_article_15_is_cited() -> None:
    (alert,) = alerts_of(RULE, run(stays(10)))
    assert alert.amount is None
    assert alert.behaviour == "分解住院"
    assert alert.legal_basis == "《医疗保障基金使用监督管理条例》第十五条、第三十八条第一项"


def readmitted(**fields: object) -> list:
    """A discharge and a readmission 10 h later, the readmission with `fields`."""
    fields.setdefault("diagnosis_code", "K35.8")
    return [
        admission("a1", 0, stay="S1", inst="H1"),
        discharge("d1", 96, stay="S1", inst="H1"),
        admission("a2", 106, stay="S2", inst="H2", **fields),
    ]


@pytest.mark.parametrize(("planned", "alerted"), [(True, False), (False, True)])
def test_an_admission_flagged_planned_is_exempt(planned: bool, alerted: bool) -> None:
    assert bool(alerts_of(RULE, run(readmitted(planned=planned)))) is alerted


def test_the_planned_flag_is_ignored_when_the_region_does_not_trust_it() -> None:
    config = with_rule(RULE, exempt_planned="false")
    assert alerts_of(RULE, run(readmitted(planned=True), config))


@pytest.mark.parametrize(
    ("diagnosis", "alerted"),
    [
        ("Z51.1", False),  # chemotherapy session for a neoplasm
        ("z511", False),
        ("Z51.102", False),
        ("Z51.0", False),  # radiotherapy session
        ("Z51.3", True),  # a blood transfusion is no planned cycle
        ("Z5", True),
        ("C50.9", True),
    ],
)
def test_an_admission_for_a_planned_diagnosis_is_exempt(diagnosis: str, alerted: bool) -> None:
    assert bool(alerts_of(RULE, run(readmitted(diagnosis_code=diagnosis)))) is alerted


def test_the_planned_diagnoses_are_a_setting() -> None:
    config = with_rule(RULE, planned_diagnoses="K35")
    assert not alerts_of(RULE, run(readmitted(), config))  # K35.8 now planned
    assert alerts_of(RULE, run(readmitted(diagnosis_code="Z51.1"), config))


def test_an_unplanned_readmission_after_a_planned_stay_alerts() -> None:
    events = [
        admission("a1", 0, stay="S1", inst="H1", planned=True, diagnosis_code="Z51.1"),
        discharge("d1", 96, stay="S1", inst="H1", diagnosis_code="Z51.1"),
        admission("a2", 106, stay="S2", inst="H1", diagnosis_code="D70"),
    ]
    (alert,) = alerts_of(RULE, run(events))
    assert alert.event_ids == ("d1", "a2")


def test_an_empty_text_clears_the_planned_diagnoses() -> None:
    config = with_rule(RULE, planned_diagnoses="")
    assert alerts_of(RULE, run(readmitted(diagnosis_code="Z51.1"), config))
    assert not alerts_of(RULE, run(readmitted(planned=True), config))  # the flag still exempts


def test_a_redelivered_planned_admission_stays_exempt() -> None:
    events = readmitted(planned=True)
    assert not alerts_of(RULE, run([*events, events[-1]]))
