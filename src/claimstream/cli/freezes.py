"""`claimstream freezes`: is a patient / doctor / institution (for a drug) frozen right now?

Asks Redis directly when `CLAIMSTREAM_REDIS_URL` (or `--redis-url`) is set, the same keys a
settlement system reads; otherwise asks a running worker's `GET /freezes` API (`--worker`,
default `http://127.0.0.1:$CLAIMSTREAM_WEB_PORT`, `--timeout`, `--retries`; the token in
`CLAIMSTREAM_CLIENT_TOKEN`), which serves its in-process registry.
Exit status: 0 frozen (or listing), 1 not frozen, 2 usage error, 3 Redis or the worker's
HTTP API did not answer.

`claimstream freezes rebuild` rebuilds the Redis registry from the commands topic
(`claimstream.freezes.rebuild`): it reads every partition of the topic from the beginning,
replays it into the commands ledger, reports how the registry differs and swaps the differing
keys in one atomic step; `--dry-run` only reports. Exit status: 0 rebuilt (or, with
`--dry-run`, no drift), 1 drift found by `--dry-run`, 2 usage error or a missing topic, 3 the
broker or Redis did not answer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from claimstream.cli._worker_api import add_worker_arguments

HELP = "show freezes in force (one subject, or all) from Redis or a running worker"
EXAMPLE = (
    "claimstream freezes --kind institution --id H0012   # exit 0 frozen, 1 not\n"
    "         claimstream freezes rebuild --dry-run --redis-url redis://127.0.0.1:6379/0"
)


REBUILD_HELP = "rebuild the Redis freeze registry from the commands topic"
COMMANDS_TOPIC = "claimstream.commands.v1"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="freezes_action", metavar="ACTION")
    rebuild = actions.add_parser(
        "rebuild",
        help=REBUILD_HELP,
        description="Read the commands topic from the beginning (all partitions), replay it "
        "with the registry's rules and make the Redis registry hold exactly what it says is in "
        "force: differing freeze keys are set or deleted in one atomic step (a reader never "
        "sees an empty or half-rebuilt registry), and the 'already applied' markers of the "
        "last 30 days' commands are set. Workers may keep running. Reports what changed.",
        epilog="example: claimstream freezes rebuild --dry-run   # exit 1 when the registry "
        "differs",
    )
    rebuild.add_argument(
        "--bootstrap",
        dest="rebuild_bootstrap",
        metavar="HOST:PORT",
        help="Kafka bootstrap (kafka://host:port or host:port); default $CLAIMSTREAM_BROKER_URL",
    )
    rebuild.add_argument(
        "--redis-url",
        dest="rebuild_redis_url",
        metavar="URL",
        default=os.environ.get("CLAIMSTREAM_REDIS_URL") or None,
        help="the registry's Redis (default $CLAIMSTREAM_REDIS_URL)",
    )
    rebuild.add_argument(
        "--prefix",
        dest="rebuild_prefix",
        metavar="PREFIX",
        default=os.environ.get("CLAIMSTREAM_REDIS_PREFIX", "claimstream"),
        help="registry key prefix (default $CLAIMSTREAM_REDIS_PREFIX or claimstream)",
    )
    rebuild.add_argument(
        "--topic", dest="rebuild_topic", default=COMMANDS_TOPIC, help=argparse.SUPPRESS
    )
    rebuild.add_argument(
        "--dry-run", action="store_true", help="only report how the registry differs"
    )
    rebuild.add_argument(
        "--json", dest="rebuild_json", action="store_true", help="print the report as JSON"
    )
    parser.add_argument("--kind", choices=("patient", "doctor", "institution"))
    parser.add_argument("--id", dest="subject_id", help="the patient / doctor / institution id")
    parser.add_argument("--drug-code", help="also consider freezes of this drug for the subject")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("CLAIMSTREAM_REDIS_URL") or None,
        metavar="URL",
        help="ask this Redis registry (default: $CLAIMSTREAM_REDIS_URL; unset: ask the worker)",
    )
    parser.add_argument(
        "--redis-prefix",
        default=os.environ.get("CLAIMSTREAM_REDIS_PREFIX", "claimstream"),
        help="registry key prefix (default: $CLAIMSTREAM_REDIS_PREFIX, else claimstream)",
    )
    add_worker_arguments(
        parser,
        worker_note="asked when no Redis URL is set, with the token CLAIMSTREAM_CLIENT_TOKEN "
        "(the settlement role or above)",
        answer="the worker's answer",
        retries=2,
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "freezes_action", None) == "rebuild":
        return run_rebuild(args)
    if (args.kind is None) != (args.subject_id is None):
        print("claimstream freezes: give both --kind and --id, or neither", file=sys.stderr)
        return 2
    answer = _from_redis(args) if args.redis_url else _from_worker(args)
    if args.json:
        print(json.dumps(answer, ensure_ascii=False, indent=2))
    else:
        _print_human(args, answer)
    if args.kind is None:
        return 0
    return 0 if answer.get("frozen") else 1


def _from_redis(args: argparse.Namespace) -> dict[str, Any]:
    import asyncio

    from redis.exceptions import RedisError

    from claimstream.cli.exits import redis_options
    from claimstream.freezes.redis import RedisRegistry

    options = redis_options(args.redis_url)  # CLAIMSTREAM_REDIS_PASSWORD_FILE, _TLS_*

    async def ask() -> dict[str, Any]:
        registry = RedisRegistry(args.redis_url, args.redis_prefix, options)
        await registry.start()
        try:
            now = time.time()
            if args.kind is None:
                return {"freezes": [f.to_dict() for f in await registry.active(now)]}
            found = await registry.lookup(args.kind, args.subject_id, args.drug_code, now=now)
            return {"frozen": bool(found), "freezes": [f.to_dict() for f in found]}
        finally:
            await registry.close()

    from claimstream.cli.exits import CommandError, redis_failure

    try:
        return asyncio.run(ask())
    except (RedisError, OSError) as exc:  # before ValueError: a certificate error is both
        raise redis_failure(args.redis_url, exc) from None
    except ValueError as exc:  # a URL redis-py cannot parse
        raise CommandError(f"--redis-url: {exc}") from None


def _from_worker(args: argparse.Namespace) -> dict[str, Any]:
    from claimstream.cli._worker_api import ask, worker_client
    from claimstream.client.calls import freezes_call

    if args.kind is None:
        path, holding, what = "/freezes", "freezes", "a list of freezes"
    else:
        path = freezes_call(args.kind, args.subject_id, args.drug_code).path
        holding, what = "frozen", "a freeze status"
    wanted = "a token with the settlement role"
    return ask(worker_client(args), path, wanted=wanted, holding=holding, what=what)


def _print_human(args: argparse.Namespace, answer: dict[str, Any]) -> None:
    freezes = answer.get("freezes", [])
    if args.kind is not None:
        subject = f"{args.kind} {args.subject_id}" + (
            f" for drug {args.drug_code}" if args.drug_code else ""
        )
        print(f"{subject}: {'FROZEN' if answer.get('frozen') else 'not frozen'}")
    elif not freezes:
        print("no freeze in force")
    for f in freezes:
        until = f.get("expires_at") or "lifted"
        why = f"{f.get('rule')}: {f.get('reason')}"
        print(f"  {f.get('action')} {f.get('key')}  until {until}  ({why})")


def run_rebuild(args: argparse.Namespace) -> int:
    import asyncio

    from redis.exceptions import RedisError

    from claimstream.cli.exits import (
        broker_unreachable,
        redis_failure,
        redis_options,
        require_broker,
    )
    from claimstream.freezes.rebuild import RebuildConflict
    from claimstream.kafka.reader import TopicReadError
    from claimstream.kafka.url import BrokerUnreachable, bootstrap_servers

    def fail(message: str) -> int:
        print(f"claimstream freezes rebuild: {message}", file=sys.stderr)
        return 2

    if not args.rebuild_redis_url:
        return fail(
            "no Redis: give --redis-url or set CLAIMSTREAM_REDIS_URL (an in-process registry "
            "lives in its worker and is rebuilt by restarting it)"
        )
    try:
        bootstrap = bootstrap_servers(args.rebuild_bootstrap)
    except ValueError as exc:
        return fail(str(exc))
    options = redis_options(args.rebuild_redis_url)  # CLAIMSTREAM_REDIS_PASSWORD_FILE, _TLS_*
    bootstrap = require_broker(args.rebuild_bootstrap)
    try:
        result = asyncio.run(_rebuild(args, bootstrap, options))
    except BrokerUnreachable as exc:
        raise broker_unreachable(exc, args.rebuild_bootstrap) from None
    except TopicReadError as exc:
        return fail(str(exc))
    except (RedisError, OSError) as exc:  # before ValueError: a certificate error is both
        raise redis_failure(args.rebuild_redis_url, exc) from None
    except ValueError as exc:  # a Redis URL redis-py cannot parse
        return fail(f"--redis-url: {exc}")
    except RebuildConflict as exc:
        return fail(str(exc))
    if args.rebuild_json:
        print(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print_rebuild(args, result)
    drift = not result.plan.agreement.ok or bool(result.plan.writes)
    return 1 if args.dry_run and drift else 0


async def _rebuild(args: argparse.Namespace, bootstrap: str, options: Any) -> Any:
    from claimstream.freezes.rebuild import rebuild
    from claimstream.freezes.redis import RedisRegistry
    from claimstream.kafka.reader import ProgressLine, TopicReader

    progress = ProgressLine(f"reading {args.rebuild_topic}")
    registry = RedisRegistry(args.rebuild_redis_url, args.rebuild_prefix, options)
    await registry.start()
    try:
        async with TopicReader(bootstrap, args.rebuild_topic, progress=progress) as reader:

            async def read() -> list[tuple[str, bytes | None]]:
                return [(r.where(), r.value) for r in await reader.read_new()]

            try:
                return await rebuild(registry, read, dry_run=args.dry_run)
            finally:
                progress.close()
    finally:
        await registry.close()


def _print_rebuild(args: argparse.Namespace, result: Any) -> None:
    plan = result.plan
    agreement = plan.agreement
    print(
        f"read {result.commands:,} command record(s) from {args.rebuild_topic}"
        + (f", {len(result.unreadable)} unreadable" if result.unreadable else "")
    )
    for where, why in result.unreadable[:20]:
        print(f"  unreadable {where}: {why}")
    if len(result.unreadable) > 20:
        print(f"  ... and {len(result.unreadable) - 20} more")
    print(
        f"commands say: {len(plan.expected)} freeze(s) in force"
        + (f", {len(plan.pending)} starting later" if plan.pending else "")
        + f"; the registry ({args.rebuild_prefix}:freeze:*) held {plan.stored} key(s)"
    )
    if agreement.ok and not plan.writes:
        print("no drift: the registry already holds what the commands topic says")
    else:
        print(
            f"drift: {len(agreement.missing)} missing, {len(agreement.unexpected)} unexpected, "
            f"{len(agreement.different)} set by another command"
            + (f", {len(plan.unreadable_keys)} unreadable key(s)" if plan.unreadable_keys else "")
        )
        for label, keys in (
            ("missing", agreement.missing),
            ("unexpected", agreement.unexpected),
            ("different", agreement.different),
            ("unreadable", plan.unreadable_keys),
        ):
            for key in keys:
                held = plan.expected.get(key)
                what = f"  ({held.action} {held.command_id})" if held is not None else ""
                print(f"  {label:<10} {key}{what}")
    from claimstream.freezes.base import Store

    sets = sum(1 for w in plan.writes.values() if isinstance(w, Store))
    deletes = len(plan.writes) - sets
    if args.dry_run:
        print(f"dry run: nothing changed (a rebuild would set {sets}, delete {deletes} key(s))")
    else:
        print(
            f"rebuilt: set {sets}, deleted {deletes} key(s) in one step; {result.markers:,} "
            f"command marker(s) set"
            + (f" (after {result.attempts} attempts)" if result.attempts > 1 else "")
        )
