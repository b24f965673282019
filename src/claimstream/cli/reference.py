"""`claimstream reference check DIR`: check a reference data directory before a worker loads it.

DIR is loaded exactly as a worker with `reference_data_path = DIR` loads it (the manifest, every
CSV file, the packaged default for a file DIR lacks), so a directory that passes here is one
the worker accepts. The credentials (`agreements.csv`, `registrations.csv`) are then checked for
what a registry should not hold (`reference.credentials.check`): rows of one institution (of one
doctor at one institution) sharing a day (`overlap`), days between a row and the next (`gap`),
registrations at institutions `agreements.csv` does not list (`unknown_id`). Each is one line
`DIR/FILE:LINE: kind: message` on stdout; a summary goes to stderr. `--json` prints one object.

Exit status: 0 nothing found, 1 problems found, 2 DIR missing or not loadable (the message
names the file and line).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

HELP = "check a reference data directory: loadable, credentials without overlaps, gaps, unknown ids"
EXAMPLE = "claimstream reference check /etc/claimstream/reference && claimstream rules set ..."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = sub.add_parser(
        "check",
        help="load DIR as a worker would and report overlaps, gaps and unknown ids",
        description="Load DIR as a worker with reference_data_path=DIR would, then report "
        "overlapping rows, gaps between successive rows and unknown ids in its credentials "
        "(agreements.csv, registrations.csv). Exit 0 nothing found, 1 problems, 2 not loadable.",
        epilog="example: claimstream reference check ./reference --json",
    )
    check.add_argument("directory", metavar="DIR", help="reference data directory")
    check.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    import orjson

    from claimstream.cli import exits
    from claimstream.reference.credentials import AGREEMENTS, REGISTRATIONS, check
    from claimstream.reference.loader import ReferenceData, ReferenceDataError

    directory = Path(args.directory)
    try:
        data = ReferenceData.load(str(directory))
    except ReferenceDataError as exc:
        raise exits.CommandError(str(exc)) from None
    credentials = data.credentials
    problems = check(credentials)
    packaged = [name for name in (AGREEMENTS, REGISTRATIONS) if not (directory / name).is_file()]
    kinds = Counter(problem.kind for problem in problems)
    institutions = len(credentials.agreements)
    agreements = sum(map(len, credentials.agreements.values()))
    doctors = len(credentials.registrations)
    registrations = sum(len(v) for by in credentials.registrations.values() for v in by.values())
    if args.json:
        report = {
            "directory": str(directory),
            "version": data.version,
            "credentials_version": credentials.version,
            "packaged": packaged,
            "institutions": institutions,
            "agreements": agreements,
            "doctors": doctors,
            "registrations": registrations,
            "problems": [
                {"where": str(directory / p.where), "kind": p.kind, "message": p.message}
                for p in problems
            ],
        }
        print(orjson.dumps(report).decode())
    else:
        for problem in problems:
            print(f"{directory / problem.where}: {problem.kind}: {problem.message}")
        for name in packaged:
            print(
                f"{directory}: no {name}: the packaged (illustrative) one is used, as a worker "
                "would",
                file=sys.stderr,
            )
        found = (
            f"{len(problems)} problem{'s' * (len(problems) != 1)} "
            f"({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})"
            if problems
            else "no overlap, gap or unknown id"
        )
        print(
            f"{directory}: version {data.version}, credentials {credentials.version}: "
            f"{agreements} agreements of {institutions} institutions, {registrations} "
            f"registrations of {doctors} doctors; {found}",
            file=sys.stderr,
        )
    return exits.FOUND if problems else exits.OK
