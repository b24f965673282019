"""`claimstream audit verify`: read an audit chain back and name the first tampered record.

Reads a JSON-lines export of the audit trail (`--file`, one record a line, in topic order per
partition). Reading the audit topic straight from the broker (`--topic`) is not built yet: the
streaming pipeline has no audit topic so far; until it does, export the topic to JSON lines
(e.g. with a console consumer) and pass the file.

Exit status: 0 the chain is intact, 1 it was tampered with (the report names the first record
changed, removed, reordered or duplicated), 2 the input could not be read at all.
"""

from __future__ import annotations

import argparse
import sys

HELP = "verify the tamper-evident audit trail (hash chain) and name the first tampered record"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="audit_action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "verify",
        help="check the hash chain of an audit trail",
        description="Check every record's hash, the link to the record before it and the "
        "sequence numbers, per partition; report the first record that was changed, "
        "removed or reordered.",
    )
    source = check.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", metavar="FILE", help="JSON-lines export of the audit trail")
    source.add_argument(
        "--topic", metavar="NAME", help="read the audit topic from the broker (not built yet)"
    )
    check.add_argument(
        "--partial",
        action="store_true",
        help="the export may start mid-chain (topic retention): don't require seq 0",
    )
    check.add_argument(
        "--head",
        action="append",
        default=[],
        metavar="PARTITION:HASH",
        help="the known head hash of a partition, to catch records removed from the end",
    )
    check.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    import orjson

    from claimstream.audit.verify import verify

    if args.topic is not None:
        print(
            "claimstream audit verify: reading the audit topic is not built yet (TODO: the "
            "pipeline has no audit topic); export it to JSON lines and use --file",
            file=sys.stderr,
        )
        return 2
    heads: dict[int, str] = {}
    for item in args.head:
        partition, _, value = item.partition(":")
        if not partition.isdigit() or len(value) != 64:
            print(f"claimstream audit verify: bad --head {item!r}", file=sys.stderr)
            return 2
        heads[int(partition)] = value
    try:
        with open(args.file, "rb") as source:
            lines = source.read().splitlines()
    except OSError as exc:
        print(f"claimstream audit verify: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    records: list[object] = []
    for line in lines:
        try:
            records.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            records.append(None)  # reported as malformed at its line
    report = verify(records, from_genesis=not args.partial, heads=heads)
    if args.json:
        problem = report.problem
        print(
            orjson.dumps(
                {
                    "ok": report.ok,
                    "records": report.records,
                    "heads": {str(p): h.hash for p, h in sorted(report.heads.items())},
                    "problem": None
                    if problem is None
                    else {
                        "kind": problem.kind,
                        "line": problem.position,
                        "partition": problem.partition,
                        "seq": problem.seq,
                        "record_id": problem.record_id,
                        "detail": problem.detail,
                    },
                }
            ).decode()
        )
    else:
        print(report.render(unit="line"))
    return 0 if report.ok else 1
