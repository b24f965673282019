"""The audit's keys from files or CLAIMSTREAM_AUDIT_*: a missing key stops the start, the
unkeyed development mode is explicit and logged, no secret reaches a message."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest

from claimstream.audit.keys import hmac_key_id
from claimstream.audit.settings import VerifierSettings, WriterSettings
from claimstream.model.config import ConfigError
from tests.audit.support import SECRET, SEED, signer


def keyed_env(tmp_path: Path) -> dict[str, str]:
    ring = tmp_path / "hmac.keys"
    ring.write_text(base64.b64encode(SECRET).decode() + "\n")
    pem = tmp_path / "signing.pem"
    pem.write_bytes(signer().private_pem())
    return {
        "CLAIMSTREAM_AUDIT_HMAC_KEY_FILE": str(ring),
        "CLAIMSTREAM_AUDIT_SIGNING_KEY_FILE": str(pem),
        "CLAIMSTREAM_AUDIT_CHECKPOINT_DIR": str(tmp_path / "checkpoints"),
    }


def test_a_keyed_worker_gets_its_ring_signer_and_checkpoint_writer(tmp_path: Path) -> None:
    found = WriterSettings.from_env(keyed_env(tmp_path))
    assert found.hmac is not None and found.hmac.current.key_id == hmac_key_id(SECRET)
    assert found.signer is not None and found.signer.key_id == signer().key_id
    assert found.checkpointer() is not None and (tmp_path / "checkpoints").is_dir()


def test_a_missing_key_is_a_start_up_error_naming_the_variables() -> None:
    with pytest.raises(ConfigError) as caught:
        WriterSettings.from_env({})
    message = str(caught.value)
    assert "CLAIMSTREAM_AUDIT_HMAC_KEY_FILE" in message
    assert "CLAIMSTREAM_AUDIT_SIGNING_KEY_FILE" in message
    assert "CLAIMSTREAM_AUDIT_CHECKPOINT_DIR" in message
    assert "CLAIMSTREAM_AUDIT_UNKEYED=true" in message


def test_the_unkeyed_mode_is_explicit_and_logged_as_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        found = WriterSettings.from_env({"CLAIMSTREAM_AUDIT_UNKEYED": "true"})
    assert found.unkeyed and found.checkpointer() is None
    assert "AUDIT TRAIL UNKEYED" in caplog.text


def test_the_unkeyed_mode_refuses_a_key_beside_it(tmp_path: Path) -> None:
    env = {**keyed_env(tmp_path), "CLAIMSTREAM_AUDIT_UNKEYED": "yes"}
    with pytest.raises(ConfigError, match="both set"):
        WriterSettings.from_env(env)


def test_keys_may_come_from_the_environment_itself(tmp_path: Path) -> None:
    env = {
        "CLAIMSTREAM_AUDIT_HMAC_KEY": base64.b64encode(SECRET).decode(),
        "CLAIMSTREAM_AUDIT_SIGNING_KEY": SEED,
        "CLAIMSTREAM_AUDIT_CHECKPOINT_DIR": str(tmp_path),
        "CLAIMSTREAM_AUDIT_CHECKPOINT_INTERVAL": "15",
    }
    found = WriterSettings.from_env(env)
    assert found.signer is not None and found.signer.key_id == signer().key_id
    assert found.interval == 15


def test_a_bad_key_in_a_variable_is_named_without_its_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "c2VjcmV0LWJ1dC1zaG9ydA=="
    with caplog.at_level(logging.DEBUG), pytest.raises(ConfigError) as caught:
        WriterSettings.from_env({"CLAIMSTREAM_AUDIT_HMAC_KEY": secret})
    assert "CLAIMSTREAM_AUDIT_HMAC_KEY" in str(caught.value)
    assert secret not in str(caught.value) and secret not in caplog.text


def test_the_verifier_takes_the_public_half_of_the_signing_key(tmp_path: Path) -> None:
    found = VerifierSettings.from_env(keyed_env(tmp_path))
    assert found.public_keys is not None and found.public_keys.ids == [signer().key_id]
    assert found.hmac is not None and found.checkpoint_dir == str(tmp_path / "checkpoints")


def test_an_unkeyed_flag_that_is_not_true_or_false_is_refused_naming_it() -> None:
    with pytest.raises(
        ConfigError, match=r"^CLAIMSTREAM_AUDIT_UNKEYED must be true or false, got 'sure'$"
    ):
        WriterSettings.from_env({"CLAIMSTREAM_AUDIT_UNKEYED": "sure"})
