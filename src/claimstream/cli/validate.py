"""`claimstream validate FILE`: check a JSON-lines file of events against event contract v1.

Every line goes through the worker's own decoder (`detection.decode.decode_event`), so a line
this accepts is a line the worker accepts, and a refused line is reported with the reason code
it would have in the dead-letter topic (`not_utf8`, `not_json`, `not_object`, `missing_field`,
`invalid_field`, `naive_timestamp`, `unknown_event_type`) and the decoder's sentence, as
`FILE:LINE: reason: detail` (the form editors and CI annotate). `--json` prints one object
instead. Blank lines are skipped.

Exit status: 0 every line is valid, 1 some lines are refused, 2 the file cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any

HELP = "check a JSON-lines file of events against the event contract (the worker's decoder)"
EXAMPLE = "claimstream validate events.jsonl && claimstream produce events.jsonl"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="JSON-lines file of events ('-': stdin)")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: counts, reasons and every refused line",
    )


def run(args: argparse.Namespace) -> int:
    import orjson

    from claimstream.cli._lines import JsonLines
    from claimstream.cli.progress import Progress
    from claimstream.detection.decode import decode_event
    from claimstream.model.rejection import Rejection

    refusals: list[dict[str, Any]] = []
    reasons: Counter[str] = Counter()
    lines_read = 0
    with JsonLines(args.file) as lines:
        progress = Progress(lines.total, unit="lines")
        try:
            for number, line in lines:
                lines_read += 1
                decoded = decode_event(line)
                if isinstance(decoded, Rejection):
                    reasons[decoded.reason] += 1
                    refusal = {"line": number, "reason": decoded.reason, "detail": decoded.detail}
                    if args.json:
                        refusals.append(refusal)
                    else:
                        print(f"{lines.name}:{number}: {decoded.reason}: {decoded.detail}")
                if lines_read % 4096 == 0:
                    progress.update(lines.consumed, lines_read)
        finally:
            progress.close()
    refused = sum(reasons.values())
    if args.json:
        report = {
            "file": lines.name,
            "lines": lines_read,
            "valid": lines_read - refused,
            "refused": refused,
            "reasons": dict(sorted(reasons.items())),
            "refusals": refusals,
        }
        print(orjson.dumps(report).decode())
    else:
        print(summary(lines.name, lines_read, reasons), file=sys.stderr)
    return 1 if refused else 0


def summary(name: str, lines: int, reasons: Counter[str]) -> str:
    """`FILE: 2,002 lines, 2,000 valid events, 2 refused (missing_field 1, not_json 1)`."""
    refused = sum(reasons.values())
    if not refused:
        return f"{name}: {lines:,} lines, all valid events"
    by_reason = ", ".join(f"{reason} {n:,}" for reason, n in sorted(reasons.items()))
    return (
        f"{name}: {lines:,} lines, {lines - refused:,} valid events, {refused:,} refused "
        f"({by_reason})"
    )
