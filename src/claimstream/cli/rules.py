"""`claimstream rules list|set|add|remove|diff`: the detection configuration in force, and
changing it live.

`add FILE` publishes the custom rules of a file (`[custom_rules.NAME]` tables and
`[custom_lists]`, docs/custom-rules.md), `remove NAME` takes one out, `diff FILE --events
HISTORY` replays the history twice in memory, with the configuration in force and with the
file's rules added, and prints the alerts each rule would add or lose.

Exit status: 0 shown or published (`diff`: no alert changes), 1 `diff` found alerts added or
removed, 2 a change refused (nothing published), a bad file or a bad setting in the
environment, 3 the broker did not answer.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
from typing import Any

HELP = (
    "show the rules' configuration in force, change a threshold, or add, remove and diff "
    "custom rules on the control topic"
)
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
    adding = sub.add_parser(
        "add",
        help="validate the custom rules of a file and publish them",
        description="Read FILE ([custom_rules.NAME] tables, optional [custom_lists]; TOML or "
        "JSON), add its rules to the configuration in force (replacing rules of the same "
        "names), compile and type-check every expression, and publish the new configuration "
        "on the control topic. An invalid rule is refused with a message naming the rule and "
        "the setting, and nothing is published. A new rule runs in shadow mode unless its "
        'table says mode = "enforce".',
        epilog="example: claimstream rules add high_cost.toml --reason 'circular 2026-07'",
    )
    adding.add_argument("file", help="a .toml or .json file of custom rules")
    removing = sub.add_parser(
        "remove",
        help="take a custom rule out of the configuration",
        description="Publish the configuration in force without the custom rule NAME.",
        epilog="example: claimstream rules remove high_cost_claims --reason 'replaced'",
    )
    removing.add_argument("name", help="a custom rule's name (see `claimstream rules list`)")
    diffing = sub.add_parser(
        "diff",
        help="what the custom rules of a file would have alerted on a history file",
        description="Replay HISTORY (JSON lines of events) twice in memory: with the "
        "configuration in force (or --base), and with FILE's custom rules added. Print per "
        "rule the alerts (enforced or shadow) the change adds and removes. Nothing is "
        "published. Exit 1 when any alert is added or removed, 0 when none.",
        epilog="example: claimstream rules diff high_cost.toml --events march.jsonl",
    )
    diffing.add_argument("file", help="a .toml or .json file of custom rules")
    diffing.add_argument("--events", required=True, metavar="HISTORY", help="events, JSON lines")
    diffing.add_argument(
        "--base",
        metavar="CONFIG",
        help="compare with this configuration file (`rules list --json` writes one) instead "
        "of the configuration in force on the control topic",
    )
    diffing.add_argument(
        "--json",
        action="store_true",
        help='print each added or removed alert as a JSON line with a "change" field',
    )
    for sub_parser in (adding, removing):
        sub_parser.add_argument(
            "--by", default=os.environ.get("USER"), help="who makes the change (default: $USER)"
        )
        sub_parser.add_argument("--reason", help="why (kept with the change)")
    for sub_parser in (listing, setting, adding, removing, diffing):
        sub_parser.add_argument(
            "--bootstrap",
            help="broker (default: $CLAIMSTREAM_BROKER_URL or kafka://127.0.0.1:9092)",
        )
        sub_parser.add_argument("--topic", help="control topic (default claimstream.control.rules)")


def run(args: argparse.Namespace) -> int:
    from aiokafka.errors import KafkaError

    from claimstream.cli.exits import CommandError, Unreachable, broker_unreachable, require_broker
    from claimstream.detection.config import DetectionConfig, custom_tables
    from claimstream.kafka.control import (
        CONTROL_TOPIC,
        Snapshot,
        next_snapshot,
        parse_assignments,
        publish,
    )
    from claimstream.model.config import ConfigError
    from claimstream.stream.settings import detection_from_env

    tables: tuple[dict[str, Any], dict[str, Any]] | None = None
    base: DetectionConfig | None = None
    try:  # the file first: a bad file is refused without asking the broker anything
        if args.action in ("add", "diff"):
            tables = custom_tables(args.file)
        if args.action == "diff" and args.base is not None:
            base = DetectionConfig.from_file(args.base)
    except ConfigError as exc:
        print(
            f"claimstream rules {args.action}: refused, nothing published: {exc}", file=sys.stderr
        )
        return 2
    if base is not None and tables is not None:
        return _diff(args, base, tables, source=f"--base {args.base}")
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
    if args.action == "diff":
        assert tables is not None
        where = f"configuration version {current.version} on {topic}" if latest else "defaults"
        return _diff(args, current.config, tables, source=where)
    try:
        if args.action == "set":
            changes = parse_assignments(args.assignments)
            snapshot = next_snapshot(
                current.config, args.rule, changes, by=args.by, reason=args.reason
            )
            said = f"{args.rule} " + " ".join(f"{k}={v}" for k, v in changes.items())
        elif args.action == "add":
            assert tables is not None
            snapshot, said = _added(current.config, tables, args)
        else:
            snapshot = _snapshot(
                current.config.without_custom_rule(args.name),
                {"custom_rules": {"removed": [args.name]}},
                args,
            )
            said = f"custom rule {args.name} removed"
    except ConfigError as exc:
        print(
            f"claimstream rules {args.action}: refused, nothing published: {exc}", file=sys.stderr
        )
        return 2
    try:
        asyncio.run(asyncio.wait_for(publish(bootstrap, snapshot, topic), 15))
    except TimeoutError:
        raise Unreachable(f"not published: no acknowledgement from {bootstrap} in 15 s") from None
    except KafkaError as exc:
        raise broker_unreachable(exc, args.bootstrap) from None
    print(f"published configuration version {snapshot.version} on {topic}: {said}")
    return 0


def _snapshot(config: Any, change: dict[str, Any], args: argparse.Namespace) -> Any:
    from datetime import UTC, datetime

    from claimstream.kafka.control import Snapshot

    moment = datetime.now(UTC).isoformat(timespec="seconds")
    return Snapshot(config, args.by, moment, args.reason, change)


def _added(
    current: Any, tables: tuple[dict[str, Any], dict[str, Any]], args: argparse.Namespace
) -> tuple[Any, str]:
    """The snapshot adding the file's rules and lists, and what to say about it."""
    rules, lists = tables
    config = current.with_custom(rules, lists)
    added = sorted(set(rules) - set(current.custom_rules))
    replaced = sorted(set(rules) & set(current.custom_rules))
    change: dict[str, Any] = {"added": added, "replaced": replaced}
    if lists:
        change["lists"] = sorted(lists)
    said = ", ".join(
        f"custom rule {name} {'replaced' if name in replaced else 'added'} "
        f"({config.custom_rules[name].mode})"
        for name in sorted(rules)
    )
    return _snapshot(config, {"custom_rules": change}, args), said


