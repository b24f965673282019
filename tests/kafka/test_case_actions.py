"""Case actions from untrusted input (the CLI's and the API's shared builders), and their
records on the actions topic: keyed by case id, signed like any person's action."""

from __future__ import annotations

from datetime import timedelta, timezone

import orjson
import pytest

from claimstream.cases.actions import case_action_from_dict
from claimstream.kafka.actions import encode_action
from claimstream.kafka.case_actions import (
    advance_from_input,
    decide_from_input,
    open_from_input,
    recover_from_input,
)
from claimstream.sanctions.signatures import ActionSigner, ActionVerifier, Keyring, TrustedKey

UTC8 = timezone(timedelta(hours=8))
AT = "2026-03-02T10:00:00+08:00"


def test_a_case_action_is_keyed_by_its_case_id_and_signed():
    signer = ActionSigner.generate()
    action = advance_from_input("case-1", "li.na", to="appeal", at=AT, tz=UTC8)
    key, value = encode_action(action, signer)
    record = orjson.loads(value)
    assert key == b"case-1"
    verify = ActionVerifier(lambda: Keyring.of([TrustedKey("api", signer.public_key, True)]))
    assert verify.check(record) == "api"
    assert case_action_from_dict(record) == action


def test_an_institution_case_names_its_institution():
    assert open_from_input("institution:H1", "li.na", at=AT, tz=UTC8).institution_id == "H1"


def test_a_case_is_not_opened_for_one_drug():
    with pytest.raises(ValueError, match="not for one drug"):
        open_from_input("doctor:D1:X01", "li.na", at=AT, tz=UTC8)


@pytest.mark.parametrize(
    ("outcome", "nature", "amount", "message"),
    [
        ("confirmed", None, 10, "needs a nature"),
        ("partly_confirmed", "operational_error", 0, "amount > 0"),
        ("not_confirmed", "operational_error", 0, "takes no nature"),
        ("guilty", None, 0, "outcome must be"),
        ("confirmed", "malice", 10, "nature must be"),
    ],
)
def test_a_bad_decision_is_refused_before_publishing(outcome, nature, amount, message):
    with pytest.raises(ValueError, match=message):
        decide_from_input("case-1", outcome, "w", nature=nature, confirmed_amount=amount, tz=UTC8)


def test_an_amount_given_as_text_is_read():
    money = recover_from_input("case-1", "recovered", "12.5", "fin", at=AT, tz=UTC8)
    assert money.amount == 12.5


@pytest.mark.parametrize("case_id", ["", "case 1", "x" * 200])
def test_a_bad_case_id_is_refused(case_id):
    with pytest.raises(ValueError, match="case_id"):
        advance_from_input(case_id, "li.na", tz=UTC8)


def test_an_unknown_step_is_refused():
    with pytest.raises(ValueError, match="to must be"):
        advance_from_input("case-1", "li.na", to="trial", tz=UTC8)


def test_a_partly_confirmed_decision_carries_the_alerts_it_confirms_to_its_record():
    decision = decide_from_input(
        "case-1", "partly_confirmed", "w", nature="operational_error", confirmed_amount=10,
        confirmed_alerts=["alr-1", "alr-2"], at=AT, tz=UTC8,
    )  # fmt: skip
    assert decision.confirmed_alerts == ("alr-1", "alr-2")
    record = orjson.loads(encode_action(decision, None)[1])
    assert case_action_from_dict(record) == decision


@pytest.mark.parametrize(
    ("outcome", "named", "message"),
    [
        ("confirmed", ["alr-1"], "confirmed_alerts goes only with a partly_confirmed decision"),
        ("partly_confirmed", "alr-1", "confirmed_alerts must be a list of alert ids"),
        ("partly_confirmed", [7], "confirmed_alerts must be a list of alert ids"),
        ("partly_confirmed", [" "], "confirmed_alerts holds an empty alert id"),
        ("partly_confirmed", ["alr:1"], "confirmed_alerts contains ':'"),
        ("partly_confirmed", ["alr-1", "alr-1"], "confirmed_alerts names the alert alr-1 twice"),
    ],
)
def test_bad_confirmed_alerts_are_refused_naming_the_field(outcome, named, message):
    with pytest.raises(ValueError, match=message):
        decide_from_input(
            "case-1", outcome, "w", nature="operational_error", confirmed_amount=10,
            confirmed_alerts=named, tz=UTC8,
        )  # fmt: skip
