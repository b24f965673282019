"""What `claimstream alerts review` and `claimstream unfreeze` share: the broker, time-zone and
signing-key options, and publishing one action with a plain report of where it went.

The action is signed with the person's own Ed25519 key (`--signing-key` or
`$CLAIMSTREAM_ACTION_SIGNING_KEY_FILE`, PKCS#8 PEM) whose public half the workers' keyring lists
under the same name as `--by`; workers refuse unsigned actions unless they run in the
development mode that accepts them (docs/security.md).

Exit status of both commands (the table of `claimstream.cli.exits`): 0 published, 2 the input
was refused or names an unknown alert or a missing topic (nothing published), 3 the broker
could not be reached or did not acknowledge in time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from datetime import tzinfo
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from claimstream.kafka.actions import AnyAction
    from claimstream.sanctions.signatures import ActionSigner

EXIT_OK, EXIT_REFUSED, EXIT_BROKER = 0, 2, 3
#: the action a command builds: a person's action of the sanctions, or a case action
A = TypeVar("A", bound="AnyAction")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--at",
        metavar="RFC3339",
        help="when the action takes effect (event time), with a UTC offset, e.g. "
        "2026-03-01T09:30:00+08:00 (default: now, in the configured time zone "
        "$CLAIMSTREAM_TIMEZONE, default Asia/Shanghai)",
    )
    parser.add_argument(
        "--bootstrap",
        help="broker (default: $CLAIMSTREAM_BROKER_URL or kafka://127.0.0.1:9092)",
    )
    parser.add_argument("--topic", help="actions topic (default claimstream.actions.v1)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="longest wait for the broker's acknowledgement (default 15)",
    )
    parser.add_argument("--json", action="store_true", help="print the published record as JSON")
    parser.add_argument(
        "--signing-key",
        metavar="PEM",
        help="your Ed25519 private key, to sign the action with (default: "
        "$CLAIMSTREAM_ACTION_SIGNING_KEY_FILE; without one the action goes unsigned, and "
        "workers refuse it unless they accept unsigned actions)",
    )


def configured_zone() -> tzinfo:
    """The time zone of the detection configuration (`CLAIMSTREAM_TIMEZONE` and friends)."""
    import os

    from claimstream.stream.settings import detection_from_env

    return detection_from_env(os.environ).tz


def build_and_publish(
    command: str,
    args: argparse.Namespace,
    build: Callable[[tzinfo], A],
    check: Callable[[str, A], None] | None = None,
) -> int:
    """Validate (`build` raises `ValueError`), reach the broker, `check` the action against
    what the broker holds (raising `CommandError`), sign, publish, report. Returns the exit
    status."""
    from claimstream.cli.exits import CommandError, Unreachable, broker_address, require_broker
    from claimstream.kafka.actions import (
        ACTIONS_TOPIC,
        ActionPublishError,
        ActionTopicMissing,
        action_record,
        publish_action,
    )
    from claimstream.model.config import ConfigError

    if args.timeout <= 0:
        return refuse(command, "--timeout must be greater than 0")
    try:
        tz = configured_zone()
        action = build(tz)
        signer = signing_key(args)
        broker_address(args.bootstrap)
    except (ValueError, ConfigError, CommandError) as exc:
        return refuse(command, str(exc))
    bootstrap = require_broker(args.bootstrap, timeout=min(args.timeout, 5.0))
    if check is not None:
        check(bootstrap, action)
    topic = args.topic or ACTIONS_TOPIC
    try:
        receipt = asyncio.run(
            publish_action(bootstrap, action, topic=topic, ack_timeout=args.timeout, signer=signer)
        )
    except ActionTopicMissing as exc:
        return refuse(command, str(exc))
    except ActionPublishError as exc:
        raise Unreachable(f"not published: {exc}") from None
    if signer is None:
        print(
            f"claimstream {command}: published UNSIGNED (no --signing-key): workers refuse it "
            "unless they accept unsigned actions",
            file=sys.stderr,
        )
    if args.json:
        import orjson

        record = {
            "topic": receipt.topic,
            "partition": receipt.partition,
            "offset": receipt.offset,
            "key": receipt.key,
            "record": action_record(action, signer),
        }
        print(orjson.dumps(record, option=orjson.OPT_INDENT_2).decode())
    else:
        print(f"published {receipt.action_id}")
        print(
            f"  on {receipt.topic} partition {receipt.partition} offset {receipt.offset} "
            f"(key {receipt.key}) at {bootstrap}"
        )
    return EXIT_OK


def signing_key(args: argparse.Namespace) -> ActionSigner | None:
    """The key of `--signing-key` or `$CLAIMSTREAM_ACTION_SIGNING_KEY_FILE`, or None."""
    import os

    from claimstream.kafka.actions import SIGNING_KEY_FILE, read_signer

    if getattr(args, "signing_key", None):
        return read_signer(args.signing_key, "--signing-key")
    path = os.environ.get(SIGNING_KEY_FILE, "").strip()
    return read_signer(path) if path else None


def refuse(command: str, why: str) -> int:
    print(f"claimstream {command}: refused, nothing published: {why}", file=sys.stderr)
    return EXIT_REFUSED
