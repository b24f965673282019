"""`claimstream unfreeze KIND:ID[:DRUG] --reason ... --by NAME [--ground appeal|reviewer]`.

Publishes a manual unfreeze on `claimstream.actions.v1` (keyed by the scope `kind:id`): the
worker owning the subject ends every freeze in force for the scope, and lifts a suspension
(which only a person can lift), issuing UNFREEZE commands to the commands topic and the
registry. `--ground appeal` records that the subject's appeal was upheld; `reviewer` (the
default) that a reviewer lifted it of their own motion. Who (`--by`), why (`--reason`) and when
(`--at`) are kept with the action; its id is derived from them, so a repeat changes nothing.

Exit status: 0 published, 2 input refused or the actions topic missing (nothing published),
3 the broker did not answer or acknowledge.
"""

from __future__ import annotations

import argparse
from datetime import tzinfo
from typing import TYPE_CHECKING

from claimstream.cli._actions import add_common_arguments, build_and_publish

if TYPE_CHECKING:
    from claimstream.sanctions.codec import PersonAction

HELP = "lift a freeze or suspension by hand (appeal upheld, or a reviewer's decision)"
EXAMPLE = (
    "claimstream unfreeze institution:H0012 --ground appeal --by wang.fang "
    "--reason 'appeal 2026-041 upheld: invoices supplied'"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Publish a manual unfreeze of KIND:ID (or KIND:ID:DRUG, one drug of it) to "
        "claimstream.actions.v1. The worker owning the subject ends the freezes in force and "
        "lifts a suspension, within seconds. Bad input is refused before anything is "
        "published."
    )
    parser.add_argument(
        "scope",
        metavar="KIND:ID[:DRUG]",
        help="what to unfreeze: institution:ID, doctor:ID or patient:ID, optionally :DRUG_CODE",
    )
    parser.add_argument("--reason", required=True, help="why the freeze is lifted (required)")
    parser.add_argument("--by", required=True, metavar="NAME", help="who lifts it")
    parser.add_argument(
        "--ground",
        default="reviewer",
        metavar="appeal|reviewer",
        help="appeal: the subject's appeal was upheld; reviewer: a reviewer's own decision "
        "(default reviewer)",
    )
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from claimstream.kafka.actions import unfreeze_from_input

    def build(tz: tzinfo) -> PersonAction:
        return unfreeze_from_input(
            args.scope, args.reason, args.by, ground=args.ground, at=args.at, tz=tz
        )

    return build_and_publish("unfreeze", args, build)
