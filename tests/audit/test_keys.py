"""The HMAC key ring and the Ed25519 keys: ids derived from the keys, secrets never shown."""

from __future__ import annotations

import base64

import pytest

from claimstream.audit.keys import PublicKeys, Signer, hmac_key_id, parse_hmac_ring
from claimstream.model.config import ConfigError
from tests.audit.support import SECRET, ring, signer


def line(secret: bytes) -> str:
    return base64.b64encode(secret).decode()


def test_the_last_key_of_a_ring_file_is_the_one_that_writes() -> None:
    text = f"# old first\n{line(SECRET)}\n\n{line(b'n' * 32)}\n"
    parsed = parse_hmac_ring(text, "ring")
    assert parsed.ids == [hmac_key_id(SECRET), hmac_key_id(b"n" * 32)]
    assert parsed.current.key_id == hmac_key_id(b"n" * 32)


def test_a_key_shorter_than_32_bytes_is_refused_by_line() -> None:
    with pytest.raises(ConfigError, match=r"ring: line 2: an HMAC key needs at least 32 bytes"):
        parse_hmac_ring(f"{line(SECRET)}\n{line(b'short')}\n", "ring")


def test_an_unreadable_key_line_is_named_without_its_text() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_hmac_ring("not-base64-secret!!\n", "ring")
    assert "line 1 is not a base64 key" in str(caught.value)
    assert "secret" not in str(caught.value)


def test_a_key_never_shows_in_its_repr() -> None:
    key = ring().current
    assert line(SECRET) not in repr(key) and repr(SECRET) not in repr(key)
    assert "hmac-" in repr(key) and repr(signer()).startswith("Signer(ed25519-")


def test_a_signature_verifies_with_the_public_key_and_not_after_a_change() -> None:
    own = signer()
    keys = PublicKeys.from_pem(own.public_pem(), "public.pem")
    signature = own.sign(b"heads")
    assert keys.verify(own.key_id, signature, b"heads") is True
    assert keys.verify(own.key_id, signature, b"heads!") is False
    assert keys.verify("ed25519-0000000000000000", signature, b"heads") is None


def test_a_private_pem_round_trips_and_is_refused_as_a_public_key() -> None:
    own = signer()
    assert Signer.from_pem(own.private_pem(), "signing.pem").key_id == own.key_id
    with pytest.raises(ConfigError, match="holds a PRIVATE KEY, not a public key"):
        PublicKeys.from_pem(own.private_pem(), "public.pem")


def test_a_public_key_file_may_hold_every_key_of_a_rotation() -> None:
    first, second = signer(), Signer.generate()
    keys = PublicKeys.from_pem(first.public_pem() + second.public_pem(), "public.pem")
    assert keys.ids == sorted([first.key_id, second.key_id])
