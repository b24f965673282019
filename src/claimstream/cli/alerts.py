"""`claimstream alerts list|show|review`: the alerts on the alerts topic, and a reviewer's verdict.

`list` and `show` read `claimstream.alerts.v1` from the beginning (every partition, no consumer
group: nothing is committed, nobody else's reading is disturbed) with `kafka.reader.TopicReader`;
an alert redelivered by the stream (same `alert_id`) is shown once. `show` adds the verdicts
published for the alert on the actions topic.

`review` publishes the reviewer's verdict on `claimstream.actions.v1` (keyed by the alert id);
the worker joins it with the alert: a confirmed violation adds doctor points and weighs on the
institution's grade, a false positive takes the alert out of the ladder, and both count in the
per-rule precision metric. The verdict records who (`--by`), why (`--note`) and when (`--at`);
its id is derived from those, so publishing the same verdict twice changes nothing. It first
checks that the alert is on the alerts topic (`--no-check` skips that): a verdict on an unknown
id would be published and never joined.

Alerts name patients, doctors and institutions: this is an operator's tool, run with the
broker's credentials, and prints them on stdout only; nothing here logs an id.

Exit status: 0 done, 2 bad input, an unknown alert id or a missing topic (nothing published),
3 the broker did not answer.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from claimstream.cli._actions import add_common_arguments, build_and_publish

if TYPE_CHECKING:
    from claimstream.kafka.reader import TopicRecord
    from claimstream.sanctions.codec import PersonAction

HELP = "list and show the alerts on the alerts topic, or publish a reviewer's verdict on one"
EXAMPLE = "claimstream alerts list --rule readmission_24h --since 24h"
ALERTS_TOPIC = "claimstream.alerts.v1"
_DURATION_UNITS = {"m": 60, "h": 3600, "d": 86_400}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="alerts_action", metavar="ACTION", required=True)
    listing = sub.add_parser(
        "list",
        help="the newest alerts, filtered by rule, subject and time",
        description="List alerts from the alerts topic, newest first (by detected_at). Reads "
        "the whole topic; a redelivered alert is shown once. Filters combine.",
        epilog="example: claimstream alerts list --subject institution:H0012 --since 7d\n"
        "         claimstream alerts list --rule readmission_24h --json | jq .alert_id",
    )
    listing.add_argument("--rule", metavar="RULE", help="only this rule's alerts")
    listing.add_argument(
        "--subject",
        metavar="KIND:ID",
        help="only alerts about patient:ID, doctor:ID or institution:ID (as their subject, or "
        "naming it as patient, doctor or institution)",
    )
    listing.add_argument(
        "--since",
        metavar="TIME",
        help="only alerts detected at or after TIME: RFC 3339 with an offset "
        "(2026-03-01T08:00:00+08:00) or a span back from now (30m, 24h, 7d)",
    )
    listing.add_argument(
        "--limit", type=int, default=50, metavar="N", help="at most N alerts, newest first"
    )
    listing.add_argument("--json", action="store_true", help="one alert record (JSON) per line")
    _add_reading_arguments(listing)
    show = sub.add_parser(
        "show",
        help="one alert in full, with the verdicts published on it",
        description="Show one alert from the alerts topic in full (subject, events, message, "
        "details, where it is on the topic) and the reviewers' verdicts on it from the actions "
        "topic. Exit 2 when no alert has that id.",
        epilog="example: claimstream alerts show alt-3f2a9c01d4e5b6a7c8d9e0f1",
    )
    show.add_argument("alert_id", metavar="ALERT_ID", help="the alert's id (alert_id)")
    show.add_argument("--json", action="store_true", help="print the alert and verdicts as JSON")
    _add_reading_arguments(show)
    show.add_argument(
        "--actions-topic",
        default="claimstream.actions.v1",
        metavar="NAME",
        help="where the verdicts are",
    )
    review = sub.add_parser(
        "review",
        help="record a reviewer's verdict on one alert",
        description="Publish a reviewer's verdict on an alert to claimstream.actions.v1. "
        "The worker applies it within seconds: confirmed violations add doctor points and "
        "count in the institution's grade; false positives leave the sanctions ladder. Bad "
        "input, or an alert id that is not on the alerts topic, is refused before anything is "
        "published.",
        epilog="example: claimstream alerts review alt-3f2a... --verdict confirmed --by li.na "
        "--note 'records checked on site'",
    )
    review.add_argument("alert_id", metavar="ALERT_ID", help="the alert's id (alert_id)")
    review.add_argument(
        "--verdict",
        required=True,
        metavar="confirmed|false_positive",
        help="the finding: confirmed (a real violation) or false_positive",
    )
    review.add_argument("--by", required=True, metavar="NAME", help="who reviewed it")
    review.add_argument("--note", default="", help="why: the reviewer's note (kept with it)")
    review.add_argument(
        "--no-check",
        action="store_true",
        help="publish without first checking that the alert is on the alerts topic",
    )
    review.add_argument(
        "--alerts-topic", default=ALERTS_TOPIC, metavar="NAME", help="where the alert is looked up"
    )
    add_common_arguments(review)


def _add_reading_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        help="broker (default: $CLAIMSTREAM_BROKER_URL, else kafka://127.0.0.1:9092)",
    )
    parser.add_argument("--topic", default=ALERTS_TOPIC, metavar="NAME", help="the alerts topic")
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="longest wait for the broker to answer",
    )


def run(args: argparse.Namespace) -> int:
    if args.alerts_action == "list":
        return run_list(args)
    if args.alerts_action == "show":
        return run_show(args)
    return run_review(args)


# --- review ----------------------------------------------------------------------------------


def run_review(args: argparse.Namespace) -> int:
    from claimstream.kafka.actions import verdict_from_input

    def build(tz: tzinfo) -> PersonAction:
        return verdict_from_input(
            args.alert_id, args.verdict, args.by, note=args.note, at=args.at, tz=tz
        )

    def check(bootstrap: str, action: PersonAction) -> None:
        from claimstream.cli.exits import CommandError

        wanted = getattr(action, "alert_id", args.alert_id)
        alerts = read_alerts(bootstrap, args.alerts_topic, timeout=min(args.timeout, 10.0))
        if not any(a.alert_id == wanted for a in alerts):
            raise CommandError(
                f"refused, nothing published: no alert {wanted} on {args.alerts_topic} "
                f"({len(alerts):,} alerts read); check the id (`claimstream alerts list`), or "
                "pass --no-check to publish anyway"
            )

    return build_and_publish("alerts review", args, build, check=None if args.no_check else check)


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FoundAlert:
    """An alert record as published, and where it is on the topic."""

    alert_id: str
    record: dict[str, Any]
    where: str
    detected: float | None

    def concerns(self, kind: str, id_: str) -> bool:
        subject = self.record.get("subject") or {}
        if subject.get("kind") == kind and subject.get("id") == id_:
            return True
        return bool(self.record.get(f"{kind}_id") == id_)


def read_alerts(bootstrap: str, topic: str, *, timeout: float = 10.0) -> list[FoundAlert]:
    """Every alert on `topic` once (the last copy of a redelivered one), in topic order."""
    import orjson

    found: dict[str, FoundAlert] = {}
    for record in read_records(bootstrap, topic, timeout=timeout):
        try:
            value = orjson.loads(record.value) if record.value is not None else None
        except orjson.JSONDecodeError:
            continue
        if not isinstance(value, dict) or not isinstance(value.get("alert_id"), str):
            continue
        found[value["alert_id"]] = FoundAlert(
            value["alert_id"], value, record.where(), _timestamp(value.get("detected_at"))
        )
    return list(found.values())


def read_records(bootstrap: str, topic: str, *, timeout: float = 10.0) -> list[TopicRecord]:
    """Every record of `topic`, with progress on stderr; exit 3 / 2 when the broker does not
    answer / has no such topic."""
    import asyncio

    from claimstream.cli.exits import CommandError, broker_unreachable, quiet_kafka_logs
    from claimstream.kafka.reader import ProgressLine, TopicMissing, TopicReader
    from claimstream.kafka.url import BrokerUnreachable

    quiet_kafka_logs()
    progress = ProgressLine(f"reading {topic}")

    async def read() -> list[TopicRecord]:
        async with TopicReader(
            bootstrap, topic, progress=progress, connect_timeout=timeout
        ) as reader:
            return await reader.read_new()

    try:
        return asyncio.run(read())
    except BrokerUnreachable as exc:
        raise broker_unreachable(exc) from None
    except TopicMissing as exc:
        raise CommandError(str(exc)) from None
    finally:
        progress.close()


def _timestamp(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None


# --- list ------------------------------------------------------------------------------------


def run_list(args: argparse.Namespace) -> int:
    import time

    from claimstream.cli.exits import CommandError, require_broker

    if args.limit < 1:
        raise CommandError("--limit must be at least 1")
    subject = _subject(args.subject) if args.subject else None
    since = parse_since(args.since, now=time.time()) if args.since else None
    if args.rule:
        from claimstream.rules import RULES

        if args.rule not in RULES:
            raise CommandError(f"unknown rule {args.rule!r}; rules: {', '.join(sorted(RULES))}")
    bootstrap = require_broker(args.bootstrap, timeout=min(args.timeout, 5.0))
    alerts = read_alerts(bootstrap, args.topic, timeout=args.timeout)
    chosen = [
        a
        for a in alerts
        if (args.rule is None or a.record.get("rule") == args.rule)
        and (subject is None or a.concerns(*subject))
        and (since is None or (a.detected is not None and a.detected >= since))
    ]
    chosen.sort(key=lambda a: (a.detected or 0.0, a.alert_id), reverse=True)
    shown = chosen[: args.limit]
    if args.json:
        import orjson

        for alert in shown:
            sys.stdout.write(orjson.dumps(alert.record).decode() + "\n")
    else:
        _print_table(shown)
    more = f" (the newest {len(shown)}; --limit shows more)" if len(chosen) > len(shown) else ""
    print(
        f"{len(chosen):,} of {len(alerts):,} alerts on {args.topic} match{more}",
        file=sys.stderr,
    )
    return 0


def _print_table(alerts: list[FoundAlert]) -> None:
    rows = [("DETECTED", "SEVERITY", "RULE", "SUBJECT", "ALERT", "MESSAGE")]
    for a in alerts:
        subject = a.record.get("subject") or {}
        rows.append(
            (
                str(a.record.get("detected_at", "-")),
                str(a.record.get("severity", "-")),
                str(a.record.get("rule", "-")),
                f"{subject.get('kind', '?')}:{subject.get('id', '?')}",
                a.alert_id,
                str(a.record.get("message", "")),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        print("  ".join([*(c.ljust(w) for c, w in zip(r[:5], widths, strict=True)), r[5]]))


def _subject(text: str) -> tuple[str, str]:
    from claimstream.cli.exits import CommandError
    from claimstream.model.events import KEY_KINDS

    kind, sep, id_ = text.partition(":")
    if not sep or kind not in KEY_KINDS or not id_.strip():
        raise CommandError(
            f"--subject must be KIND:ID with KIND one of {', '.join(KEY_KINDS)}, got {text!r}"
        )
    return kind, id_.strip()


def parse_since(text: str, *, now: float) -> float:
    """POSIX seconds of `--since`: an RFC 3339 time with an offset, or `N[m|h|d]` before now."""
    from claimstream.cli.exits import CommandError

    raw = text.strip()
    unit = _DURATION_UNITS.get(raw[-1:])
    if unit is not None and raw[:-1].isdigit():
        return now - int(raw[:-1]) * unit
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise CommandError(
            f"--since must be an RFC 3339 time with an offset (2026-03-01T08:00:00+08:00) or a "
            f"span such as 30m, 24h, 7d; got {text!r}"
        )
    return moment.timestamp()


# --- show ------------------------------------------------------------------------------------


def run_show(args: argparse.Namespace) -> int:
    import orjson

    from claimstream.cli.exits import CommandError, require_broker

    bootstrap = require_broker(args.bootstrap, timeout=min(args.timeout, 5.0))
    alerts = read_alerts(bootstrap, args.topic, timeout=args.timeout)
    found = next((a for a in alerts if a.alert_id == args.alert_id), None)
    if found is None:
        raise CommandError(
            f"no alert {args.alert_id} on {args.topic} ({len(alerts):,} alerts read); "
            "`claimstream alerts list` shows the ids"
        )
    reviews = _reviews(bootstrap, args.actions_topic, args.alert_id, args.timeout)
    if args.json:
        out = {"alert": found.record, "where": found.where, "reviews": reviews}
        print(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return 0
    r = found.record
    subject = r.get("subject") or {}
    lines = [
        ("alert", found.alert_id),
        (
            "rule",
            f"{r.get('rule')} (version {r.get('rule_version')}), severity {r.get('severity')}",
        ),
        ("subject", f"{subject.get('kind')}:{subject.get('id')}"),
        *(
            (name, str(r.get(f"{name}_id") or "-"))
            for name in ("patient", "doctor", "institution", "department")
        ),
        ("occurred", str(r.get("occurred_at"))),
        ("detected", str(r.get("detected_at"))),
        ("events", ", ".join(str(e) for e in r.get("event_ids") or ()) or "-"),
        ("message", str(r.get("message", ""))),
        ("details", orjson.dumps(r.get("details") or {}).decode()),
        ("on", found.where),
    ]
    if reviews is None:
        lines.append(("reviews", f"unknown ({args.actions_topic} does not exist)"))
    elif not reviews:
        lines.append(("reviews", "none"))
    for review in reviews or ():
        note = f" ({review.get('note')})" if review.get("note") else ""
        lines.append(
            ("review", f"{review.get('verdict')} by {review.get('by')} at {review.get('at')}{note}")
        )
    for label, value in lines:
        print(f"{label:<11} {value}")
    return 0


def _reviews(
    bootstrap: str, topic: str, alert_id: str, timeout: float
) -> list[dict[str, Any]] | None:
    """The verdicts on `alert_id` in publishing order, or None when the topic does not exist."""
    import orjson

    from claimstream.cli.exits import CommandError

    try:
        records = read_records(bootstrap, topic, timeout=timeout)
    except CommandError as exc:
        if exc.code == 2:  # no actions topic: nobody has reviewed anything
            return None
        raise
    found: dict[str, dict[str, Any]] = {}
    for record in records:
        try:
            value = orjson.loads(record.value) if record.value is not None else None
        except orjson.JSONDecodeError:
            continue
        if (
            isinstance(value, dict)
            and value.get("type") == "review"
            and value.get("alert_id") == alert_id
        ):
            found[str(value.get("action_id"))] = value
    return list(found.values())
