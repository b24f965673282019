"""`claimstream institutions benchmark ID [--month YYYY-MM] [--html FILE] [--from FILE]`.

The benchmark an institution is shown (docs/benchmark-report.md): its closed month's indicators
beside its peer group's mean, median and 80th percentile, its rank, the 12-month trend and its
departments. From a worker's API (`GET /v1/institutions/{id}/benchmark`, `--worker`, the token
in `CLAIMSTREAM_CLIENT_TOKEN`: a `supervisor` one, or the institution's own) or, with `--from
FILE`, computed here from a JSON-lines file of InstitutionMonth records (what `replay
--indicators FILE` writes), no worker needed. Prints a table (`--json`: the answer as JSON);
`--html FILE` also writes the self-contained HTML report with the charts.

Exit status: 0 shown; 2 bad arguments, an unreadable or invalid file, an institution or month
not held, a token refused; 3 the worker did not answer.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from claimstream.cli._worker_api import add_worker_arguments

HELP = "the benchmark an institution is shown: its month beside its peer group's"
EXAMPLE = "claimstream institutions benchmark H0012 --month 2026-03 --html H0012-2026-03.html"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="institutions_action", metavar="ACTION", required=True)
    bench = sub.add_parser(
        "benchmark",
        help="an institution's month beside its peer group's, as a table or an HTML report",
        description="Each indicator of the institution's closed month beside its peer group's "
        "mean, median and 80th percentile, its rank (1 = highest = worst) and percentile, the "
        "trend of the last 12 months and its departments' figures. From a worker's API, or "
        "computed from a JSON-lines file of institution months (--from). Exit 2 when the "
        "institution or the month is not held.",
        epilog="example: claimstream institutions benchmark H0012 --month 2026-03 --html r.html\n"
        "         claimstream institutions benchmark H0012 --from months.jsonl --json",
    )
    bench.add_argument("institution_id", metavar="ID", help="the institution's id")
    bench.add_argument(
        "--month",
        metavar="YYYY-MM",
        help="the closed month to show (default: the institution's latest month held)",
    )
    bench.add_argument(
        "--html",
        metavar="FILE",
        help="also write the self-contained HTML report (charts, readable offline) to FILE",
    )
    bench.add_argument(
        "--from",
        dest="from_file",
        metavar="FILE",
        help="compute it from this JSON-lines file of institution months ('-': stdin) instead "
        "of asking a worker",
    )
    bench.add_argument("--json", action="store_true", help="print the answer as JSON")
    add_worker_arguments(
        bench,
        worker_note="the token is CLAIMSTREAM_CLIENT_TOKEN",
        answer="the worker's answer",
        retries=2,
    )


def run(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from claimstream import __version__
    from claimstream.cli._benchmark_view import html_report, text_report
    from claimstream.cli.exits import CommandError
    from claimstream.detection.benchmark import BadMonth, parse_month

    if args.month is not None:
        try:
            parse_month(args.month)
        except BadMonth as exc:
            raise CommandError(f"--month: {exc}") from None
    if args.from_file is not None:
        answer = _from_file(args)
        source = f"the file {args.from_file}"
    else:
        answer = _from_worker(args)
        source = f"the worker at {args.worker.rstrip('/')}"
    if args.json:
        import orjson

        print(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
    else:
        print(text_report(answer))
    if args.html:
        generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        page = html_report(answer, source=source, generated=generated, version=__version__)
        try:
            with open(args.html, "w", encoding="utf-8") as out:
                out.write(page)
        except OSError as exc:
            raise CommandError(f"cannot write {args.html}: {exc.strerror or exc}") from None
        print(f"wrote {args.html} ({len(page.encode()):,} bytes)", file=sys.stderr)
    return 0


def _from_file(args: argparse.Namespace) -> dict[str, Any]:
    import orjson

    from claimstream.cli._lines import JsonLines
    from claimstream.cli.exits import CommandError
    from claimstream.detection.benchmark import BenchmarkError, MemoryMonths, from_source
    from claimstream.model.indicators import InstitutionMonth

    source = MemoryMonths()
    with JsonLines(args.from_file) as lines:
        for number, line in lines:
            try:
                record = InstitutionMonth.from_dict(orjson.loads(line))
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
                why = (
                    f"missing field {e}" if isinstance(e, KeyError) else str(e) or type(e).__name__
                )
                raise CommandError(
                    f"{lines.name}:{number}: not an institution month record ({why})"
                ) from None
            source.add(record)
    try:
        return from_source(source, args.institution_id, args.month).to_dict()
    except BenchmarkError as exc:
        raise CommandError(f"{exc} in {lines.name}") from None


def _from_worker(args: argparse.Namespace) -> dict[str, Any]:
    import urllib.parse

    from claimstream.cli._worker_api import ask, worker_client

    client = worker_client(args)
    path = f"/v1/institutions/{urllib.parse.quote(args.institution_id, safe='')}/benchmark"
    if args.month:
        path += "?" + urllib.parse.urlencode({"month": args.month})
    return ask(
        client,
        path,
        wanted="a token with the supervisor role, or the institution's own",
        holding="indicators",
        what="a benchmark",
        more="; --from FILE works without one",
    )
