"""Ids cannot collide in composite keys: the contract's id rule and the key escaping."""

from __future__ import annotations

import pytest

from claimstream.model.ids import ID_MAX_LENGTH, id_problem, is_valid_id, key_part
from claimstream.model.outputs import Scope


@pytest.mark.parametrize(
    "value", ["P1", "H025", "D025-06", "ev-11-000000000", "E11.9", "a_b", "X" * ID_MAX_LENGTH]
)
def test_letters_digits_dot_underscore_and_dash_make_an_id(value: str) -> None:
    assert is_valid_id(value) and id_problem("patient_id", value) is None


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("PV:XA10AE04", "':'"),
        ("P 1", "' '"),
        ("H1/ward", "'/'"),
        ("P%3A1", "'%'"),
        ("病人1", "'病'"),
        ("P1\n", "'\\n'"),
        ("X" * (ID_MAX_LENGTH + 1), f"at most {ID_MAX_LENGTH}"),
    ],
)
def test_anything_else_is_not_an_id_and_the_reason_names_the_field(value: str, says: str) -> None:
    problem = id_problem("doctor_id", value)
    assert not is_valid_id(value)
    assert problem is not None and problem.startswith("doctor_id") and says in problem


@pytest.mark.parametrize("value", ["P1", "D025-06", "ev-11-000000000", "E11.9"])
def test_a_valid_id_goes_into_a_key_unchanged(value: str) -> None:
    assert key_part(value) == value


def test_a_patient_frozen_for_a_drug_and_a_patient_named_with_a_colon_have_different_keys() -> None:
    for_drug = Scope("patient", "PV", "XA10AE04").key()
    whole = Scope("patient", "PV:XA10AE04").key()
    assert for_drug == "patient:PV:XA10AE04"
    assert whole == "patient:PV%3AXA10AE04" and whole != for_drug


def test_escaping_a_key_part_never_maps_two_values_to_one() -> None:
    values = ["a:b", "a%3Ab", "a%253Ab", "a%b", "a%25b", ":", "%", "%3A", "%25"]
    assert len({key_part(v) for v in values}) == len(values)
