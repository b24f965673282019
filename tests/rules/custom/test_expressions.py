import dataclasses

import pytest

from claimstream.model.config import ConfigError
from claimstream.reference.loader import ReferenceData
from claimstream.rules.custom.expressions import (
    MISSING,
    compile_event_expression,
    compile_message,
    event_fields,
    reference_lists,
)
from claimstream.testing import consultation, dispense
from tests.rules._catalogue import claim, item

LISTS = {"hospitals": ("H1", "H2")}


def compiled(text: str, result: str = "bool", event_types: tuple[str, ...] = ("claim",)):
    return compile_event_expression(
        text, event_types=event_types, lists=LISTS, result=result, where="custom_rules.r.filter"
    )


def test_a_filter_reads_contract_fields_and_lists() -> None:
    expression = compiled("event.total_amount > 1000.0 && event.institution_id in lists.hospitals")
    assert expression.evaluate(claim("c1", 0, total=1500.0, inst="H2")) is True


def test_a_filter_is_false_for_an_institution_outside_the_list() -> None:
    expression = compiled("event.total_amount > 1000.0 && event.institution_id in lists.hospitals")
    assert expression.evaluate(claim("c1", 0, total=1500.0, inst="H9")) is False


def test_an_evaluation_is_given_only_the_fields_and_lists_its_text_names() -> None:
    expression = compiled("event.total_amount > 1000.0 && event.institution_id in lists.hospitals")
    names = [name for name, _ in expression.getters]
    assert (names, list(expression.constants)) == (
        ["event.institution_id", "event.total_amount"],
        ["lists.hospitals"],
    )


def test_claim_items_are_a_list_of_maps() -> None:
    expression = compiled(
        'event.items.filter(i, i.category == "exam").map(i, i.code)', result="any"
    )
    event = claim("c1", 0, items=[item("CT1"), item("D1", "drug"), item("MR1")])
    assert expression.evaluate(event) == ["CT1", "MR1"]


def test_an_absent_optional_field_is_null() -> None:
    expression = compiled("event.atc_code == null", event_types=("dispense",))
    assert expression.evaluate(dispense("d1", 0)) is True


def test_a_run_time_error_is_missing_not_an_exception() -> None:
    expression = compiled("event.atc_code.startsWith('C')", event_types=("dispense",))
    assert expression.evaluate(dispense("d1", 0)) is MISSING


def test_a_guarded_optional_field_never_fails() -> None:
    expression = compiled(
        "event.atc_code != null && event.atc_code.startsWith('C')", event_types=("dispense",)
    )
    assert expression.evaluate(dispense("d1", 0)) is False


def test_a_field_of_only_some_event_types_is_dyn() -> None:
    fields = event_fields(("dispense", "claim"))
    assert (fields["drug_code"], fields["patient_id"]) == ("dyn", "string")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("event.total_amount > 1000", "no matching overload for '_>_' applied to '(double, int)'"),
        ("event.nosuch == 1", "undeclared reference to 'event.nosuch'"),
        ("lists.nosuch == []", "undeclared reference to 'lists.nosuch'"),
        ("event.total_amount", "must be a bool, but 'event.total_amount' is DOUBLE"),
        ("event.total_amount >", "Syntax error"),
        ("   ", "must be a non-empty CEL expression"),
    ],
)
def test_an_invalid_expression_is_refused_naming_the_rule_and_field(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=r"^custom_rules\.r\.filter") as refused:
        compiled(text)
    assert says in str(refused.value)


def test_a_field_of_another_event_type_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"undeclared reference to 'event\.drug_code'"):
        compiled("event.drug_code == 'X'", event_types=("consultation",))


def test_an_expression_sees_no_clock_or_other_variable() -> None:
    with pytest.raises(ConfigError, match="undeclared reference to 'now'"):
        compiled("now > 0")


def test_a_message_reads_the_finding() -> None:
    message = compile_message(
        '"patient " + finding.key + ": " + string(finding.count)', where="custom_rules.r.message"
    )
    assert message.evaluate_with({"finding.key": "P1", "finding.count": 3}) == "patient P1: 3"


def test_a_message_must_be_a_string() -> None:
    with pytest.raises(ConfigError, match=r"custom_rules\.r\.message: must be a string"):
        compile_message("finding.count", where="custom_rules.r.message")


def test_reference_lists_name_drug_classes_levels_and_exams() -> None:
    lists = reference_lists(ReferenceData.load())
    assert {"chronic_atc", "chronic_drugs", "special_exams", "tertiary_institutions"} <= set(lists)


def test_a_consultation_mode_is_a_string() -> None:
    expression = compiled('event.mode == "online"', event_types=("consultation",))
    assert expression.evaluate(consultation("c1", 0)) is True


@pytest.mark.parametrize(
    "text",
    [
        "true",
        "event.total_amount > 1000.0",
        "event.total_amount <= 1000.0",
        'event.visit_type == "outpatient"',
        "event.visit_type != 'inpatient'",
        "event.fund_amount",
        "event.diagnosis_code",
        "event.items",
    ],
)
@pytest.mark.parametrize("total", [999.0, 1000.0, 1500.0])
def test_the_python_fast_path_gives_what_cel_gives(text: str, total: float) -> None:
    expression = compiled(text, result="any")
    assert expression.fast is not None
    ev = claim("c1", 0, total=total, fund_amount=total / 2, items=[item("CT1")])
    assert expression.evaluate(ev) == dataclasses.replace(expression, fast=None).evaluate(ev)


def test_a_comparison_of_an_optional_field_is_left_to_cel() -> None:
    assert compiled('event.diagnosis_code == "I10"').fast is None


def test_an_unknown_field_is_refused_with_the_fields_there_are() -> None:
    with pytest.raises(ConfigError) as refused:
        compiled('event.mood == "online"', event_types=("consultation",))
    assert str(refused.value).endswith(
        "event: consultation_id, department_id, doctor_id, event_id, event_type, "
        "institution_id, mode, occurred_at, patient_age, patient_gender, patient_id"
    )


@pytest.mark.parametrize(
    "text",
    [
        "true",
        "event.total_amount > 1000.0",
        'event.visit_type == "outpatient"',
        "event.total_amount > 1000.0 && event.institution_id in lists.hospitals",
        'has(event.diagnosis_code) && event.diagnosis_code.startsWith("I")',
    ],
)
@pytest.mark.parametrize("total", [999.0, 1000.0, 1500.0])
def test_a_filters_tester_says_what_its_value_says(text: str, total: float) -> None:
    expression = compiled(text)
    ev = claim("c1", 0, total=total, inst="H2" if total > 1000 else "H9", diagnosis_code="I10")
    assert bool(expression.tester()(ev)) is (expression.evaluate(ev) is True)
