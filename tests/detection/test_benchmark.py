"""The benchmark an institution is shown (`claimstream.detection.benchmark`), on peer groups
built by hand: the numbers can be checked with a spreadsheet."""

from __future__ import annotations

import pytest

from claimstream.detection.benchmark import (
    TREND_MONTHS,
    BadMonth,
    MemoryMonths,
    UnknownInstitution,
    UnknownMonth,
    benchmark,
    from_source,
    months_ending,
    position,
)
from claimstream.model.indicators import INDICATORS, Figures, InstitutionMonth

GROUP = "tertiary:330100"


def month_of(
    institution: str,
    month: str,
    cost_per_stay: float | None,
    *,
    group: str = GROUP,
    stays: int = 40,
    departments: dict[str, Figures] | None = None,
) -> InstitutionMonth:
    indicators = {"drug_share": 0.3}
    if cost_per_stay is not None:
        indicators["cost_per_stay"] = cost_per_stay
    figures = Figures(stays=stays, claims=stays, indicators=indicators)
    return InstitutionMonth(institution, group, month, figures, departments or {})


def group_of(month: str, costs: dict[str, float]) -> list[InstitutionMonth]:
    return [month_of(i, month, c) for i, c in costs.items()]


#: five tertiaries in March: H1 the most costly
MARCH = {"H1": 15000.0, "H2": 10000.0, "H3": 9000.0, "H4": 11000.0, "H5": 8000.0}


def test_each_indicator_stands_beside_the_groups_count_mean_median_and_80th_percentile() -> None:
    found = benchmark("H1", "2026-03", group_of("2026-03", MARCH)).indicator("cost_per_stay")
    assert found.value == 15000.0
    assert found.peers is not None
    assert (found.peers.count, found.peers.mean, found.peers.median) == (5, 10600.0, 10000.0)
    assert found.peers.p80 == pytest.approx(11800.0)  # 11000 + 0.2 * (15000 - 11000)


def test_every_indicator_is_listed_in_the_contracts_order() -> None:
    found = benchmark("H1", "2026-03", group_of("2026-03", MARCH))
    assert [i.indicator for i in found.indicators] == list(INDICATORS)


@pytest.mark.parametrize(
    ("institution", "rank", "at"),
    [("H1", 1, 100.0), ("H4", 2, 75.0), ("H2", 3, 50.0), ("H3", 4, 25.0), ("H5", 5, 0.0)],
)
def test_rank_1_is_the_highest_value_and_the_position_is_the_percentile_rank(
    institution: str, rank: int, at: float
) -> None:
    found = benchmark(institution, "2026-03", group_of("2026-03", MARCH))
    assert found.indicator("cost_per_stay").rank == rank
    assert found.indicator("cost_per_stay").position == at


def test_tied_values_share_the_better_rank() -> None:
    costs = {"H1": 9.0, "H2": 7.0, "H3": 7.0, "H4": 1.0}
    tied = group_of("2026-03", costs)
    ranks = [benchmark(i, "2026-03", tied).indicator("cost_per_stay").rank for i in costs]
    assert ranks == [1, 2, 2, 4]


def test_the_position_is_the_percentile_the_value_sits_at() -> None:
    from claimstream.model.indicators import percentile

    ordered = sorted(MARCH.values())
    for value in ordered:
        at = position(ordered, value)
        assert at is not None and percentile(ordered, at) == pytest.approx(value)


def test_a_group_of_one_has_no_position() -> None:
    alone = benchmark("H1", "2026-03", group_of("2026-03", {"H1": 5.0}))
    assert alone.indicator("cost_per_stay").position is None
    assert alone.indicator("cost_per_stay").rank == 1


def test_46_percent_above_the_mean_reads_as_such_and_above_the_80th_percentile() -> None:
    # 11 institutions at 10000 and H12 at X: X is 46 % above the mean when
    # X = 1.46 * (110000 + X) / 12, i.e. X = 160600 / 10.54
    costs = {f"H{i}": 10000.0 for i in range(1, 12)} | {"H12": 160600.0 / 10.54}
    found = benchmark("H12", "2026-03", group_of("2026-03", costs)).indicator("cost_per_stay")
    assert found.vs_mean == pytest.approx(0.46)
    assert found.above_p80 is True


def test_an_institution_at_the_80th_percentile_is_not_above_it() -> None:
    costs = {f"H{i}": float(i) for i in range(1, 7)}  # 1..6: p80 = 5
    found = benchmark("H5", "2026-03", group_of("2026-03", costs)).indicator("cost_per_stay")
    assert found.peers is not None and found.peers.p80 == 5.0
    assert found.above_p80 is False


def test_an_undefined_indicator_has_no_value_and_stays_out_of_the_distribution() -> None:
    records = [*group_of("2026-03", MARCH), month_of("H6", "2026-03", None, stays=0)]
    own = benchmark("H6", "2026-03", records).indicator("cost_per_stay")
    assert (own.value, own.rank, own.position, own.above_p80) == (None, None, None, None)
    other = benchmark("H1", "2026-03", records).indicator("cost_per_stay")
    assert other.peers is not None and other.peers.count == 5
    assert benchmark("H1", "2026-03", records).members == 6


