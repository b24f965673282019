"""Signed people's actions: who may lift a freeze is decided by a key, not by topic access.

Every person's action on `claimstream.actions.v1` (a review, an unfreeze, a remediation)
carries two more fields: `key_id` (`ed25519-` + 16 hex digits of the SHA-256 of the public
key's 32 raw bytes, the audit's key ids) and `signature`, the base64 Ed25519 signature of the
record's RFC 8785 (JCS) encoding without `signature` (so `key_id` is covered and cannot be
swapped). `claimstream unfreeze` / `alerts review` sign with the person's own key, the worker's
API with its service key after it authenticated the caller's token.

The worker verifies with a keyring of public keys (`parse_keyring`): PEM `PUBLIC KEY` blocks
(what `openssl pkey -pubout` and `claimstream audit keygen` write), each preceded by one header
line saying whose it is:

    Signer: wang.fang      # a person: signs actions whose `by` is wang.fang, and no others
    Service: api           # a service (the worker's API): signs for the caller it authenticated
    -----BEGIN PUBLIC KEY-----
    ...

A keyring holds public halves only: a worker can verify every action and forge none. What
`ActionVerifier.check` refuses, each a dead-letter reason (`REFUSED`):

* `unsigned_action`: no signature (accepted only with `accept_unsigned`, a development mode);
* `unknown_key`: signed by a key the keyring does not hold (retired, or never added);
* `bad_signature`: the signature does not verify (the record was changed after signing), or a
  person's key signed an action in someone else's name;
* `stale_action` (raised by the processor, `claimstream.sanctions.processor`): an unfreeze or
  remediation too old to be recognised as a repeat, or a verdict older than the one on record,
  so a signed action read off the topic and published again later changes nothing.

Nothing here reads the wall clock, the environment or a file: the keyring comes as bytes, the
key as PEM; secrets are never in a `repr`, a log line or an error message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from claimstream.model.config import ConfigError

KEY_ID, SIGNATURE = "key_id", "signature"
UNSIGNED, UNKNOWN_KEY, BAD_SIGNATURE, STALE = (
    "unsigned_action",
    "unknown_key",
    "bad_signature",
    "stale_action",
)
#: why an action was refused (dead-letter reasons, `claimstream_refused_actions_total{reason}`)
REFUSED = (UNSIGNED, UNKNOWN_KEY, BAD_SIGNATURE, STALE)
_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\s.*?-----END \1-----", re.DOTALL)
_HEADER = re.compile(r"^(Signer|Service):\s*(\S+)\s*$")
_NAME = re.compile(r"^[A-Za-z0-9._@+-]{1,128}$")


class SignatureError(Exception):
    """An action that must not change anything: `reason` is one of `REFUSED`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def key_id_of(key: Ed25519PublicKey) -> str:
    """`ed25519-` + 16 hex digits of the SHA-256 of the key's raw bytes (as the audit's)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519-" + hashlib.sha256(raw).hexdigest()[:16]


def signed_bytes(record: Mapping[str, Any]) -> bytes:
    """What the signature covers: the JCS encoding of every field but `signature`."""
    return rfc8785.dumps({k: v for k, v in record.items() if k != SIGNATURE})


def unsigned(record: Mapping[str, Any]) -> dict[str, Any]:
    """`record` without its signature fields."""
    return {k: v for k, v in record.items() if k not in (KEY_ID, SIGNATURE)}


class ActionSigner:
    """An Ed25519 private key that signs action records; its `key_id` names its public half."""

    __slots__ = ("_key", "key_id", "public_key")

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_key = key.public_key()
        self.key_id = key_id_of(self.public_key)

    def __repr__(self) -> str:
        return f"ActionSigner({self.key_id})"

    @classmethod
    def generate(cls) -> ActionSigner:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, data: bytes, where: str) -> ActionSigner:
        """A PKCS#8 PEM Ed25519 private key (`openssl genpkey -algorithm ed25519`)."""
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise ConfigError(
                f"{where}: not an unencrypted PEM private key (PKCS#8, Ed25519)"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ConfigError(f"{where}: the private key is not an Ed25519 key")
        return cls(key)

    def sign(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """`record` (an action.v1 dict) with `key_id` and `signature` set by this key."""
        out = {**unsigned(record), KEY_ID: self.key_id}
        out[SIGNATURE] = base64.b64encode(self._key.sign(signed_bytes(out))).decode()
        return out

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

    def keyring_entry(self, name: str, *, service: bool = False) -> str:
        """This key's public half as a keyring entry (header line and PEM block)."""
        return f"{'Service' if service else 'Signer'}: {name}\n{self.public_pem().decode()}"


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A public key of the keyring: whose it is, and whether it may sign for others."""

    name: str
    key: Ed25519PublicKey
    service: bool = False


@dataclass(frozen=True, slots=True)
class Keyring:
    """The public keys a worker accepts actions from, by key id."""

    keys: Mapping[str, TrustedKey]

    @classmethod
    def of(cls, keys: Iterable[TrustedKey]) -> Keyring:
        return cls({key_id_of(k.key): k for k in keys})

    def with_key(self, key: TrustedKey) -> Keyring:
        return Keyring({**self.keys, key_id_of(key.key): key})

    def describe(self) -> str:
        """Names and key ids (for a start-up line; public information)."""
        if not self.keys:
            return "no key"
        return ", ".join(
            f"{k.name}{' (service)' if k.service else ''} {key_id}"
            for key_id, k in sorted(self.keys.items(), key=lambda item: item[1].name)
        )


def parse_keyring(data: bytes, where: str) -> Keyring:
    """The keyring in `data` (see the module docstring); `ConfigError` names the line."""
    text = data.decode("utf-8", "replace")
    keys: dict[str, TrustedKey] = {}
    header: tuple[str, str, int] | None = None
    position = 0
    for block in _BLOCK.finditer(text):
        header = _headers(text[position : block.start()], where, _line(text, position), header)
        position = block.end()
        number = _line(text, block.start())
        if block.group(1) != "PUBLIC KEY":
            raise ConfigError(
                f"{where}: line {number} holds a {block.group(1)}: a keyring holds public keys "
                "only (`openssl pkey -in KEY.pem -pubout`)"
            )
        if header is None:
            raise ConfigError(
                f"{where}: line {number}: the key needs a `Signer: NAME` or `Service: NAME` "
                "line before it"
            )
        try:
            key = serialization.load_pem_public_key(block.group(0).encode())
        except ValueError:
            raise ConfigError(f"{where}: line {number}: the PUBLIC KEY cannot be read") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ConfigError(f"{where}: line {number}: the public key is not an Ed25519 key")
        kind, name, _ = header
        key_id = key_id_of(key)
        trusted = TrustedKey(name, key, kind == "Service")
        known = keys.get(key_id)
        if known is not None and (known.name, known.service) != (name, trusted.service):
            raise ConfigError(f"{where}: line {number}: key {key_id} is listed for two names")
        keys[key_id] = trusted
        header = None
    header = _headers(text[position:], where, _line(text, position), header)
    if header is not None:
        raise ConfigError(
            f"{where}: line {header[2]}: `{header[0]}: {header[1]}` has no key after it"
        )
    return Keyring(keys)


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _headers(
    chunk: str, where: str, first: int, header: tuple[str, str, int] | None
) -> tuple[str, str, int] | None:
    """The header line among the text between two blocks (comments and blank lines aside)."""
    for number, line in enumerate(chunk.splitlines(), start=first):
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        match = _HEADER.match(item)
        if match is None:
            raise ConfigError(
                f"{where}: line {number} is neither `Signer: NAME`, `Service: NAME`, a comment "
                "nor part of a PEM block"
            )
        if header is not None:
            raise ConfigError(f"{where}: line {number}: two names for one key")
        name = match.group(2)
        if not _NAME.match(name):
            raise ConfigError(f"{where}: line {number}: {name!r} is not a signer name")
        header = (match.group(1), name, number)
    return header


class ActionVerifier:
    """Checks an action record's signature against the keyring `keys()` gives (re-asked every
    time, so a keyring reloaded from its file applies to the next record)."""

    def __init__(self, keys: Callable[[], Keyring], *, accept_unsigned: bool = False) -> None:
        self.keys = keys
        self.accept_unsigned = accept_unsigned

    def check(self, record: Mapping[str, Any]) -> str | None:
        """The signer's name; None for an unsigned record let through (`accept_unsigned`).

        Raises `SignatureError` when the record must not change anything.
        """
        key_id, signature = record.get(KEY_ID), record.get(SIGNATURE)
        if key_id is None and signature is None:
            if self.accept_unsigned:
                return None
            raise SignatureError(
                UNSIGNED, "the action is not signed (no key_id and signature): refused"
            )
        if not isinstance(key_id, str) or not isinstance(signature, str):
            raise SignatureError(BAD_SIGNATURE, "key_id and signature must both be strings")
        trusted = self.keys().keys.get(key_id)
        if trusted is None:
            raise SignatureError(UNKNOWN_KEY, f"signed by key {key_id}, which the keyring lacks")
        try:
            raw = base64.b64decode(signature, validate=True)
            trusted.key.verify(raw, signed_bytes(record))
        except (InvalidSignature, binascii.Error, ValueError, TypeError):
            raise SignatureError(
                BAD_SIGNATURE, f"the signature of key {key_id} ({trusted.name}) does not verify"
            ) from None
        if not trusted.service and record.get("by") != trusted.name:
            raise SignatureError(
                BAD_SIGNATURE,
                f"key {key_id} is {trusted.name}'s and signs only {trusted.name}'s actions",
            )
        return trusted.name
