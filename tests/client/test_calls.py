"""What an answer's status means to both clients (`client.calls.error_of`)."""

import pytest

from claimstream.client import ClaimstreamError, RequestRefused
from claimstream.client.calls import Call, error_of, headers_of


def test_a_4xx_answer_is_a_refusal_raised_at_once_with_the_workers_sentence() -> None:
    message, final = error_of(403, {"error": "needs the settlement role"})
    assert message == "needs the settlement role"
    assert isinstance(final, RequestRefused) and final.status == 403


@pytest.mark.parametrize("status", [502, 503, 504])
def test_a_502_503_or_504_is_worth_trying_again(status: int) -> None:
    assert error_of(status, {"error": "recovering"}) == ("recovering", None)


def test_another_5xx_is_an_error_raised_at_once_not_a_refusal() -> None:
    _, final = error_of(500, {"error": "boom"})
    assert type(final) is ClaimstreamError and str(final) == "HTTP 500: boom"


def test_a_call_without_a_body_or_a_token_sends_neither_header() -> None:
    assert headers_of(Call("GET", "/freezes/patient/P1"), None) == {"Accept": "application/json"}
