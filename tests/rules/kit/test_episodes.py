"""rules.kit.episodes: "at least N within D", one alert per episode, and what expiry keeps."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest

from claimstream.rules.kit.episodes import Episodes
from claimstream.rules.kit.rows import Row

#: a test row: (ts, event_id, value); counted as rows, distinct values or summed values
Test = tuple[float, str, int]


def distinct(rows: Sequence[Row]) -> float:
    return len({row[2] for row in rows})


def summed(rows: Sequence[Row]) -> float:
    return float(sum(row[2] for row in rows))


def rows_at(*times: float) -> list[Test]:
    return [(ts, f"e{n:03d}", 1) for n, ts in enumerate(times)]


def starts(episodes: Episodes, rows: Sequence[Test], *, lateness: float = 0.0) -> list[str]:
    """The ids of the rows alerted as episode starts, expiring after each row as the engine
    may (cutoff: the latest time seen less the lateness) when `lateness` is given."""
    group: dict[str, Any] = {}
    found, latest = [], float("-inf")
    for row in rows:
        found += [window[-1][1] for window in episodes.add(group, row)]
        latest = max(latest, row[0])
        if lateness:
            episodes.expire(group, latest - lateness)
    return found


def test_one_alert_when_the_count_reaches_the_threshold() -> None:
    assert starts(Episodes(10.0, 3), rows_at(0, 1, 2, 3, 4)) == ["e002"]


def test_the_window_excludes_its_start() -> None:
    assert starts(Episodes(10.0, 3), rows_at(0, 5, 10)) == []
    assert starts(Episodes(10.0, 3), rows_at(0, 5, 9.99)) == ["e002"]


def test_a_steady_count_at_the_threshold_is_one_episode() -> None:
    # every window of 10 holds exactly 3 rows from the third on
    assert starts(Episodes(10.0, 3), rows_at(*range(0, 100, 4))) == ["e002"]


def test_a_dip_below_the_threshold_ends_the_episode() -> None:
    assert starts(Episodes(10.0, 3), rows_at(0, 1, 2, 30, 31, 32)) == ["e002", "e005"]


def test_a_gap_of_a_whole_window_ends_an_episode_even_at_a_threshold_of_one() -> None:
    assert starts(Episodes(10.0, 1), rows_at(0, 5, 15, 25)) == ["e000", "e002", "e003"]


def test_the_window_of_an_alert_runs_from_its_first_row_to_the_start() -> None:
    group: dict[str, Any] = {}
    episodes = Episodes(10.0, 2, summed)
    assert episodes.add(group, (0.0, "a", 1)) == []
    assert episodes.add(group, (1.0, "b", 5)) == [((0.0, "a", 1), (1.0, "b", 5))]


def test_a_redelivered_row_changes_nothing() -> None:
    group: dict[str, Any] = {}
    episodes = Episodes(10.0, 2)
    for row in rows_at(0, 1):
        episodes.add(group, row)
    held = dict(group)
    assert episodes.add(group, rows_at(0, 1)[1]) == []
    assert group == held


def test_a_late_row_that_completes_the_count_alerts_at_its_place_in_time() -> None:
    late_first = [rows_at(0, 1, 2)[i] for i in (1, 2, 0)]
    assert starts(Episodes(10.0, 3), late_first) == ["e002"]


def _stream(seed: int, lateness: float) -> list[Test]:
    rng = random.Random(seed)
    ts, rows = 0.0, []
    for n in range(400):
        ts += rng.expovariate(1.0)  # about ten rows a window of 10
        rows.append((round(ts, 3), f"e{n:04d}", rng.randrange(4)))
    # delivered out of order, each within `lateness` of the latest before it
    jitter = {row[1]: rng.uniform(0, lateness) for row in rows}
    return sorted(rows, key=lambda row: row[0] + jitter[row[1]])


@pytest.mark.parametrize(
    ("threshold", "count"),
    [(12, None), (4, distinct), (18, summed)],
    ids=["rows", "distinct", "summed"],
)
@pytest.mark.parametrize("seed", range(10))
def test_expiring_at_the_cutoff_never_changes_the_episodes(
    threshold: float, count: Any, seed: int
) -> None:
    episodes = Episodes(10.0, threshold) if count is None else Episodes(10.0, threshold, count)
    rows = _stream(seed, lateness=3.0)
    kept = starts(episodes, rows, lateness=3.0)
    assert kept == starts(episodes, rows)
    assert len(kept) > 3  # the threshold is crossed back and forth


@pytest.mark.parametrize(("threshold", "first_kept"), [(5, 30), (100, 31)])
def test_expiry_keeps_the_window_of_the_last_row_before_the_cutoff_only_in_an_episode(
    threshold: float, first_kept: float
) -> None:
    group: dict[str, Any] = {}
    episodes = Episodes(10.0, threshold)
    for row in rows_at(*range(50)):  # one a unit of time, ten a window
        episodes.add(group, row)
    episodes.expire(group, 40.0)  # the last row before it: 39, whose window starts after 29
    assert group["rows"][0][0] == first_kept


def test_an_idle_group_empties_once_a_window_has_passed() -> None:
    group: dict[str, Any] = {}
    episodes = Episodes(10.0, 2)
    for row in rows_at(0, 1, 2):
        episodes.add(group, row)
    episodes.expire(group, 11.9)
    assert episodes.size(group) == 3  # 2 is the last row before the cutoff, within a window
    episodes.expire(group, 12.0)
    assert group == {}


def test_the_alerted_ids_go_with_their_rows() -> None:
    group: dict[str, Any] = {}
    episodes = Episodes(10.0, 2)
    for row in rows_at(0, 1, 30, 31):
        episodes.add(group, row)
    assert group["alerted"] == ("e001", "e003")
    episodes.expire(group, 32.0)
    assert group["alerted"] == ("e003",)
