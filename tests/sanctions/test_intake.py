"""The action intake the sanctions index and the cases agent share: whose a record is, its
signature, its parse, and the batch loop that dead-letters what cannot be used."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import pytest

from claimstream.model.outputs import DeadLetter
from claimstream.model.records import Record
from claimstream.sanctions.intake import Refused, each, parsed, read_action
from claimstream.sanctions.signatures import ActionVerifier, Keyring

STRICT = ActionVerifier(lambda: Keyring({})).check  # refuses every action: none is signed
LENIENT = ActionVerifier(lambda: Keyring({}), accept_unsigned=True).check


def is_case(data: dict[str, Any]) -> bool:
    return str(data.get("type", "")).startswith("case_")


def test_an_action_of_the_reader_is_returned_once_verified() -> None:
    raw = orjson.dumps({"type": "case_advance", "case_id": "c"})
    assert read_action(raw, LENIENT, ours=is_case, refuse_garbage=False) == {
        "type": "case_advance",
        "case_id": "c",
    }


def test_another_readers_action_is_left_alone_without_being_verified() -> None:
    raw = orjson.dumps({"type": "review"})
    assert read_action(raw, STRICT, ours=is_case, refuse_garbage=False) is None


def test_an_unsigned_action_of_the_reader_is_refused_with_the_signatures_reason() -> None:
    raw = orjson.dumps({"type": "case_advance"})
    with pytest.raises(Refused) as refused:
        read_action(raw, STRICT, ours=is_case, refuse_garbage=False)
    assert refused.value.reason == "unsigned_action"


@pytest.mark.parametrize(("refuse_garbage", "refused"), [(True, True), (False, False)])
def test_what_is_not_json_is_dead_lettered_only_by_the_reader_that_refuses_garbage(
    refuse_garbage: bool, refused: bool
) -> None:
    if refused:
        with pytest.raises(Refused, match="not JSON"):
            read_action(b"{broken", LENIENT, ours=is_case, refuse_garbage=refuse_garbage)
    else:
        assert read_action(b"{broken", LENIENT, ours=is_case, refuse_garbage=False) is None


def test_a_parse_error_becomes_a_refusal_with_the_given_reason() -> None:
    def parse(data: dict[str, Any]) -> str:
        raise ValueError("by must be a non-empty string")

    with pytest.raises(Refused, match="not a case action: by must be") as refused:
        parsed(parse, {}, "invalid_action", "a case action")
    assert refused.value.reason == "invalid_action"


def test_a_bug_hit_by_one_record_is_dead_lettered_logged_without_its_message_and_the_batch_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = [Record(b"k", b"P-secret", "t", 0, 1), Record(b"k", b"2", "t", 0, 2)]
    done: list[int] = []

    def one(record: Record) -> None:
        if record.offset == 1:
            raise KeyError(f"patient {record.value!r}")
        done.append(record.offset)

    letters: list[DeadLetter] = []
    with caplog.at_level(logging.ERROR):
        each(records, letters, one)
    assert done == [2]
    assert [(d.reason, d.origin["offset"]) for d in letters] == [("processing_error", 1)]
    assert "P-secret" in letters[0].detail and "P-secret" not in caplog.text