def test_an_indicator_no_member_has_has_no_distribution() -> None:
    found = benchmark("H1", "2026-03", group_of("2026-03", MARCH)).indicator("complication_rate")
    assert (found.value, found.peers, found.values) == (None, None, ())


def test_the_distribution_holds_the_groups_values_sorted_and_without_ids() -> None:
    found = benchmark("H1", "2026-03", group_of("2026-03", MARCH))
    assert found.indicator("cost_per_stay").values == (8000.0, 9000.0, 10000.0, 11000.0, 15000.0)
    assert "H2" not in str(found.to_dict()["indicators"])


def test_only_the_institutions_own_peer_group_is_compared() -> None:
    secondary = [
        month_of("S1", "2026-03", 1.0, group="secondary:330100"),
        month_of("S2", "2026-03", 99999.0, group="secondary:330100"),
    ]
    found = benchmark("H1", "2026-03", [*group_of("2026-03", MARCH), *secondary])
    assert found.peer_group == GROUP
    peers = found.indicator("cost_per_stay").peers
    assert peers is not None and peers.count == 5


def test_the_trend_covers_the_last_12_months_ending_with_the_month() -> None:
    records = [month_of("H1", f"2025-{m:02d}", 100.0 * m) for m in range(1, 13)]
    records += [month_of("H2", f"2025-{m:02d}", 50.0) for m in range(1, 13)]
    records += [month_of("H1", "2026-01", 1300.0), month_of("H2", "2026-01", 50.0)]
    trend = benchmark("H1", "2026-01", records).indicator("cost_per_stay").trend
    assert [p.month for p in trend] == months_ending("2026-01")
    assert len(trend) == TREND_MONTHS and trend[0].month == "2025-02" and trend[-1].value == 1300
    assert trend[0].value == 200.0
    assert trend[0].peers is not None and trend[0].peers.median == 125.0


def test_months_not_held_show_in_the_trend_as_gaps() -> None:
    records = [*group_of("2026-03", MARCH), month_of("H2", "2026-01", 7.0)]
    trend = benchmark("H1", "2026-03", records).indicator("cost_per_stay").trend
    by_month = {p.month: p for p in trend}
    assert by_month["2026-02"].value is None and by_month["2026-02"].peers is None
    assert by_month["2026-01"].value is None
    assert by_month["2026-01"].peers is not None and by_month["2026-01"].peers.count == 1


def test_the_departments_figures_come_with_the_month() -> None:
    cardiology = Figures(stays=12, claims=12, indicators={"cost_per_stay": 22000.0})
    records = [month_of("H1", "2026-03", 15000.0, departments={"K1": cardiology})]
    found = benchmark("H1", "2026-03", records)
    assert found.departments == {"K1": cardiology}
    assert found.to_dict()["departments"][0]["department_id"] == "K1"


def test_a_redelivered_month_replaces_the_earlier_one() -> None:
    records = [*group_of("2026-03", MARCH), month_of("H1", "2026-03", 9500.0)]
    found = benchmark("H1", "2026-03", records).indicator("cost_per_stay")
    assert found.value == 9500.0 and found.peers is not None and found.peers.count == 5


def test_an_unknown_institution_is_a_clear_error() -> None:
    with pytest.raises(UnknownInstitution, match="no month of institution H9 is held"):
        benchmark("H9", "2026-03", group_of("2026-03", MARCH))


def test_a_month_not_held_names_the_months_that_are() -> None:
    records = [*group_of("2026-03", MARCH), month_of("H1", "2026-01", 1.0)]
    with pytest.raises(UnknownMonth, match=r"no closed month 2026-04 held .*2026-01 to 2026-03"):
        benchmark("H1", "2026-04", records)


@pytest.mark.parametrize("month", ["2026-3", "2026-13", "2026-00", "March", "2026-03-01", ""])
def test_a_month_that_is_not_yyyy_mm_is_refused(month: str) -> None:
    with pytest.raises(BadMonth, match="YYYY-MM"):
        benchmark("H1", month, group_of("2026-03", MARCH))


def test_the_source_gives_the_latest_month_when_none_is_asked() -> None:
    source = MemoryMonths.of([*group_of("2026-02", MARCH), *group_of("2026-03", MARCH)])
    assert from_source(source, "H1", None).month == "2026-03"


def test_the_source_compares_within_the_group_of_the_institutions_latest_month() -> None:
    moved = month_of("H1", "2026-04", 1.0, group="secondary:330100")
    source = MemoryMonths.of([*group_of("2026-03", MARCH), moved])
    assert source.peer_group("H1") == "secondary:330100"
    assert from_source(source, "H1", "2026-04").members == 1


def test_the_source_knows_no_institution_it_holds_nothing_of() -> None:
    with pytest.raises(UnknownInstitution):
        from_source(MemoryMonths.of(group_of("2026-03", MARCH)), "H9", "2026-03")


def test_the_json_answer_round_trips_the_figures() -> None:
    answer = benchmark("H1", "2026-03", group_of("2026-03", MARCH)).to_dict()
    assert Figures.from_dict(answer["figures"]) == month_of("H1", "2026-03", 15000.0).figures
    cost = next(i for i in answer["indicators"] if i["indicator"] == "cost_per_stay")
    assert cost["ranked"] == 5 and cost["peers"]["median"] == 10000.0
    assert len(answer["trend_months"]) == TREND_MONTHS
