"""The audit's keys and checkpoint store, from files or `CLAIMSTREAM_AUDIT_*` variables.

A worker with the audit enabled needs (`WriterSettings.from_env`):

* `CLAIMSTREAM_AUDIT_HMAC_KEY_FILE` (or `CLAIMSTREAM_AUDIT_HMAC_KEY`, the ring's lines
  comma-separated): the HMAC key ring; its last key writes;
* `CLAIMSTREAM_AUDIT_SIGNING_KEY_FILE` (or `CLAIMSTREAM_AUDIT_SIGNING_KEY`, the base64 seed):
  the Ed25519 key that signs checkpoints;
* `CLAIMSTREAM_AUDIT_CHECKPOINT_DIR`: where checkpoints go (not on Kafka);
* `CLAIMSTREAM_AUDIT_CHECKPOINT_INTERVAL`: seconds between two checkpoints of a partition (60).

A missing one is a start-up error (`ConfigError` naming it). `CLAIMSTREAM_AUDIT_UNKEYED=true`
is the explicit development mode instead: records without MAC, no checkpoints, one WARNING
log line at start; it refuses to be combined with a key. `claimstream audit verify` reads the
same variables for its defaults (`VerifierSettings.from_env`), plus
`CLAIMSTREAM_AUDIT_PUBLIC_KEY_FILE` (PEM public keys; without it, the signing key's public
half is used when that is set).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from claimstream.audit.checkpoint import Checkpointer
from claimstream.audit.keys import HmacKeyRing, PublicKeys, Signer, parse_hmac_ring
from claimstream.audit.store import DirectoryStore
from claimstream.model.config import ConfigError, env_flag

log = logging.getLogger(__name__)
PREFIX = "CLAIMSTREAM_AUDIT_"
HMAC_KEY_FILE = PREFIX + "HMAC_KEY_FILE"
HMAC_KEY = PREFIX + "HMAC_KEY"
SIGNING_KEY_FILE = PREFIX + "SIGNING_KEY_FILE"
SIGNING_KEY = PREFIX + "SIGNING_KEY"
PUBLIC_KEY_FILE = PREFIX + "PUBLIC_KEY_FILE"
CHECKPOINT_DIR = PREFIX + "CHECKPOINT_DIR"
CHECKPOINT_INTERVAL = PREFIX + "CHECKPOINT_INTERVAL"
UNKEYED = PREFIX + "UNKEYED"
DEFAULT_INTERVAL = 60.0


def read_secret_file(path: str, variable: str) -> bytes:
    """A key file's bytes; the error names the variable and the file, never the content."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{variable}: cannot read {path}: {exc.strerror or exc}") from None


def hmac_ring_from(env: Mapping[str, str]) -> HmacKeyRing | None:
    path, inline = env.get(HMAC_KEY_FILE, "").strip(), env.get(HMAC_KEY, "").strip()
    if path and inline:
        raise ConfigError(f"set {HMAC_KEY_FILE} or {HMAC_KEY}, not both")
    if path:
        text = read_secret_file(path, HMAC_KEY_FILE).decode("utf-8", "replace")
        return parse_hmac_ring(text, f"{HMAC_KEY_FILE} ({path})")
    if inline:
        return parse_hmac_ring("\n".join(inline.split(",")), HMAC_KEY)
    return None


def signer_from(env: Mapping[str, str]) -> Signer | None:
    path, inline = env.get(SIGNING_KEY_FILE, "").strip(), env.get(SIGNING_KEY, "").strip()
    if path and inline:
        raise ConfigError(f"set {SIGNING_KEY_FILE} or {SIGNING_KEY}, not both")
    if path:
        return Signer.from_pem(
            read_secret_file(path, SIGNING_KEY_FILE), f"{SIGNING_KEY_FILE} ({path})"
        )
    if inline:
        return Signer.from_seed(inline, SIGNING_KEY)
    return None


def public_keys_from_file(path: str, where: str) -> PublicKeys:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read {path}: {exc.strerror or exc}") from None
    return PublicKeys.from_pem(data, f"{where} ({path})")


