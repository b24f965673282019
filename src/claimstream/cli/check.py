"""`claimstream check FILE`: check each event of a JSON-lines file against a running worker.

Each line is sent as it is to `POST /v1/check` (`--worker`, default
`http://127.0.0.1:$CLAIMSTREAM_WEB_PORT`) with the token `CLAIMSTREAM_CLIENT_TOKEN` (a role of
settlement or above), through `claimstream.client`: timeouts, and tries again while the worker
answers 503 (recovering, rebalancing) or cannot be reached. One line is one check, against
the patient's state as the stream holds it: checks change nothing, so a line is not judged
with the lines before it (send one patient's events together through the API to judge them as
a sequence). Each decision is printed as `FILE:LINE EVENT_ID DECISION` and the violations
(rule, its name, amount) and freezes that made it; a line the worker refuses, as
`FILE:LINE: refused: REASON: detail` with the dead-letter reason. `--json` prints each answer
(or refusal) as one JSON object per line instead. A summary goes to stderr.

Exit status: 0 every line passed, 1 some line did not pass (warn, hold, reject) or was refused,
2 the file cannot be read or the worker refused the token, 3 the worker did not answer.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any

from claimstream.cli._worker_api import add_worker_arguments

HELP = "check each event of a JSON-lines file against a running worker (POST /v1/check)"
EXAMPLE = "claimstream check claims.jsonl --worker http://127.0.0.1:6066   # exit 1: not all pass"
DECISIONS = ("pass", "warn", "hold", "reject")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="JSON-lines file of events ('-': stdin)")
    add_worker_arguments(
        parser,
        worker_note="any worker: it forwards each check to the patient's owner",
        answer="each answer",
        retries=3,
    )
    parser.add_argument("--json", action="store_true", help="print each answer as one JSON line")


def run(args: argparse.Namespace) -> int:
    import orjson

    from claimstream.cli._lines import JsonLines
    from claimstream.cli._worker_api import failed, no_answer, token_refused, worker_client
    from claimstream.cli.exits import CommandError
    from claimstream.client import ClaimstreamError, RequestRefused, WorkerUnavailable

    client = worker_client(args)
    counts: Counter[str] = Counter()
    with JsonLines(args.file) as lines:
        for number, line in lines:
            where = f"{lines.name}:{number}"
            try:
                result = client.check(line)
            except RequestRefused as exc:
                if exc.status in (401, 403):
                    wanted = "a token with the settlement role"
                    raise token_refused(client.url, exc.status, wanted) from None
                if exc.reason is None:  # not a refusal of the line: a worker without checks?
                    raise CommandError(f"the worker at {client.url} answered {exc}") from None
                counts["refused"] += 1
                detail = exc.body.get("error", "")
                if args.json:
                    print(orjson.dumps({"line": number, "refused": exc.body}).decode())
                else:
                    print(f"{where}: refused: {exc.reason}: {detail}")
                continue
            except WorkerUnavailable as exc:
                what = f" the check of line {number}"
                raise no_answer(client.url, exc, what=what) from None
            except ClaimstreamError as exc:  # a 500: the worker's own error, not the line's
                raise failed(client.url, exc) from None
            counts[result.decision] += 1
            if args.json:
                print(orjson.dumps({"line": number, **result.raw}).decode())
            else:
                print(_line(where, result.raw))
    print(summary(lines.name, counts), file=sys.stderr)
    return 0 if set(counts) <= {"pass"} else 1


def _line(where: str, answer: dict[str, Any]) -> str:
    events = ",".join(e["event_id"] for e in answer.get("events", []))
    found = [
        f"{v['rule']} {v['rule_name']}" + (f" ¥{v['amount']:,.2f}" if v.get("amount") else "")
        for v in answer.get("violations", [])
    ]
    found += [f"frozen: {f.get('key')}" for f in answer.get("freezes", [])]
    text = f"{where} {events} {answer['decision']}"
    return f"{text}  {'; '.join(found)}" if found else text


def summary(name: str, counts: Counter[str]) -> str:
    """`FILE: 120 lines: pass 100, warn 12, hold 6, reject 1, refused 1`."""
    total = sum(counts.values())
    parts = [f"{kind} {counts[kind]:,}" for kind in (*DECISIONS, "refused") if counts[kind]]
    return f"{name}: {total:,} lines checked" + (f": {', '.join(parts)}" if parts else "")
