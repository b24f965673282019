"""The audit trail's two keys: an HMAC key that authenticates every record, an Ed25519 key
that signs the checkpoints (see docs/audit.md for who holds which and why).

* **HMAC-SHA-256 key ring** (`HmacKeyRing`): a text file, one key a line, base64 of at least
  32 random bytes; `#` comments and blank lines are ignored; the *last* key is the one the worker
  writes with, the earlier ones are kept so older records still verify. A key's id is derived
  from it (`hmac-` + 16 hex digits of a SHA-256 over a fixed label and the key), so a record's
  `key_id` always names the key that made its MAC and two keys can never share an id.
* **Ed25519 signing key** (`Signer`): PKCS#8 PEM (what `claimstream audit keygen` and
  `openssl genpkey -algorithm ed25519` write), or base64 of the raw 32-byte seed. Its public
  half, PEM (`PublicKeys`, several blocks in one file for a rotation), is all an auditor needs:
  it verifies checkpoints and cannot make one. A public key's id is `ed25519-` + 16 hex digits
  of the SHA-256 of its 32 raw bytes.

Secrets are never part of a `repr`, a log line or an error message: errors name the file (or
variable) and the line, never the text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from claimstream.model.config import ConfigError

HMAC_MIN_BYTES = 32
_HMAC_ID_LABEL = b"claimstream audit hmac key id\x00"
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----", re.DOTALL)


def hmac_key_id(secret: bytes) -> str:
    return "hmac-" + hashlib.sha256(_HMAC_ID_LABEL + secret).hexdigest()[:16]


def public_key_id(raw: bytes) -> str:
    return "ed25519-" + hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class HmacKey:
    key_id: str
    secret: bytes = field(repr=False)

    @classmethod
    def from_secret(cls, secret: bytes) -> HmacKey:
        if len(secret) < HMAC_MIN_BYTES:
            raise ValueError(f"an HMAC key needs at least {HMAC_MIN_BYTES} bytes")
        return cls(hmac_key_id(secret), secret)

    def mac(self, data: bytes) -> str:
        return hmac.new(self.secret, data, hashlib.sha256).hexdigest()

    def check(self, data: bytes, mac: str) -> bool:
        return hmac.compare_digest(self.mac(data), mac)


@dataclass(frozen=True, slots=True)
class HmacKeyRing:
    """Every HMAC key a trail may have been written with; `current` is the one to write with."""

    keys: tuple[HmacKey, ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("an HMAC key ring needs at least one key")

    @property
    def current(self) -> HmacKey:
        return self.keys[-1]

    def get(self, key_id: str) -> HmacKey | None:
        return next((k for k in self.keys if k.key_id == key_id), None)

    @property
    def ids(self) -> list[str]:
        return [k.key_id for k in self.keys]


def parse_hmac_ring(text: str, where: str) -> HmacKeyRing:
    """A key ring from its text: base64 keys, one a line (`where` names the source in errors)."""
    keys: list[HmacKey] = []
    for number, line in enumerate(text.splitlines(), start=1):
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        try:
            secret = base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"{where}: line {number} is not a base64 key") from None
        try:
            key = HmacKey.from_secret(secret)
        except ValueError as exc:
            raise ConfigError(f"{where}: line {number}: {exc}") from None
        if key.key_id not in {k.key_id for k in keys}:
            keys.append(key)
    if not keys:
        raise ConfigError(f"{where}: no key in it (one base64 key a line, the last is current)")
    return HmacKeyRing(tuple(keys))


def new_hmac_line() -> str:
    """A fresh key ring line: base64 of 32 random bytes."""
    return base64.b64encode(secrets.token_bytes(HMAC_MIN_BYTES)).decode()


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class Signer:
    """The checkpoint signing key (Ed25519); `sign` gives a base64 signature."""

    __slots__ = ("_key", "key_id", "public_key")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_key = key.public_key()
        self.key_id = public_key_id(_raw_public(self.public_key))

    def __repr__(self) -> str:
        return f"Signer({self.key_id})"

    @classmethod
    def generate(cls) -> Signer:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, data: bytes, where: str) -> Signer:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise ConfigError(
                f"{where}: not an unencrypted PEM private key (PKCS#8, Ed25519)"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"{where}: the private key is not an Ed25519 key")
        return cls(key)

    @classmethod
    def from_seed(cls, text: str, where: str) -> Signer:
        try:
            seed = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(f"{where}: not base64 (expected the 32-byte Ed25519 seed)") from None
        if len(seed) != 32:
            raise ConfigError(f"{where}: an Ed25519 seed has 32 bytes")
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def sign(self, data: bytes) -> str:
        return base64.b64encode(self._key.sign(data)).decode()

    def private_pem(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass(frozen=True, slots=True)
class PublicKeys:
    """The checkpoint verification keys an auditor trusts, by key id."""

    keys: dict[str, Ed25519PublicKey]

    @classmethod
    def of(cls, keys: Iterable[Ed25519PublicKey]) -> PublicKeys:
        return cls({public_key_id(_raw_public(k)): k for k in keys})

    @classmethod
    def from_pem(cls, data: bytes, where: str) -> PublicKeys:
        """Every `PUBLIC KEY` block of a PEM file (private keys are refused: not for auditors)."""
        found: list[Ed25519PublicKey] = []
        for block in _PEM_BLOCK.finditer(data):
            if block.group(1) != b"PUBLIC KEY":
                raise ConfigError(f"{where}: holds a {block.group(1).decode()}, not a public key")
            try:
                key = serialization.load_pem_public_key(block.group(0))
            except ValueError:
                raise ConfigError(f"{where}: a PUBLIC KEY block cannot be read") from None
            if not isinstance(key, Ed25519PublicKey):
                raise ConfigError(f"{where}: a public key is not an Ed25519 key")
            found.append(key)
        if not found:
            raise ConfigError(f"{where}: no PEM public key in it")
        return cls.of(found)

    def merged(self, other: PublicKeys) -> PublicKeys:
        return PublicKeys({**self.keys, **other.keys})

    def verify(self, key_id: str, signature: str, data: bytes) -> bool | None:
        """True / False; None when `key_id` is not among these keys."""
        key = self.keys.get(key_id)
        if key is None:
            return None
        try:
            key.verify(base64.b64decode(signature, validate=True), data)
        except (InvalidSignature, binascii.Error, ValueError):
            return False
        return True

    @property
    def ids(self) -> list[str]:
        return sorted(self.keys)