@dataclass(frozen=True, slots=True)
class WriterSettings:
    """What the audit agent writes with: an HMAC key ring (its last key writes), a checkpoint
    signer and store; all None in the unkeyed development mode."""

    hmac: HmacKeyRing | None
    signer: Signer | None
    checkpoint_dir: str | None
    interval: float = DEFAULT_INTERVAL

    @property
    def unkeyed(self) -> bool:
        return self.hmac is None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WriterSettings:
        """The settings from `CLAIMSTREAM_AUDIT_*`; `ConfigError` naming what is missing or
        wrong. The unkeyed mode logs a WARNING."""
        env = os.environ if environ is None else environ
        keyed_vars = [
            n for n in (HMAC_KEY_FILE, HMAC_KEY, SIGNING_KEY_FILE, SIGNING_KEY) if env.get(n)
        ]
        if env_flag(env, UNKEYED, default=False):
            if keyed_vars:
                raise ConfigError(f"{UNKEYED}=true and {', '.join(keyed_vars)} are both set")
            log.warning(
                "AUDIT TRAIL UNKEYED (%s=true): records carry no MAC and no checkpoint is "
                "signed, so anyone who can write the audit topic can rewrite the trail "
                "unnoticed. For development and tests only.",
                UNKEYED,
            )
            return cls(None, None, None)
        ring = hmac_ring_from(env)
        signer = signer_from(env)
        folder = env.get(CHECKPOINT_DIR, "").strip() or None
        missing = [
            name
            for name, value in (
                (f"{HMAC_KEY_FILE} (or {HMAC_KEY})", ring),
                (f"{SIGNING_KEY_FILE} (or {SIGNING_KEY})", signer),
                (CHECKPOINT_DIR, folder),
            )
            if value is None
        ]
        if missing:
            raise ConfigError(
                f"the audit trail needs {', '.join(missing)}; make keys with `claimstream "
                f"audit keygen --dir DIR`, or set {UNKEYED}=true for an unkeyed development "
                f"trail (or CLAIMSTREAM_AUDIT_ENABLED=false)"
            )
        interval = DEFAULT_INTERVAL
        if env.get(CHECKPOINT_INTERVAL, "").strip():
            try:
                interval = float(env[CHECKPOINT_INTERVAL])
            except ValueError:
                raise ConfigError(f"{CHECKPOINT_INTERVAL} must be a number of seconds") from None
            if not interval > 0:
                raise ConfigError(f"{CHECKPOINT_INTERVAL} must be greater than 0")
        assert ring is not None and signer is not None and folder is not None
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"{CHECKPOINT_DIR}: cannot create {folder}: {exc.strerror or exc}"
            ) from None
        log.info(
            "audit trail keyed with %s, checkpoints signed by %s every %.0f s in %s",
            ring.current.key_id,
            signer.key_id,
            interval,
            folder,
        )
        return cls(ring, signer, folder, interval)

    def checkpointer(self, clock: Callable[[], float] | None = None) -> Checkpointer | None:
        """The agent's checkpoint writer (None when unkeyed)."""
        if self.signer is None or self.checkpoint_dir is None:
            return None
        store = DirectoryStore(self.checkpoint_dir)
        if clock is None:
            return Checkpointer(self.signer, store, interval=self.interval)
        return Checkpointer(self.signer, store, interval=self.interval, clock=clock)


@dataclass(frozen=True, slots=True)
class VerifierSettings:
    """`claimstream audit verify`'s defaults from the environment (each may be None)."""

    hmac: HmacKeyRing | None
    public_keys: PublicKeys | None
    checkpoint_dir: str | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> VerifierSettings:
        env = os.environ if environ is None else environ
        public: PublicKeys | None = None
        if env.get(PUBLIC_KEY_FILE, "").strip():
            public = public_keys_from_file(env[PUBLIC_KEY_FILE].strip(), PUBLIC_KEY_FILE)
        else:
            signer = signer_from(env)
            if signer is not None:
                public = PublicKeys.of([signer.public_key])
        return cls(hmac_ring_from(env), public, env.get(CHECKPOINT_DIR, "").strip() or None)
