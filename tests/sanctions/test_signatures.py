"""Signed actions (`claimstream.sanctions.signatures`): what a signature covers, whose key may
sign what, and how a keyring file is read."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from claimstream.model.config import ConfigError
from claimstream.sanctions.codec import action_to_dict
from claimstream.sanctions.signatures import (
    BAD_SIGNATURE,
    UNKNOWN_KEY,
    UNSIGNED,
    ActionSigner,
    ActionVerifier,
    Keyring,
    SignatureError,
    TrustedKey,
    parse_keyring,
    signed_bytes,
)
from tests.sanctions.support import unfreeze

PERSON = ActionSigner.generate()  # wang.supervisor's own key
SERVICE = ActionSigner.generate()  # a worker's API key
RING = Keyring.of(
    [TrustedKey("wang.supervisor", PERSON.public_key), TrustedKey("api", SERVICE.public_key, True)]
)


def record(**changes: Any) -> dict[str, Any]:
    return {**action_to_dict(unfreeze("institution", "H1", 1)), **changes}  # by wang.supervisor


def refusal(data: dict[str, Any], ring: Keyring = RING) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        ActionVerifier(lambda: ring).check(data)
    return caught.value


def test_a_persons_signed_action_verifies_and_names_its_signer() -> None:
    assert ActionVerifier(lambda: RING).check(PERSON.sign(record())) == "wang.supervisor"


def test_a_service_key_may_sign_in_the_name_of_the_caller_it_authenticated() -> None:
    assert ActionVerifier(lambda: RING).check(SERVICE.sign(record(by="li.na"))) == "api"


def test_the_signature_covers_the_key_id_and_every_field_but_itself() -> None:
    signed = PERSON.sign(record())
    assert signed["key_id"] == PERSON.key_id and signed["key_id"].startswith("ed25519-")
    assert b'"key_id"' in signed_bytes(signed) and b'"signature"' not in signed_bytes(signed)


@pytest.mark.parametrize(
    "change",
    [
        {"scope": {"kind": "institution", "id": "H2"}},
        {"reason": "no reason at all"},
        {"at": "2026-03-09T08:00:00+08:00"},
        {"ground": "reviewer"},
        {"extra": "field"},
    ],
)
def test_a_changed_field_breaks_the_signature(change: dict[str, Any]) -> None:
    assert refusal({**PERSON.sign(record()), **change}).reason == BAD_SIGNATURE


def test_an_unsigned_action_is_refused_unless_the_development_mode_lets_it_through() -> None:
    assert refusal(record()).reason == UNSIGNED
    assert ActionVerifier(lambda: RING, accept_unsigned=True).check(record()) is None


def test_a_bad_signature_is_refused_even_in_the_development_mode() -> None:
    forged = {
        **record(),
        "key_id": PERSON.key_id,
        "signature": base64.b64encode(b"x" * 64).decode(),
    }
    with pytest.raises(SignatureError) as caught:
        ActionVerifier(lambda: RING, accept_unsigned=True).check(forged)
    assert caught.value.reason == BAD_SIGNATURE


def test_a_key_the_keyring_lacks_is_an_unknown_key() -> None:
    stranger = ActionSigner.generate()
    assert refusal(stranger.sign(record())).reason == UNKNOWN_KEY


def test_a_persons_key_cannot_sign_in_someone_elses_name() -> None:
    failed = refusal(PERSON.sign(record(by="li.na")))
    assert failed.reason == BAD_SIGNATURE
    assert "signs only wang.supervisor's actions" in str(failed)


@pytest.mark.parametrize("signature", ["not base64!", 17, None])
def test_a_malformed_signature_is_a_bad_signature(signature: Any) -> None:
    assert refusal({**record(), "key_id": PERSON.key_id, "signature": signature}).reason == (
        BAD_SIGNATURE
    )


def test_the_verifier_asks_for_the_keyring_every_time() -> None:
    rings = [Keyring({}), RING]
    verifier = ActionVerifier(lambda: rings[0])
    signed = PERSON.sign(record())
    with pytest.raises(SignatureError):
        verifier.check(signed)
    rings.pop(0)
    assert verifier.check(signed) == "wang.supervisor"


# -- the keyring file --------------------------------------------------------------------------


def test_a_keyring_file_reads_people_and_services_by_key_id() -> None:
    text = (
        "# reviewers of the Hangzhou office\n\n"
        + PERSON.keyring_entry("wang.supervisor")
        + "\n"
        + SERVICE.keyring_entry("api", service=True)
    )
    ring = parse_keyring(text.encode(), "keys.pem")
    assert {k: (v.name, v.service) for k, v in ring.keys.items()} == {
        PERSON.key_id: ("wang.supervisor", False),
        SERVICE.key_id: ("api", True),
    }


def test_a_signer_key_written_as_pem_reads_back_with_its_key_id() -> None:
    again = ActionSigner.from_pem(PERSON.private_pem(), "key.pem")
    assert again.key_id == PERSON.key_id
    assert "BEGIN" not in repr(again)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (PERSON.public_pem().decode(), "line 1: the key needs a `Signer: NAME`"),
        ("Signer: a\n" + PERSON.private_pem().decode(), "a keyring holds public keys only"),
        ("Signer: a\nSigner: b\n" + PERSON.public_pem().decode(), "line 2: two names for one key"),
        ("Owner: a\n" + PERSON.public_pem().decode(), "line 1 is neither"),
        ("Signer: a b\n" + PERSON.public_pem().decode(), "line 1 is neither"),
        ("Signer: a\n", "line 1: `Signer: a` has no key after it"),
        (
            "Signer: a\n"
            + PERSON.public_pem().decode()
            + "Service: b\n"
            + PERSON.public_pem().decode(),
            "is listed for two names",
        ),
        (
            "Signer: a\n-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
            "cannot be read",
        ),
    ],
)
def test_a_keyring_that_cannot_be_used_names_the_file_and_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_keyring(text.encode(), "keys.pem")
    assert str(caught.value).startswith("keys.pem: ")
    assert message in str(caught.value)


def test_a_private_key_file_that_is_not_one_is_refused_without_quoting_it() -> None:
    with pytest.raises(ConfigError) as caught:
        ActionSigner.from_pem(b"secret-material", "key.pem")
    assert "secret-material" not in str(caught.value)


def test_signed_and_unsigned_records_match_the_action_schema() -> None:
    import json
    from pathlib import Path

    import jsonschema

    path = Path(__file__).parents[2] / "topics" / "schemas" / "action.v1.json"
    schema = json.loads(path.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(record())
    validator.validate(PERSON.sign(record()))
    half = {k: v for k, v in PERSON.sign(record()).items() if k != "signature"}
    assert not validator.is_valid(half)  # a key id without a signature
