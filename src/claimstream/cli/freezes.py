"""`claimstream freezes`: is a patient / doctor / institution (for a drug) frozen right now?

Asks Redis directly when `CLAIMSTREAM_REDIS_URL` (or `--redis-url`) is set, the same keys a
settlement system reads; otherwise asks a running worker's `GET /freezes` API (`--worker`,
default `http://127.0.0.1:$CLAIMSTREAM_WEB_PORT`), which serves its in-process registry.
Exit status: 0 frozen (or listing), 1 not frozen, 2 usage or connection error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.parse
import urllib.request
from typing import Any

HELP = "show freezes in force (one subject, or all) from Redis or a running worker"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", choices=("patient", "doctor", "institution"))
    parser.add_argument("--id", dest="subject_id", help="the patient / doctor / institution id")
    parser.add_argument("--drug-code", help="also consider freezes of this drug for the subject")
    parser.add_argument("--redis-url", default=os.environ.get("CLAIMSTREAM_REDIS_URL") or None)
    parser.add_argument(
        "--redis-prefix", default=os.environ.get("CLAIMSTREAM_REDIS_PREFIX", "claimstream")
    )
    parser.add_argument(
        "--worker",
        default=f"http://127.0.0.1:{os.environ.get('CLAIMSTREAM_WEB_PORT', '6066')}",
        help="worker web address, used when no Redis URL is set",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    if (args.kind is None) != (args.subject_id is None):
        print("claimstream freezes: give both --kind and --id, or neither", file=sys.stderr)
        return 2
    try:
        answer = _from_redis(args) if args.redis_url else _from_worker(args)
    except (OSError, ValueError) as exc:
        where = args.redis_url or args.worker
        print(f"claimstream freezes: cannot ask {where}: {exc}", file=sys.stderr)
        return 2
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

    from claimstream.registry.redis import RedisRegistry

    async def ask() -> dict[str, Any]:
        registry = RedisRegistry(args.redis_url, args.redis_prefix)
        await registry.start()
        try:
            now = time.time()
            if args.kind is None:
                return {"freezes": [f.to_dict() for f in await registry.active(now)]}
            found = await registry.lookup(args.kind, args.subject_id, args.drug_code, now=now)
            return {"frozen": bool(found), "freezes": [f.to_dict() for f in found]}
        finally:
            await registry.close()

    try:
        return asyncio.run(ask())
    except RedisError as exc:
        raise OSError(str(exc)) from exc


def _from_worker(args: argparse.Namespace) -> dict[str, Any]:
    base = args.worker.rstrip("/")
    if args.kind is None:
        url = f"{base}/freezes"
    else:
        url = f"{base}/freezes/{args.kind}/{urllib.parse.quote(args.subject_id, safe='')}"
        if args.drug_code:
            url += "?" + urllib.parse.urlencode({"drug_code": args.drug_code})
    if not url.startswith(("http://", "https://")):
        raise ValueError("--worker must be an http(s) URL")
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - scheme checked
        answer: dict[str, Any] = json.loads(response.read())
    return answer


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
