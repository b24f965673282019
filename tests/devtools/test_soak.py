"""The soak's verdict (`claimstream.devtools.soak`) from its samples; the soak itself takes
minutes and is run by hand (`make soak`)."""

from __future__ import annotations

import pytest

from claimstream.devtools.soak import Sample, Soak


def soak(rss: list[float], lag: list[int]) -> Soak:
    result = Soak(rate=10_000, minutes=5, warmup=10)
    result.samples = [
        Sample(5.0 * n, r, g, None) for n, (r, g) in enumerate(zip(rss, lag, strict=True))
    ]
    return result


GROWING_LAG = [1000 * n for n in range(14)]


def test_rss_within_10_percent_while_the_lag_grows_is_flat() -> None:
    rss = [60, 80, 140, 141, 139, 150, 142, 141, 143, 145, 147, 146, 148, 150]
    ok, why = soak(rss, GROWING_LAG).verdict()
    assert ok, why
    assert why.startswith("flat within 10%")


def test_rss_growing_by_more_than_10_percent_is_not_flat() -> None:
    rss = [60, 80, 140, 141, 139, 150, 160, 170, 175, 180, 185, 190, 195, 200]
    ok, why = soak(rss, GROWING_LAG).verdict()
    assert not ok and why.startswith("NOT flat")


def test_a_lag_that_did_not_grow_was_no_overload() -> None:
    ok, why = soak([100.0] * 14, [500] * 14).verdict()
    assert not ok and "not above capacity" in why


def test_one_transient_peak_does_not_decide() -> None:
    rss = [60, 80, 140, 141, 139, 200, 142, 141, 143, 145, 147, 146, 148, 150]
    ok, _ = soak(rss, GROWING_LAG).verdict()
    assert ok
    assert "highest" in soak(rss, GROWING_LAG).report()


def test_the_trend_is_the_rss_growth_per_minute_after_the_warm_up() -> None:
    rss = [60, 80] + [100 + n for n in range(12)]  # +1 MB every 5 s from t=10 s
    assert soak(rss, GROWING_LAG).trend() == pytest.approx(12.0)


def test_a_flat_verdict_over_a_short_run_says_it_cannot_tell_a_slow_growth() -> None:
    rss = [60, 80, 140, 141, 139, 150, 142, 141, 143, 145, 147, 146, 148, 150]
    ok, why = soak(rss, GROWING_LAG).verdict()  # 55 s after the warm-up
    assert ok and "too short to tell a slow growth" in why


def test_a_flat_verdict_over_a_long_run_makes_no_such_reservation() -> None:
    rss = [60, 80] + [140.0] * 40  # 195 s after the warm-up
    ok, why = soak(rss, [1000 * n for n in range(42)]).verdict()
    assert ok and "too short" not in why
