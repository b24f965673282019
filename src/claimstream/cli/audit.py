"""`claimstream audit`: verify the audit trail, make its keys, checkpoint a trail by hand.

`verify` reads the audit topic from the broker (`--topic claimstream.audit.v1`: every
partition from the beginning, until each partition's end is reached and a fetch comes back
empty) or a JSON-lines export (`--file`, one record a line, in topic order per partition), and
checks every chain: hashes, links, sequence numbers, each record's MAC (with the HMAC key ring),
and the heads the signed checkpoints attest (with the checkpoint directory and the public key).
It names tail truncation, a dropped chain, a re-hashed rewrite and a forged append, and says in
`WARNING:` lines what it could not check (no key, no checkpoint, unkeyed records). An exact copy
of a record already read is redelivery and is counted, not failed, unless `--strict`.

`keygen` writes an HMAC key ring and an Ed25519 key pair into a directory (or rotates them);
`checkpoint` verifies a trail and signs its current heads (the cut-over of a trail written
before the keys: its history is then pinned by a signature).

Exit status (docs/cli.md): 0 intact, 1 tampered (or a checkpoint forged), 2 unusable input or
key, 3 the broker could not be reached.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from claimstream.audit.checkpoint import Checkpoint
    from claimstream.audit.keys import HmacKeyRing, PublicKeys

HELP = "verify the tamper-evident audit trail (keyed hash chain, signed checkpoints); make keys"
EXAMPLE = "claimstream audit verify --topic claimstream.audit.v1"


class _Exit(Exception):
    """Stop with `code` after printing `message` (if any) to stderr."""

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="audit_action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "verify",
        help="check the audit trail against its keys and signed checkpoints",
        description="Check every record's hash, MAC and link to the record before it, and "
        "every chain against the signed checkpoints; name the first record that was changed, "
        "removed, reordered, rewritten and re-hashed, or forged, a chain truncated or dropped. "
        "Exit 0 intact, 1 tampered, 2 unusable input, 3 broker unreachable.",
        epilog="example: claimstream audit verify --topic claimstream.audit.v1",
    )
    _add_source(check)
    check.add_argument(
        "--head",
        action="append",
        default=[],
        metavar="CHAIN:HASH",
        help="the known head hash of a chain (PARTITION or PARTITION/SOURCE, e.g. 3/alerts), "
        "to catch records removed from the end; repeatable",
    )
    check.add_argument(
        "--strict",
        action="store_true",
        help="report an exact copy of a record (normally redelivery) as tampering",
    )
    check.add_argument(
        "--all-checkpoints",
        action="store_true",
        help="check every checkpoint, not only each partition's latest (slower; places a "
        "rewrite between two checkpoints without the HMAC key)",
    )
    check.add_argument(
        "--require-mac",
        action="store_true",
        help="every record must carry a MAC (after the cut-over: no unkeyed record accepted)",
    )
    check.add_argument("--json", action="store_true", help="print the report as JSON")

    keygen = actions.add_parser(
        "keygen",
        help="write an HMAC key ring and an Ed25519 checkpoint key pair",
        description="Write DIR/hmac.keys (HMAC key ring, mode 0600), DIR/signing.pem (Ed25519 "
        "private key, 0600) and DIR/public.pem (its public key, for auditors). With --rotate, "
        "append a new HMAC key (the last one writes), replace the signing key and append its "
        "public key to public.pem (the old ones keep verifying older records and checkpoints). "
        "No secret is printed.",
        epilog="example: claimstream audit keygen --dir keys --export > audit.env && . ./audit.env",
    )
    keygen.add_argument("--dir", required=True, metavar="DIR", help="where to write the keys")
    keygen.add_argument("--rotate", action="store_true", help="add new keys to existing ones")
    keygen.add_argument(
        "--export",
        action="store_true",
        help="print only `export CLAIMSTREAM_AUDIT_...` lines for a worker writing with these "
        "keys (checkpoints in DIR/checkpoints), to source in a shell; the rest goes to stderr",
    )

    point = actions.add_parser(
        "checkpoint",
        help="verify a trail and sign its current heads into the checkpoint directory",
        description="Verify the trail (as `verify` does) and, when it is intact, write a "
        "signed checkpoint of each partition's chain heads: how a trail written before the "
        "keys is pinned at the cut-over. Exit 1 (nothing written) when it is not intact.",
        epilog="example: claimstream audit checkpoint --topic claimstream.audit.v1",
    )
    _add_source(point)


def _add_source(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", metavar="FILE", help="JSON-lines export of the audit trail")
    source.add_argument(
        "--topic",
        metavar="NAME",
        help="read the audit topic from the broker, e.g. claimstream.audit.v1",
    )
    parser.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        help="with --topic: Kafka bootstrap (kafka://host:port or host:port); default "
        "$CLAIMSTREAM_BROKER_URL",
    )
    parser.add_argument(
        "--partial",
        action="store_true",
        help="the trail may start mid-chain (topic retention, a partial export): don't "
        "require seq 0",
    )
    parser.add_argument(
        "--hmac-key-file",
        metavar="FILE",
        help="HMAC key ring (base64 keys, one a line) to check every record's MAC; default "
        "$CLAIMSTREAM_AUDIT_HMAC_KEY_FILE",
    )
    parser.add_argument(
        "--checkpoints",
        metavar="DIR",
        help="the signed checkpoints' directory; default $CLAIMSTREAM_AUDIT_CHECKPOINT_DIR",
    )
    parser.add_argument(
        "--public-key",
        action="append",
        default=[],
        metavar="FILE",
        help="PEM public key(s) the checkpoints are signed with; repeatable; default "
        "$CLAIMSTREAM_AUDIT_PUBLIC_KEY_FILE (or the public half of "
        "$CLAIMSTREAM_AUDIT_SIGNING_KEY_FILE)",
    )
    parser.add_argument(
        "--signing-key-file",
        metavar="FILE",
        help="(checkpoint) the Ed25519 private key to sign with; default "
        "$CLAIMSTREAM_AUDIT_SIGNING_KEY_FILE",
    )


def run(args: argparse.Namespace) -> int:
    try:
        if args.audit_action == "keygen":
            return _keygen(args)
        if args.audit_action == "checkpoint":
            return _checkpoint(args)
        return _verify(args)
    except _Exit as stop:
        if stop.message:
            print(f"claimstream audit {args.audit_action}: {stop.message}", file=sys.stderr)
        return stop.code


# --- verify ------------------------------------------------------------------------------


def _verify(args: argparse.Namespace) -> int:
    import orjson

    from claimstream.audit.verify import verify

    heads: dict[int | str, str] = {}
    for item in args.head:
        chain, _, value = item.rpartition(":")
        partition, _, source = chain.partition("/")
        if not partition.isdigit() or "/" in source or len(value) != 64:
            raise _Exit(2, f"bad --head {item!r} (expected PARTITION[/SOURCE]:SHA256HEX)")
        heads[chain] = value
    ring, public, folder = _keys(args)
    checkpoints = _checkpoints(folder, public, every=args.all_checkpoints)
    records, places, unit = _records(args)
    report = verify(
        records,
        from_genesis=not args.partial,
        heads=heads,
        strict=args.strict,
        keys=ring,
        checkpoints=checkpoints,
        require_mac=args.require_mac,
    )
    problem = report.problem
    where = None
    if problem is not None and places:
        where = places[problem.position - 1] if 0 < problem.position <= len(places) else None
    if args.json:
        print(
            orjson.dumps(
                {
                    "ok": report.ok,
                    "records": report.records,
                    "redelivered": len(report.redelivered),
                    "heads": {name: h.hash for name, h in sorted(report.heads.items())},
                    "macs_verified": report.macs_verified,
                    "macs_unchecked": report.macs_unchecked,
                    "unkeyed": report.unkeyed,
                    "checkpoints": report.checkpoints,
                    "attested": {
                        name: {"records": c.records, "written_at": c.written_at}
                        for name, c in sorted(report.attested.items())
                    },
                    "unattested": report.unattested,
                    "warnings": report.warnings,
                    "problem": None
                    if problem is None
                    else {
                        "kind": problem.kind,
                        unit if unit == "line" else "position": problem.position,
                        "where": where,
                        "partition": problem.partition,
                        "source": problem.source,
                        "seq": problem.seq,
                        "record_id": problem.record_id,
                        "detail": problem.detail,
                    },
                }
            ).decode()
        )
    else:
        print(report.render(unit=unit, where=where))
    return 0 if report.ok else 1


def _keys(args: argparse.Namespace) -> tuple[HmacKeyRing | None, PublicKeys | None, str | None]:
    """(HMAC key ring, checkpoint public keys, checkpoint directory): options over env."""
    from claimstream.audit.keys import parse_hmac_ring
    from claimstream.audit.settings import VerifierSettings, public_keys_from_file
    from claimstream.model.config import ConfigError

    try:
        env = VerifierSettings.from_env()
        ring = env.hmac
        if args.hmac_key_file:
            text = _read(args.hmac_key_file, "--hmac-key-file").decode("utf-8", "replace")
            ring = parse_hmac_ring(text, f"--hmac-key-file ({args.hmac_key_file})")
        public = env.public_keys
        if args.public_key:
            public = None
            for path in args.public_key:
                found = public_keys_from_file(path, "--public-key")
                public = found if public is None else public.merged(found)
    except ConfigError as exc:
        raise _Exit(2, str(exc)) from None
    return ring, public, args.checkpoints or env.checkpoint_dir


def _checkpoints(
    folder: str | None, public: PublicKeys | None, *, every: bool
) -> list[Checkpoint] | None:
    """The checkpoints of `folder`, signatures checked (None: no folder given)."""
    from claimstream.audit.checkpoint import CheckpointError, read_checkpoint
    from claimstream.audit.store import DirectoryStore

    if folder is None:
        return None
    if public is None:
        raise _Exit(
            2,
            f"checkpoints in {folder} but no public key to check their signatures "
            "(--public-key FILE or CLAIMSTREAM_AUDIT_PUBLIC_KEY_FILE)",
        )
    store = DirectoryStore(folder)
    try:
        found = list(store.every() if every else store.latest())
    except OSError as exc:
        raise _Exit(2, f"cannot read the checkpoints in {folder}: {exc.strerror or exc}") from None
    if not found:
        raise _Exit(2, f"no checkpoint in {folder}")
    checkpoints = []
    for where, raw in found:
        try:
            checkpoints.append(read_checkpoint(raw, public, where))
        except CheckpointError as exc:
            if exc.kind == "unknown_key":
                raise _Exit(2, str(exc)) from None
            print(f"TAMPERED: {exc}")
            raise _Exit(1) from None
    return checkpoints


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise _Exit(2, f"{what}: cannot read {path}: {exc.strerror or exc}") from None


def _records(args: argparse.Namespace) -> tuple[list[Any], list[str], str]:
    """(records, where each is, the unit a position is counted in)."""
    import orjson

    if args.topic is not None:
        from_topic, places = _read_topic(args)
        return from_topic, places, "record"
    try:
        with open(args.file, "rb") as source_file:
            lines = source_file.read().splitlines()
    except OSError as exc:
        raise _Exit(2, f"cannot read {args.file}: {exc}") from None
    records: list[Any] = []
    for line in lines:
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            records.append(None)  # reported as malformed at its line
    return records, [], "line"


def _read_topic(args: argparse.Namespace) -> tuple[list[Any], list[str]]:
    import asyncio

    import orjson

    from claimstream.cli.exits import require_broker
    from claimstream.kafka.reader import ProgressLine, TopicReader, TopicReadError
    from claimstream.kafka.url import bootstrap_servers

    try:
        bootstrap = bootstrap_servers(args.bootstrap)
    except ValueError as exc:
        raise _Exit(2, str(exc)) from None
    require_broker(args.bootstrap)  # nothing there: the one line every command says, exit 3
    progress = ProgressLine(f"reading {args.topic}")

    async def read() -> list[Any]:
        async with TopicReader(bootstrap, args.topic, progress=progress) as reader:
            return await reader.read_new()

    try:
        topic_records = asyncio.run(read())
    except TopicReadError as exc:
        # the reader raises from the client's error when the broker cannot be reached, and
        # with no cause when the topic is missing or empty of partitions (an input error)
        raise _Exit(3 if exc.__cause__ is not None else 2, str(exc)) from None
    finally:
        progress.close()
    # one chain lives in one topic partition: verify each partition's records in offset order
    topic_records.sort(key=lambda r: (r.partition, r.offset))
    records: list[Any] = []
    for r in topic_records:
        try:
            records.append(orjson.loads(r.value) if r.value is not None else None)
        except orjson.JSONDecodeError:
            records.append(None)  # reported as malformed at its offset
    return records, [r.where() for r in topic_records]


# --- keygen ---------------------------------------------------------------------------------


def _keygen(args: argparse.Namespace) -> int:
    from claimstream.audit.keyfiles import KeyFilesError, write_key_files

    try:
        keys = write_key_files(args.dir, rotate=args.rotate)
    except KeyFilesError as exc:
        raise _Exit(2, str(exc)) from None
    verb = "rotated to" if args.rotate else "wrote"
    human = sys.stderr if args.export else sys.stdout
    print(
        f"{verb} HMAC key {keys.hmac_key_id} ({keys.ring}) and signing key "
        f"{keys.signing_key_id} ({keys.private})",
        file=human,
    )
    print(
        f"give auditors {keys.public}; restart the workers to write with the new keys", file=human
    )
    if args.export:
        checkpoints = Path(args.dir).resolve() / "checkpoints"
        for name, value in keys.environment(checkpoints).items():
            print(f"export {name}={shlex.quote(str(Path(value).resolve()))}")
        return 0
    print(f"CLAIMSTREAM_AUDIT_HMAC_KEY_FILE={keys.ring}")
    print(f"CLAIMSTREAM_AUDIT_SIGNING_KEY_FILE={keys.private}")
    print(f"CLAIMSTREAM_AUDIT_PUBLIC_KEY_FILE={keys.public}")
    return 0


# --- checkpoint ----------------------------------------------------------------------------


def _checkpoint(args: argparse.Namespace) -> int:
    import time

    from claimstream.audit.canonical import jcs
    from claimstream.audit.checkpoint import signed_checkpoint, utc_stamp
    from claimstream.audit.keys import PublicKeys, Signer
    from claimstream.audit.settings import signer_from
    from claimstream.audit.store import DirectoryStore
    from claimstream.audit.verify import parse_chain_name, verify
    from claimstream.model.config import ConfigError

    try:
        if args.signing_key_file:
            signer: Signer | None = Signer.from_pem(
                _read(args.signing_key_file, "--signing-key-file"),
                f"--signing-key-file ({args.signing_key_file})",
            )
        else:
            signer = signer_from(os.environ)
    except ConfigError as exc:
        raise _Exit(2, str(exc)) from None
    if signer is None:
        raise _Exit(2, "no signing key (--signing-key-file or CLAIMSTREAM_AUDIT_SIGNING_KEY_FILE)")
    ring, public, folder = _keys(args)
    if folder is None:
        raise _Exit(
            2, "no checkpoint directory (--checkpoints or CLAIMSTREAM_AUDIT_CHECKPOINT_DIR)"
        )
    own = PublicKeys.of([signer.public_key])
    public = own if public is None else public.merged(own)
    existing = Path(folder).is_dir() and any(Path(folder).iterdir())
    checkpoints = _checkpoints(folder, public, every=False) if existing else None
    records, places, unit = _records(args)
    report = verify(records, from_genesis=not args.partial, keys=ring, checkpoints=checkpoints)
    if not report.ok:
        problem = report.problem
        assert problem is not None
        where = places[problem.position - 1] if 0 < problem.position <= len(places) else None
        print(report.render(unit=unit, where=where))
        print("nothing signed: the trail is not intact")
        return 1
    by_partition: dict[int, dict[str, tuple[int, str]]] = {}
    for name, head in report.heads.items():
        partition, _ = parse_chain_name(name)
        by_partition.setdefault(partition, {})[name] = (head.last_seq + 1, head.hash)
    store = DirectoryStore(folder)
    written_at = utc_stamp(time.time())
    try:
        for partition, heads in sorted(by_partition.items()):
            document = signed_checkpoint(partition, heads, written_at, signer)
            where = store.write(partition, written_at, jcs(document))
            print(f"signed {len(heads)} chain head(s): {where}")
    except OSError as exc:
        raise _Exit(2, f"cannot write checkpoints in {folder}: {exc.strerror or exc}") from None
    for warning in report.warnings:
        print(f"WARNING: {warning}")
    return 0
