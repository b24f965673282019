import pytest

from claimstream.model.indicators import Distribution, Figures, InstitutionMonth, percentile


def test_percentile_interpolates_between_closest_ranks_like_a_spreadsheet() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 80) == pytest.approx(4.2)
    assert percentile([10.0], 80) == 10.0


def test_percentile_refuses_no_values_and_out_of_range_ranks() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_distribution_sorts_its_values_first() -> None:
    d = Distribution.of([5.0, 1.0, 3.0])
    assert (d.count, d.mean, d.median) == (3, 3.0, 3.0)


def test_an_institution_month_survives_a_json_round_trip() -> None:
    month = InstitutionMonth(
        "H001",
        "tertiary:310100",
        "2026-03",
        Figures(visits=2, claims=2, total_amount=300.0, indicators={"cost_per_visit": 150.0}),
        {"D01": Figures(visits=1, claims=1, total_amount=100.0)},
    )
    assert InstitutionMonth.from_dict(month.to_dict()) == month
    assert month.record_id == "H001/2026-03"
