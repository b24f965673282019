"""out_of_scope_online_care: first visits online, and conditions outside the online scope."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from claimstream.detection.config import DetectionConfig
from claimstream.model.config import ConfigError
from claimstream.model.events import Event
from claimstream.testing import DAY_H, admission, consultation, detector, dispense
from tests.rules._catalogue import (
    alert_ids,
    alerts,
    claim,
    duplicated,
    rule_size,
    same_alerts_in_every_order,
)
from tests.rules._credentials import config

RULE = "out_of_scope_online_care"
#: T0 is 2026-03-01 08:00 local; history from 2025-09-01 covers 181 days before T0
JUDGED = {"history_from": "2025-09-01"}


@pytest.fixture
def cfg(tmp_path: Path) -> DetectionConfig:
    return config(tmp_path / "registry", RULE, **JUDGED)


def online(event_id: str, hours: float, **fields: object):  # type: ignore[no-untyped-def]
    fields.setdefault("institution_id", "IH2")
    return consultation(event_id, hours, mode="online", **fields)


def online_claim(
    event_id: str, hours: float, diagnosis: str, inst: str = "IH2", total: float = 60.0
):  # type: ignore[no-untyped-def]
    return claim(
        event_id, hours, inst=inst, visit_type="online", diagnosis_code=diagnosis, total=total
    )


def offline(event_id: str, hours: float):  # type: ignore[no-untyped-def]
    return consultation(event_id, hours, mode="offline", institution_id="H1")


def reasons(events: list, cfg: DetectionConfig) -> list[list[str]]:
    return [a.details["reasons"] for a in alerts(RULE, events, cfg)]


def test_a_first_visit_online_alerts(cfg: DetectionConfig) -> None:
    (alert,) = alerts(RULE, [online("o", 0)], cfg)
    assert alert.details["reasons"] == ["first_visit"]
    assert (alert.subject.kind, alert.subject.id) == ("patient", "P1")
    assert alert.amount is None


def test_a_follow_up_after_an_offline_visit_does_not(cfg: DetectionConfig) -> None:
    assert reasons([offline("f", 0), online("o", 30 * DAY_H)], cfg) == []


@pytest.mark.parametrize(("gap_days", "alerted"), [(180 - 1 / 1440, False), (180, True)])
def test_the_look_back_is_a_trailing_180_days(
    gap_days: float, alerted: bool, cfg: DetectionConfig
) -> None:
    events = [offline("f", 0), online("o", gap_days * DAY_H)]
    assert bool(reasons(events, cfg)) is alerted


def test_an_offline_visit_at_the_same_instant_is_not_earlier(cfg: DetectionConfig) -> None:
    assert reasons([offline("f", 5), online("o", 5)], cfg) == [["first_visit"]]


def test_an_online_claim_needs_an_offline_diagnosis_of_the_same_condition(
    cfg: DetectionConfig,
) -> None:
    diabetes = claim("c", 0, inst="H1", diagnosis_code="E11.9")
    assert reasons([diabetes, online_claim("o1", 24, "E11.65")], cfg) == []
    assert reasons([diabetes, online_claim("o2", 24, "I10")], cfg) == [["first_visit"]]


def test_an_admission_is_offline_evidence_of_its_diagnosis(cfg: DetectionConfig) -> None:
    stay = admission("a", 0, stay="S1", diagnosis_code="I10")
    assert reasons([stay, online_claim("o", 24 * 10, "I10.0")], cfg) == []


def test_an_offline_consultation_is_no_evidence_of_a_claims_condition(
    cfg: DetectionConfig,
) -> None:
    assert reasons([offline("f", 0), online_claim("o", 24, "E11")], cfg) == [["first_visit"]]


def test_without_match_condition_any_offline_visit_is_evidence(tmp_path: Path) -> None:
    cfg = config(tmp_path / "r", RULE, match_condition="false", **JUDGED)
    assert reasons([offline("f", 0), online_claim("o", 24, "E11")], cfg) == []


def test_an_earlier_online_visit_is_no_evidence(cfg: DetectionConfig) -> None:
    assert reasons([online("o1", 0), online("o2", 1)], cfg) == [["first_visit"], ["first_visit"]]


def test_a_dispensing_is_no_offline_visit(cfg: DetectionConfig) -> None:
    assert reasons([dispense("d", 0), online("o", 24)], cfg) == [["first_visit"]]


def test_first_visits_are_not_judged_without_history_from(tmp_path: Path) -> None:
    cfg = config(tmp_path / "r", RULE)
    assert reasons([online("o", 0)], cfg) == []


@pytest.mark.parametrize(("history_from", "alerted"), [("2025-09-01", True), ("2025-09-02", False)])
def test_first_visits_are_judged_only_a_whole_look_back_after_history_from(
    history_from: str, alerted: bool, tmp_path: Path
) -> None:
    # T0 (2026-03-01 08:00 local) is 181 days and 8 h after 2025-09-01 00:00 local, 180 d 8 h
    # after 2025-09-02: judged when the look-back (180 days) lies wholly inside the history
    cfg = config(tmp_path / "r", RULE, history_from=history_from, look_back_days="181")
    assert bool(reasons([online("o", 0)], cfg)) is alerted


def test_history_from_must_be_a_date() -> None:
    with pytest.raises(ConfigError, match="history_from"):
        DetectionConfig.default().with_rule_changes(RULE, {"history_from": "last spring"})


def test_a_condition_outside_the_agreements_online_conditions_alerts(tmp_path: Path) -> None:
    cfg = config(tmp_path / "r", RULE)  # no history: the condition scope alone
    ((alert),) = alerts(RULE, [online_claim("o", 0, "J18.9", inst="IH1", total=75.0)], cfg)
    assert alert.details["reasons"] == ["condition_out_of_scope"]
    assert alert.amount == 75.0
    assert reasons([online_claim("o2", 1, "E11.9", inst="IH1")], cfg) == []


def test_both_reasons_make_one_alert(cfg: DetectionConfig) -> None:
    assert reasons([online_claim("o", 0, "J18.9", inst="IH1")], cfg) == [
        ["first_visit", "condition_out_of_scope"]
    ]


def test_online_visits_give_the_same_alerts_in_every_order(cfg: DetectionConfig) -> None:
    visits = [online_claim("o1", 0.6, "E11"), online("o2", 0.4), online("o3", 0.2)]
    seen = {
        tuple(alert_ids(RULE, [offline("f", 0), *order], cfg))
        for order in itertools.permutations(visits)
    }
    assert len(seen) == 1
    assert len(next(iter(seen))) == 1  # the claim: an offline consultation shows no diagnosis


def test_online_visits_without_evidence_alert_in_every_order(cfg: DetectionConfig) -> None:
    visits = [online("o1", 0), online("o2", 0.3), online_claim("o3", 0.6, "I10")]
    assert len(same_alerts_in_every_order(RULE, visits, cfg)) == 3


def test_an_offline_visit_arriving_after_the_online_visit_it_precedes_does_not_take_back_its_alert(
    cfg: DetectionConfig,
) -> None:
    assert reasons([online("o", 0.5), offline("f", 0), online("o2", 0.8)], cfg) == [["first_visit"]]


def test_a_redelivered_online_visit_alerts_once(cfg: DetectionConfig) -> None:
    assert (
        len(
            alerts(
                RULE,
                duplicated([offline("f", 0), online("o", 1), online_claim("c", 2, "X00")]),
                cfg,
            )
        )
        == 1
    )


def held(events: list, cfg: DetectionConfig, later: Event | None = None) -> int:
    """Offline visits the rule holds over every patient after `events` (and `later` + a sweep)."""
    det = detector(cfg)
    for ev in events:
        det.process(ev)
    if later is not None:
        det.process(later)
        det.sweep()
    return rule_size(det, RULE, skip=None if later is None else later.patient_id)


def test_offline_visits_are_kept_one_look_back(cfg: DetectionConfig) -> None:
    visits = [offline("f", 0), offline("g", 1)]
    later = consultation("x", 200 * DAY_H, mode="offline", patient_id="P2")
    assert (held(visits, cfg), held(visits, cfg, later)) == (2, 0)


def test_a_redelivered_offline_visit_is_held_once(cfg: DetectionConfig) -> None:
    assert held(duplicated([offline("f", 0)]), cfg) == 1


def test_without_history_from_nothing_is_kept(tmp_path: Path) -> None:
    assert held([offline("f", 0), claim("c", 1, diagnosis_code="I10")], config(tmp_path, RULE)) == 0
