"""`claimstream alerts review ALERT_ID --verdict confirmed|false_positive --by NAME`.

Publishes the reviewer's verdict on `claimstream.actions.v1` (keyed by the alert id); the
worker joins it with the alert: a confirmed violation adds doctor points and weighs on the
institution's grade, a false positive takes the alert out of the ladder, and both count in the
per-rule precision metric. The verdict records who (`--by`), why (`--note`) and when (`--at`);
its id is derived from those, so publishing the same verdict twice changes nothing.

Exit status: 0 published, 1 broker unreachable or refused, 2 input refused (nothing published).
"""

from __future__ import annotations

import argparse
from datetime import tzinfo
from typing import TYPE_CHECKING

from claimstream.cli._actions import add_common_arguments, build_and_publish

if TYPE_CHECKING:
    from claimstream.sanctions.codec import PersonAction

HELP = "review an alert: publish a verdict (confirmed or false_positive) on the actions topic"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="alerts_action", metavar="ACTION", required=True)
    review = sub.add_parser(
        "review",
        help="record a reviewer's verdict on one alert",
        description="Publish a reviewer's verdict on an alert to claimstream.actions.v1. "
        "The worker applies it within seconds: confirmed violations add doctor points and "
        "count in the institution's grade; false positives leave the sanctions ladder. Bad "
        "input is refused before anything is published.",
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
    add_common_arguments(review)


def run(args: argparse.Namespace) -> int:
    from claimstream.kafka.actions import verdict_from_input

    def build(tz: tzinfo) -> PersonAction:
        return verdict_from_input(
            args.alert_id, args.verdict, args.by, note=args.note, at=args.at, tz=tz
        )

    return build_and_publish("alerts review", args, build)
