"""peer_outlier: an institution far above its peer group for consecutive months (issue #15).

Driven through the peer stage (`detection.peers`) with hand-built monthly records: twelve
tertiary institutions at 100 yuan per visit, one of them `share` above the group's mean (the
mean includes it: x = (1 + share) * (1100 + x) / 12)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from claimstream.detection.config import DetectionConfig
from claimstream.detection.engine import Engine
from claimstream.detection.peers import PeerStage
from claimstream.model.config import ConfigError
from claimstream.model.indicators import Figures, InstitutionMonth
from claimstream.model.outputs import Alert
from claimstream.testing import with_rule

MONTHS = ("2026-01", "2026-02", "2026-03", "2026-04", "2026-05")
GROUP = "tertiary:330100"


def above_mean(share: float, others: int = 11, base: float = 100.0) -> float:
    """The value that is `share` above the mean of itself and `others` at `base`."""
    return (1 + share) * others * base / (others + 1 - (1 + share))


def month(
    institution: str,
    label: str,
    cost: float,
    *,
    visits: int = 100,
    group: str = GROUP,
    departments: dict[str, Figures] | None = None,
) -> InstitutionMonth:
    figures = Figures(
        visits=visits,
        claims=visits,
        total_amount=cost * visits,
        fund_amount=cost * visits * 0.7,
        indicators={"cost_per_visit": cost},
    )
    return InstitutionMonth(institution, group, label, figures, departments or {})


def stage(config: DetectionConfig | None = None) -> PeerStage:
    return PeerStage(Engine(config or DetectionConfig.default(), None))


def feed(records: list[InstitutionMonth], config: DetectionConfig | None = None) -> list[Alert]:
    peers = stage(config)
    states: dict[str, Any] = {}
    alerts: list[Alert] = []
    for record in records:
        state = states.setdefault(record.peer_group, peers.new_state())
        alerts += peers.on_record(state, record).result.alerts
    return alerts


def group_months(
    high: dict[str, float], size: int = 12, visits: int = 100, months: int = 3
) -> list[InstitutionMonth]:
    """`size` institutions over `months` months, H01 at `high[label]` (else 100), then one
    record of the next month, which closes the last."""
    records = [
        month(f"H{n:02d}", label, high.get(label, 100.0) if n == 1 else 100.0, visits=visits)
        for label in MONTHS[:months]
        for n in range(1, size + 1)
    ]
    return [*records, month("H02", MONTHS[months], 100.0)]


def test_46_percent_above_the_mean_for_3_consecutive_months_alerts() -> None:
    value = above_mean(0.46)
    alerts = feed(group_months(dict.fromkeys(MONTHS[:3], value)))
    assert [(a.rule, a.institution_id, a.details["months"]) for a in alerts] == [
        ("peer_outlier", "H01", ["2026-01", "2026-02", "2026-03"])
    ]
    details = alerts[0].details
    assert details["indicator"] == "cost_per_visit"
    assert details["values"] == [round(value, 6)] * 3
    assert details["group"][0]["count"] == 12
    assert details["group"][0]["mean"] == pytest.approx(value / 1.46)


def test_only_2_consecutive_months_do_not_alert() -> None:
    value = above_mean(0.46)
    assert feed(group_months({"2026-02": value, "2026-03": value})) == []


def test_44_percent_above_the_mean_does_not_alert() -> None:
    assert feed(group_months(dict.fromkeys(MONTHS[:3], above_mean(0.44)))) == []


def test_45_percent_exactly_does_not_alert() -> None:
    assert feed(group_months(dict.fromkeys(MONTHS[:3], above_mean(0.45)))) == []


def test_below_the_minimum_volume_does_not_alert() -> None:
    high = dict.fromkeys(MONTHS[:3], above_mean(0.46))
    assert feed(group_months(high, visits=29)) == []
    assert len(feed(group_months(high, visits=30))) == 1


def test_a_group_below_the_minimum_size_does_not_alert() -> None:
    high = dict.fromkeys(MONTHS[:3], above_mean(0.8, others=3))
    assert feed(group_months(high, size=4)) == []
    config = with_rule("peer_outlier", min_group_size=4)
    assert len(feed(group_months(high, size=4), config)) == 1


def test_a_run_alerts_once_however_long_it_lasts() -> None:
    high = dict.fromkeys(MONTHS[:4], above_mean(0.46))
    assert len(feed(group_months(high, months=4))) == 1


def test_the_alert_is_not_made_before_a_later_months_record_closes_the_month() -> None:
    records = group_months(dict.fromkeys(MONTHS[:3], above_mean(0.46)))
    assert feed(records[:-1]) == []


def test_a_redelivered_record_changes_nothing_and_a_late_one_is_dropped() -> None:
    records = group_months(dict.fromkeys(MONTHS[:3], above_mean(0.46)))
    peers, state = stage(), PeerStage.new_state()
    steps = [peers.on_record(state, r) for r in records]
    assert sum(len(s.result.alerts) for s in steps) == 1
    assert peers.on_record(state, records[0]).outcome == "duplicate"
    assert peers.on_record(state, records[-2]).outcome == "duplicate"
    late = peers.on_record(state, month("H99", "2026-03", 1.0))
    assert (late.outcome, late.result.alerts) == ("late", [])
    assert peers.on_record(state, records[-1]).result.alerts == []


def test_the_amount_is_the_excess_over_the_mean_times_the_visits() -> None:
    value = above_mean(0.46)
    [alert] = feed(group_months(dict.fromkeys(MONTHS[:3], value)))
    assert alert.amount == round(3 * (value - value / 1.46) * 100, 2)


def test_the_department_contributing_most_is_named() -> None:
    value = above_mean(0.46)
    departments = {
        "DEP-A": Figures(visits=50, total_amount=50 * 100.0, indicators={"cost_per_visit": 100.0}),
        "DEP-B": Figures(visits=50, total_amount=50 * 300.0, indicators={"cost_per_visit": 300.0}),
    }
    records = [
        month("H01", label, value, departments=departments)
        if r.institution_id == "H01" and label == r.month
        else r
        for r in group_months(dict.fromkeys(MONTHS[:3], value))
        for label in [r.month]
    ]
    [alert] = feed(records)
    assert (alert.department_id, alert.details["department"]) == ("DEP-B", "DEP-B")


def test_a_secondary_is_compared_with_secondaries_only() -> None:
    # 12 tertiaries at 300, 6 secondaries at 100 and one secondary far above them: it is
    # below the tertiaries' and the whole region's figures, but an outlier among secondaries.
    value = above_mean(0.6, others=6)
    records = [
        month(f"S{n}", label, value if n == 0 else 100.0, group="secondary:330100")
        for label in MONTHS[:3]
        for n in range(7)
    ] + [month(f"T{n}", label, 300.0) for label in MONTHS[:3] for n in range(12)]
    records.append(month("S1", MONTHS[3], 100.0, group="secondary:330100"))
    records.append(month("T1", MONTHS[3], 300.0))
    assert [a.institution_id for a in feed(records)] == ["S0"]


def test_the_unknown_group_is_never_compared() -> None:
    records = [
        month(f"H{n:02d}", r.month, r.figures.indicators["cost_per_visit"], group="unknown")
        for n, r in enumerate(group_months(dict.fromkeys(MONTHS[:3], above_mean(0.9))))
    ]
    assert feed(records) == []


@pytest.mark.parametrize(
    ("criterion", "share", "alerts"),
    [("both", 0.44, 0), ("either", 0.44, 1), ("percentile", 0.2, 1), ("mean", 0.46, 1)],
)
def test_the_criterion_chooses_percentile_mean_or_both(
    criterion: str, share: float, alerts: int
) -> None:
    config = with_rule("peer_outlier", criterion=criterion)
    records = group_months(dict.fromkeys(MONTHS[:3], above_mean(share)))
    assert len(feed(records, config)) == alerts


def test_in_shadow_mode_the_alert_is_a_shadow_alert() -> None:
    peers = stage(with_rule("peer_outlier", mode="shadow"))
    state = peers.new_state()
    found = [
        peers.on_record(state, r).result
        for r in group_months(dict.fromkeys(MONTHS[:3], above_mean(0.46)))
    ]
    assert sum(len(r.shadow_alerts) for r in found) == 1
    assert sum(len(r.alerts) for r in found) == 0


def test_a_group_keeps_its_last_13_months() -> None:
    peers, state = stage(), PeerStage.new_state()
    for n in range(20):
        peers.on_record(state, month("H01", f"{2025 + n // 12}-{n % 12 + 1:02d}", 100.0))
    assert len(state["months"]) == 13


def test_every_setting_can_be_set_from_text() -> None:
    config = DetectionConfig.default()
    settings = config.rules["peer_outlier"]
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        text = ",".join(value) if isinstance(value, tuple) else str(value).lower()
        changed = config.with_rule_changes("peer_outlier", {field.name: text})
        assert getattr(changed.rules["peer_outlier"], field.name) == value, field.name


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"percentile": "100"}, "percentile"),
        ({"above_mean": "0"}, "above_mean"),
        ({"consecutive_months": "0"}, "consecutive_months"),
        ({"min_group_size": "-1"}, "min_group_size"),
        ({"indicators": "cost_per_visit,bed_days"}, "bed_days"),
        ({"months_kept": "4"}, "months_kept"),
        ({"criterion": "some"}, "criterion"),
    ],
)
def test_an_impossible_setting_is_refused(changes: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        DetectionConfig.default().with_rule_changes("peer_outlier", changes)


def test_the_indicators_compared_can_be_narrowed() -> None:
    config = with_rule("peer_outlier", indicators="drug_share")
    assert feed(group_months(dict.fromkeys(MONTHS[:3], above_mean(0.9))), config) == []


def test_months_of_the_unknown_group_are_not_counted_as_compared() -> None:
    peers, state = stage(), PeerStage.new_state()
    records = [month(f"H{n:02d}", "2026-01", 100.0, group="unknown") for n in range(12)]
    steps = [
        peers.on_record(state, r) for r in [*records, month("H01", "2026-02", 1.0, group="unknown")]
    ]
    assert sum(s.evaluated for s in steps) == 0
    assert [s.closed for s in steps][-1] == ["2026-01"]