def _diff(
    args: argparse.Namespace,
    base: Any,
    tables: tuple[dict[str, Any], dict[str, Any]],
    *,
    source: str,
) -> int:
    """Replay the history with `base` and with the file's rules added; print the difference."""
    import orjson

    from claimstream.cli.exits import CommandError
    from claimstream.model.config import ConfigError

    try:
        candidate = base.with_custom(*tables)
    except ConfigError as exc:
        print(f"claimstream rules diff: refused: {exc}", file=sys.stderr)
        return 2
    try:
        before, events = _replayed(args.events, base)
        after, _ = _replayed(args.events, candidate)
    except OSError as exc:
        raise CommandError(f"cannot read {args.events}: {exc.strerror or exc}") from None
    added = [after[i] for i in sorted(set(after) - set(before))]
    removed = [before[i] for i in sorted(set(before) - set(after))]
    if args.json:
        for change, alerts in (("added", added), ("removed", removed)):
            for alert in alerts:
                sys.stdout.write(orjson.dumps({"change": change, **alert}).decode() + "\n")
        return 1 if added or removed else 0
    print(f"rules diff: {args.file} on {args.events} ({events} events), against {source}")
    counts: dict[str, list[int]] = {}
    for index, alerts in enumerate((added, removed)):
        for alert in alerts:
            counts.setdefault(alert["rule"], [0, 0])[index] += 1
    if not counts:
        print("no alert added or removed")
        return 0
    width = max(len("rule"), *(len(rule) for rule in counts))
    print(f"{'rule'.ljust(width)}  {'added':>7}  {'removed':>7}")
    for rule, (plus, minus) in sorted(counts.items()):
        print(f"{rule.ljust(width)}  {plus:>7}  {minus:>7}")
    return 1


def _replayed(path: str, config: Any) -> tuple[dict[str, dict[str, Any]], int]:
    """Every alert (enforced or shadow) of a replay of `path` by id, and the events read."""
    from claimstream.detection.replay import ReplaySinks, replay

    found: dict[str, dict[str, Any]] = {}

    def keep(alert: dict[str, Any]) -> None:
        found[alert["alert_id"]] = alert

    with open(path, "rb") as lines:
        summary = replay(
            lines, ReplaySinks(alerts=keep, shadow_alerts=keep), config=config, clock="event"
        )
    return found, summary.events_read


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
    _table(header, rows)
    if config.custom_rules:
        print(f"custom rules ({len(config.custom_rules)}; docs/custom-rules.md):")
        custom = []
        for name, rule in sorted(config.custom_rules.items()):
            days = rule.within_days if rule.within_days is not None else rule.window_days
            window = f"{days:g}d" if days is not None else f"{rule.window / 3600:g}h"
            threshold = " ".join(
                f"{k}={_show(v)}"
                for k in ("min_count", "distinct_by", "value", "min_sum", "amount", "join")
                if (v := getattr(rule, k)) is not None
            )
            filters = (
                f"filter_a: {rule.filter_a} filter_b: {rule.filter_b}"
                + (f" of {_show(rule.event_types_b)}" if rule.event_types_b else "")
                if rule.filter_a is not None
                else f"filter: {rule.filter}"
            )
            custom.append(
                (
                    name,
                    "on" if rule.enabled else "off",
                    rule.mode,
                    rule.severity,
                    rule.template,
                    f"{rule.key} {_show(rule.event_types)} {window} {threshold} {filters}",
                )
            )
        _table(("rule", "enabled", "mode", "severity", "template", "definition"), custom)
    if config.custom_lists:
        sizes = ", ".join(f"{k} ({len(v)})" for k, v in sorted(config.custom_lists.items()))
        print(f"custom lists: {sizes}")


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
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
