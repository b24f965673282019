"""`claimstream topics apply|list`: create the declared topics, check them for drift, show them.

Run `topics apply` before the first worker or producer: brokers that auto-create topics on a
metadata request (Tansu always) would otherwise create them with the wrong partition count.

Exit status: 0 applied (or, with `--check`, everything as declared), 1 drift or a topic missing
(`--check`) or a topic that could not be created, 2 a bad topics file or argument, 3 the
broker did not answer.
"""

from __future__ import annotations

import argparse

from claimstream.kafka.topology import Topology, TopologyError, load_topology
from claimstream.kafka.url import DEFAULT_BROKER_URL, ENV_BROKER_URL

HELP = "create the topics declared in topics/topics.toml, report drift, or list them"
EXAMPLE = "claimstream topics apply --check"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="topics_action", metavar="ACTION", required=True)
    apply = actions.add_parser(
        "apply",
        help="create missing topics and report drift",
        description="Create missing topics and report drift (partition count, replication "
        "factor, configs the broker describes). Existing topics are never changed.",
        epilog="example: claimstream topics apply --bootstrap kafka://127.0.0.1:9092\n"
        "         claimstream topics apply --check   # create nothing; exit 1 on drift",
    )
    apply.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        help=f"broker address, kafka://host:port or host:port "
        f"(default: ${ENV_BROKER_URL}, else {DEFAULT_BROKER_URL})",
    )
    apply.add_argument(
        "--check",
        action="store_true",
        help="create nothing; exit 1 if any topic is missing or drifted",
    )
    apply.add_argument(
        "--timeout", type=float, default=30.0, metavar="SECONDS", help="longest wait for the broker"
    )
    _add_file_options(apply)
    listing = actions.add_parser(
        "list",
        help="print the declaration (no broker needed)",
        description="Print the topics topics.toml declares: name, role, partitions, cleanup "
        "policy, retention, key and value schema. Reads the file only.",
        epilog="example: claimstream topics list --partitions 4",
    )
    _add_file_options(listing)


def _add_file_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", metavar="F", help="topics file (default: topics/topics.toml)")
    parser.add_argument(
        "--partitions",
        type=int,
        metavar="N",
        help="partition count of the co-partitioned topics (default: from the file)",
    )
    parser.add_argument(
        "--replication-factor", type=int, metavar="N", help="(default: from the file)"
    )


def run(args: argparse.Namespace) -> int:
    from claimstream.cli.exits import CommandError

    try:
        topology = load_topology(args.file, args.partitions, args.replication_factor)
    except TopologyError as exc:
        raise CommandError(str(exc)) from None
    if args.topics_action == "list":
        print(format_declaration(topology))
        return 0
    return _apply(args, topology)


def _apply(args: argparse.Namespace, topology: Topology) -> int:
    from claimstream.cli.exits import CommandError, broker_unreachable, require_broker
    from claimstream.kafka.admin import apply_topics_sync
    from claimstream.kafka.url import BrokerUnreachable

    if args.timeout <= 0:
        raise CommandError("--timeout must be greater than 0")
    bootstrap = require_broker(args.bootstrap, timeout=min(args.timeout, 5.0))
    try:
        report = apply_topics_sync(
            bootstrap, topology, create=not args.check, request_timeout=args.timeout
        )
    except (BrokerUnreachable, TimeoutError) as exc:
        if isinstance(exc, TimeoutError):
            exc = BrokerUnreachable(bootstrap, f"no answer within {args.timeout:g} s")
        raise broker_unreachable(exc, args.bootstrap) from None
    print(report.format_table())
    if report.with_status("error"):
        return 1
    if report.drifted:
        print("drift: existing topics differ from the declaration (never changed by apply)")
    if args.check and not report.in_sync:
        return 1
    return 0


def format_declaration(topology: Topology) -> str:
    """The declaration as a table: name, partitions, cleanup, retention, key, value schema."""
    rows = [("TOPIC", "ROLE", "PART", "CLEANUP", "RETENTION", "KEY", "VALUE")]
    for t in topology.topics:
        value = t.value_schema.name if t.value_schema is not None else (t.value or "-")
        rows.append(
            (
                t.name,
                t.role,
                str(t.partitions),
                t.cleanup_policy,
                _retention(t.retention_ms),
                t.key,
                value,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    groups = ", ".join(
        f"{name} ({len(specs)} topics)" for name, specs in topology.copartition_groups().items()
    )
    lines.append(
        f"\n{len(topology.topics)} topics from {topology.source}; co-partitioned groups with "
        f"{topology.default_partitions} partitions each: {groups}"
    )
    return "\n".join(lines)


def _retention(ms: int | None) -> str:
    if ms is None:
        return "default"
    if ms < 0:
        return "forever"
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"
