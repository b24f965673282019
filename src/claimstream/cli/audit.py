"""`claimstream audit verify`: read an audit chain back and name the first tampered record.

Reads the audit topic from the broker (`--topic claimstream.audit.v1`: every partition from
the beginning, until each partition's end is reached and a fetch comes back empty) or a
JSON-lines export (`--file`, one record a line, in topic order per partition). Chains are
checked independently (a partition of each audited topic in the stream's trail); an exact copy
of a record already read is redelivery (the stream writes at least once and recomputes the
same records after a crash) and is counted, not failed, unless `--strict`.

Exit status: 0 the chain is intact, 1 it was tampered with (the report names the first record
changed, removed or reordered, by line or by topic partition and offset), 2 the input could
not be read at all.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

HELP = "verify the tamper-evident audit trail (hash chain) and name the first tampered record"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="audit_action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "verify",
        help="check the hash chain of an audit trail",
        description="Check every record's hash, the link to the record before it and the "
        "sequence numbers, per chain; report the first record that was changed, removed or "
        "reordered. Exit 0 intact, 1 tampered, 2 unreadable input.",
    )
    source = check.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", metavar="FILE", help="JSON-lines export of the audit trail")
    source.add_argument(
        "--topic",
        metavar="NAME",
        help="read the audit topic from the broker, e.g. claimstream.audit.v1",
    )
    check.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        help="with --topic: Kafka bootstrap (kafka://host:port or host:port); default "
        "$CLAIMSTREAM_BROKER_URL",
    )
    check.add_argument(
        "--partial",
        action="store_true",
        help="the trail may start mid-chain (topic retention, a partial export): don't "
        "require seq 0",
    )
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
    check.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    import orjson

    from claimstream.audit.verify import verify

    heads: dict[int | str, str] = {}
    for item in args.head:
        chain, _, value = item.rpartition(":")
        partition, _, source = chain.partition("/")
        if not partition.isdigit() or "/" in source or len(value) != 64:
            return _fail(f"bad --head {item!r} (expected PARTITION[/SOURCE]:SHA256HEX)")
        heads[chain] = value
    if args.topic is not None:
        loaded = _read_topic(args)
        if loaded is None:
            return 2
        records, places = loaded
        unit = "record"
    else:
        try:
            with open(args.file, "rb") as source_file:
                lines = source_file.read().splitlines()
        except OSError as exc:
            return _fail(f"cannot read {args.file}: {exc}")
        records = []
        for line in lines:
            try:
                records.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                records.append(None)  # reported as malformed at its line
        places = []
        unit = "line"
    report = verify(records, from_genesis=not args.partial, heads=heads, strict=args.strict)
    problem = report.problem
    where = None
    if problem is not None and places:
        where = places[problem.position - 1] if problem.position <= len(places) else None
    if args.json:
        print(
            orjson.dumps(
                {
                    "ok": report.ok,
                    "records": report.records,
                    "redelivered": len(report.redelivered),
                    "heads": {name: h.hash for name, h in sorted(report.heads.items())},
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


def _fail(message: str) -> int:
    print(f"claimstream audit verify: {message}", file=sys.stderr)
    return 2


def _read_topic(args: argparse.Namespace) -> tuple[list[Any], list[str]] | None:
    import asyncio

    import orjson

    from claimstream.kafka.reader import ProgressLine, TopicReader, TopicReadError
    from claimstream.kafka.url import bootstrap_servers

    try:
        bootstrap = bootstrap_servers(args.bootstrap)
    except ValueError as exc:
        _fail(str(exc))
        return None
    progress = ProgressLine(f"reading {args.topic}")

    async def read() -> list[Any]:
        async with TopicReader(bootstrap, args.topic, progress=progress) as reader:
            return await reader.read_new()

    try:
        topic_records = asyncio.run(read())
    except TopicReadError as exc:
        _fail(str(exc))
        return None
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
