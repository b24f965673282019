"""`claimstream rules list|set`: the detection configuration in force, and changing it live.

Exit status: 0 shown or published, 2 a change refused (nothing published) or a bad setting in
the environment, 3 the broker did not answer.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
from typing import Any

HELP = "show the rules' configuration in force, or change a threshold on the control topic"
EXAMPLE = "claimstream rules set readmission_24h max_gap_hours=48 --reason 'circular 2026-07'"

_COMMON = ("enabled", "mode", "severity", "issue_commands")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = sub.add_parser(
        "list",
        help="show every rule's settings and the configuration version",
        description="Show the configuration in force: the newest snapshot on the control "
        "topic, or, when none was published, the defaults with CLAIMSTREAM_RULE__* applied.",
        epilog="example: claimstream rules list --json > config.json   # replay --config reads it",
    )
    listing.add_argument(
        "--json",
        action="store_true",
        help="print the configuration as JSON (the shape `replay --config` reads)",
    )
    setting = sub.add_parser(
        "set",
        help="change settings of one rule, e.g. `rules set readmission_24h max_gap_hours=48`",
        description="Validate the change against the configuration in force and publish the "
        "new configuration on the control topic; every worker applies it within seconds. An "
        "invalid change is refused here and nothing is published.",
        epilog="example: claimstream rules set high_frequency_consultation enabled=false "
        "--reason 'under review'",
    )
    setting.add_argument("rule", help="rule name (see `claimstream rules list`)")
    setting.add_argument("assignments", nargs="+", metavar="SETTING=VALUE")
    setting.add_argument(
        "--by", default=os.environ.get("USER"), help="who makes the change (default: $USER)"
    )
    setting.add_argument("--reason", help="why (kept with the change)")
    for sub_parser in (listing, setting):
        sub_parser.add_argument(
            "--bootstrap",
            help="broker (default: $CLAIMSTREAM_BROKER_URL or kafka://127.0.0.1:9092)",
        )
        sub_parser.add_argument("--topic", help="control topic (default claimstream.control.rules)")


def run(args: argparse.Namespace) -> int:
    from aiokafka.errors import KafkaError

    from claimstream.cli.exits import CommandError, Unreachable, broker_unreachable, require_broker
    from claimstream.kafka.control import (
        CONTROL_TOPIC,
        Snapshot,
        next_snapshot,
        parse_assignments,
        publish,
    )
    from claimstream.model.config import ConfigError
    from claimstream.stream.settings import detection_from_env

    bootstrap = require_broker(args.bootstrap)
    topic = args.topic or CONTROL_TOPIC
    try:
        latest = asyncio.run(_read_latest(bootstrap, topic))
    except TimeoutError:
        raise Unreachable(f"no answer from the broker at {bootstrap} within 15 s") from None
    except KafkaError as exc:  # a client failure once connected: say it plainly
        raise broker_unreachable(exc, args.bootstrap) from None
    try:
        current = latest or Snapshot(detection_from_env(os.environ))
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    if args.action == "list":
        _print_config(current, from_topic=latest is not None, topic=topic, as_json=args.json)
        return 0
    try:
        changes = parse_assignments(args.assignments)
        snapshot = next_snapshot(current.config, args.rule, changes, by=args.by, reason=args.reason)
    except ConfigError as exc:
        print(f"claimstream rules set: refused, nothing published: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(asyncio.wait_for(publish(bootstrap, snapshot, topic), 15))
    except TimeoutError:
        raise Unreachable(f"not published: no acknowledgement from {bootstrap} in 15 s") from None
    except KafkaError as exc:
        raise broker_unreachable(exc, args.bootstrap) from None
    print(
        f"published configuration version {snapshot.version} on {topic}: {args.rule} "
        + " ".join(f"{k}={v}" for k, v in changes.items())
    )
    return 0


def _print_config(snapshot: Any, *, from_topic: bool, topic: str, as_json: bool) -> None:
    import orjson

    config = snapshot.config
    if as_json:
        sys.stdout.write(orjson.dumps(config.to_dict(), option=orjson.OPT_INDENT_2).decode())
        sys.stdout.write("\n")
        return
    source = f"control topic {topic}" if from_topic else "defaults and environment"
    print(f"configuration version {config.version} (from {source})")
    if snapshot.changed_by or snapshot.changed_at:
        print(
            f"last change: {snapshot.change} by {snapshot.changed_by} at {snapshot.changed_at}"
            + (f" ({snapshot.reason})" if snapshot.reason else "")
        )
    print(
        f"engine: allowed_lateness_hours={config.allowed_lateness_hours:g} "
        f"timezone={config.timezone} dedup_retention_hours={config.dedup_retention_hours:g}"
    )
    rows = []
    for name, settings in sorted(config.rules.items()):
        values = dataclasses.asdict(settings)
        thresholds = " ".join(f"{k}={_show(v)}" for k, v in values.items() if k not in _COMMON)
        commands = "yes" if values["issue_commands"] else "no"
        state = "on" if values["enabled"] else "off"
        rows.append((name, state, values["mode"], values["severity"], commands, thresholds))
    header = ("rule", "enabled", "mode", "severity", "commands", "thresholds")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(row[:5], widths, strict=True)]
        print("  ".join([*cells, row[5]]))


def _show(value: Any) -> str:
    if isinstance(value, list | tuple | frozenset):
        return ",".join(str(v) for v in value)
    return str(value)


async def _read_latest(bootstrap: str, topic: str) -> Any:
    from claimstream.kafka.control import read_latest

    async with asyncio.timeout(15):
        return await read_latest(bootstrap, topic)
