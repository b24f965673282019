"""Writing the audit keys to files: `claimstream audit keygen`, the demo and the tests.

A key directory holds `hmac.keys` (the HMAC ring, mode 0600), `signing.pem` (the Ed25519
private key, 0600) and `public.pem` (the public keys auditors get). `write_key_files` creates
them, or with `rotate` appends a new HMAC key (the last one writes) and a new public key and
replaces the signing key.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from claimstream.audit.keys import Signer, hmac_key_id, new_hmac_line

RING_HEADER = (
    "# claimstream audit HMAC key ring: base64 keys, one a line; the LAST one writes,\n"
    "# the earlier ones verify older records. Keep secret (workers and the verifier only).\n"
)


class KeyFilesError(ValueError):
    """The key files cannot be written as asked; the message says why (never a secret)."""


@dataclass(frozen=True, slots=True)
class KeyFiles:
    ring: Path
    private: Path
    public: Path
    hmac_key_id: str
    signing_key_id: str

    def environment(self, checkpoint_dir: str | os.PathLike[str]) -> dict[str, str]:
        """The `CLAIMSTREAM_AUDIT_*` variables a worker writing with these keys needs."""
        return {
            "CLAIMSTREAM_AUDIT_HMAC_KEY_FILE": str(self.ring),
            "CLAIMSTREAM_AUDIT_SIGNING_KEY_FILE": str(self.private),
            "CLAIMSTREAM_AUDIT_PUBLIC_KEY_FILE": str(self.public),
            "CLAIMSTREAM_AUDIT_CHECKPOINT_DIR": str(checkpoint_dir),
        }


def write_key_files(folder: str | os.PathLike[str], *, rotate: bool = False) -> KeyFiles:
    """New keys in `folder` (or, with `rotate`, new keys added to the existing ones)."""
    where = Path(folder)
    ring, private, public = where / "hmac.keys", where / "signing.pem", where / "public.pem"
    existing = [p for p in (ring, private, public) if p.exists()]
    if existing and not rotate:
        names = ", ".join(str(p) for p in existing)
        raise KeyFilesError(f"{names} already exist(s): add --rotate to add new keys to them")
    if rotate and len(existing) != 3:
        missing = ", ".join(str(p) for p in (ring, private, public) if not p.exists())
        raise KeyFilesError(f"--rotate needs the existing keys; missing: {missing}")
    try:
        where.mkdir(parents=True, exist_ok=True)
        line = new_hmac_line()
        if rotate:
            with open(ring, "a", encoding="ascii") as out:
                out.write(line + "\n")
        else:
            _write_private(ring, (RING_HEADER + line + "\n").encode())
        signer = Signer.generate()
        _write_private(private, signer.private_pem(), replace=rotate)
        with open(public, "ab") as out:
            out.write(signer.public_pem())
    except OSError as exc:
        raise KeyFilesError(f"cannot write the keys in {where}: {exc.strerror or exc}") from None
    return KeyFiles(ring, private, public, hmac_key_id(base64.b64decode(line)), signer.key_id)


def _write_private(path: Path, data: bytes, *, replace: bool = False) -> None:
    """Write a secret file with mode 0600 (atomically replacing it when `replace`)."""
    target = path.with_name(f".{path.name}.new") if replace else path
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if replace:
        os.replace(target, path)
