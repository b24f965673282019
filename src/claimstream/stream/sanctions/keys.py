"""The worker's action keys: what its API signs with, and what its sanctions agents trust.

* `CLAIMSTREAM_ACTION_SIGNING_KEY_FILE`: the Ed25519 private key (PKCS#8 PEM) the worker's API
  signs people's actions with, after it authenticated the caller's token. Its public half is
  trusted as a service key named `api` (so one worker, or several sharing the key, needs no
  keyring to apply its own API's actions).
* `CLAIMSTREAM_ACTION_KEYS_FILE`: the keyring (`claimstream.sanctions.signatures`): the public
  keys of people (`Signer: NAME`) and of other workers' APIs (`Service: NAME`). Re-read when it
  changes; while it cannot be used, every action is refused (`unknown_key`) and the log says
  why.
* `CLAIMSTREAM_ACCEPT_UNSIGNED_ACTIONS=true`: development mode, unsigned actions are applied
  (a bad signature is still refused); one WARNING at start.

With neither key nor development mode every action is refused and dead-lettered: the worker
still detects and freezes, but nobody can lift a freeze through Kafka; it says so at start.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from claimstream.kafka.actions import SIGNING_KEY_FILE, read_signer
from claimstream.model.config import ConfigError
from claimstream.sanctions.signatures import (
    ActionSigner,
    ActionVerifier,
    Keyring,
    TrustedKey,
    parse_keyring,
)
from claimstream.stream.watched import WatchedFile

log = logging.getLogger(__name__)

KEYS_FILE = "CLAIMSTREAM_ACTION_KEYS_FILE"
ACCEPT_UNSIGNED = "CLAIMSTREAM_ACCEPT_UNSIGNED_ACTIONS"
#: the name the worker's own API key is trusted under
API_SIGNER = "api"


@dataclass(frozen=True, slots=True)
class ActionKeys:
    """The API's signer (None: it cannot sign) and the agents' verifier."""

    signer: ActionSigner | None
    verifier: ActionVerifier


def action_keys(
    *, signing_key_file: str | None, keys_file: str | None, accept_unsigned: bool
) -> ActionKeys:
    """Load the keys (`ConfigError` when a file cannot be used) and say at start what the
    worker signs with and accepts."""
    signer = read_signer(signing_key_file) if signing_key_file else None
    own = Keyring({})
    if signer is not None:
        own = own.with_key(TrustedKey(API_SIGNER, signer.public_key, service=True))
    watched = WatchedFile(keys_file, parse_keyring, KEYS_FILE) if keys_file else None

    def keys() -> Keyring:
        if watched is None:
            return own
        try:
            ring = watched.current()
        except ConfigError:  # logged by WatchedFile when it changed; refuse every action
            return Keyring({})
        return Keyring({**ring.keys, **own.keys})

    ring = keys()
    if accept_unsigned:
        log.warning(
            "UNSIGNED ACTIONS ACCEPTED (%s=true): anyone who can write claimstream.actions.v1 "
            "can lift a freeze. For development and tests only.",
            ACCEPT_UNSIGNED,
        )
    elif not ring.keys:
        log.warning(
            "no action key configured (%s, %s): every review, unfreeze and remediation will be "
            "refused and dead-lettered",
            KEYS_FILE,
            SIGNING_KEY_FILE,
        )
    log.info(
        "actions: API signs with %s; accepted from %s",
        signer.key_id if signer is not None else "no key (writes refused)",
        ring.describe(),
    )
    return ActionKeys(signer, ActionVerifier(keys, accept_unsigned=accept_unsigned))
