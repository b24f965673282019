"""Per-rule precision from reviews: confirmed / reviewed, each alert counted once."""

from __future__ import annotations

from claimstream.sanctions import precision
from tests.sanctions.support import alert, ts, verdict

# (alert, verdict, counts changed, confirmed, reviewed)
REVIEWS = [
    ("a1", "confirmed", True, 1, 1),
    ("a2", "false_positive", True, 1, 2),
    ("a1", "confirmed", False, 1, 2),  # the same verdict again
    ("a2", "confirmed", True, 2, 2),  # reversed: moves, not counted twice
    ("a1", "false_positive", True, 1, 2),
    ("a3", "confirmed", True, 2, 3),
]


def test_precision_counts() -> None:
    state = precision.new_state()
    assert precision.value(state) is None
    for name, kind, changed, confirmed, reviewed in REVIEWS:
        assert precision.on_verdict(state, verdict(alert(name, 0), kind, 1)) is changed
        assert (state["confirmed"], state["reviewed"]) == (confirmed, reviewed)
    assert precision.value(state) == 2 / 3


def test_expire_bounds_the_remembered_reviews() -> None:
    state = precision.new_state()
    precision.on_verdict(state, verdict(alert("a1", 0), "confirmed", 1))
    precision.on_verdict(state, verdict(alert("a2", 0), "confirmed", 50))
    precision.expire(state, ts(10))
    assert list(state["seen"]) == [alert("a2", 0).alert_id]
    assert (state["confirmed"], state["reviewed"]) == (2, 2)  # counts are kept
