"""Responsibility roll-up: an institution's departments and doctors ranked, with evidence."""

from __future__ import annotations

from claimstream.sanctions import rollup
from tests.sanctions.support import alert

ALERTS = [
    alert("a1", 0, department="CARD", doctor="D1", amount=1_000),
    alert("a2", 1, department="CARD", doctor="D2", amount=9_000),
    alert("a3", 2, department="CARD", doctor="D1", amount=500),
    alert("a4", 3, department="ORTH", doctor="D3", amount=20_000),
    alert("a5", 4, department="ORTH", doctor="D3", amount=100),
    alert("a6", 5, department=None, doctor=None),
    alert("a7", 6, institution="H2", department="CARD", doctor="D1"),  # another institution
    alert("a1", 0, department="CARD", doctor="D1", amount=1_000),  # a duplicate
]


def ids(*names: str) -> tuple[str, ...]:
    return tuple(alert(n, 0).alert_id for n in names)


def test_departments_and_doctors_ranked_by_alerts_then_amount_with_evidence() -> None:
    result = rollup(ALERTS, "H1")
    assert (result.alerts, result.amount) == (6, 30_600)
    assert [(d.id, d.alerts, d.amount) for d in result.departments] == [
        ("CARD", 3, 10_500),
        ("ORTH", 2, 20_100),
        (None, 1, 0),
    ]
    card = result.departments[0]
    assert [(d.id, d.alerts) for d in card.doctors] == [("D1", 2), ("D2", 1)]
    assert card.alert_ids == ids("a1", "a2", "a3")  # in event-time order
    assert [(d.id, d.alerts, d.amount) for d in result.doctors] == [
        ("D3", 2, 20_100),  # tied on alerts: the larger amount first
        ("D1", 2, 1_500),
        ("D2", 1, 9_000),
        (None, 1, 0),
    ]
    assert result.doctors[0].alert_ids == ids("a4", "a5")


def test_refuted_alerts_can_be_left_out() -> None:
    result = rollup(ALERTS, "H1", exclude=set(ids("a4", "a5")))
    assert [d.id for d in result.departments] == ["CARD", None]


def test_to_dict_is_the_api_shape() -> None:
    shape = rollup(ALERTS, "H1").to_dict()
    assert shape["departments"][0]["doctors"][0] == {
        "id": "D1",
        "alerts": 2,
        "amount": 1_500,
        "alert_ids": list(ids("a1", "a3")),
    }
    assert rollup([], "H1").to_dict()["departments"] == []
