"""`claimstream reports add|list|show|acknowledge|accept|reject|feedback|reward`: reports from the
public from the command line.

`list` and `show` ask a running worker's API (`GET /v1/reports`, `GET /v1/reports/{id}`;
`--worker`, default `http://127.0.0.1:$CLAIMSTREAM_WEB_PORT`) with the token
`$CLAIMSTREAM_CLIENT_TOKEN` (the `supervisor` role; `show` prints the reporter's name and
contact only when that token also holds `reports:contact`).

The other sub-commands publish a report action on `claimstream.actions.v1` (keyed by the report
id), signed with the person's own key like `claimstream cases` (`--signing-key` or
`$CLAIMSTREAM_ACTION_SIGNING_KEY_FILE`); the worker holding the report applies it within
seconds, or refuses it (a `refused` notice on `claimstream.reports.v1` with the reason). Bad
input is refused before anything is published, with the same words as the API. `add` without
`--report-id` derives the id from what the report says, so running it twice files one report.

Exit status: 0 done, 2 bad input, an unknown report id or a missing topic (nothing published),
3 the broker or the worker did not answer.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from claimstream.cli.cases import (
    Fields,
    _add_worker_arguments,
    _get,
    _when,
    action_parser,
    dispatch,
    limited,
    print_listing,
    publish_built,
    shown,
)

HELP = "file reports from the public, list and show them, and answer, accept or reject them"
EXAMPLES = {
    "add": "claimstream reports add --channel hotline --name 'Zhang San' --contact 138-0000-0000 "
    "--about 'pharmacy on Elm St' --subject institution:H0012 --description 'buys cards' "
    "--evidence photo-17 --by desk.wang",
    "acknowledge": "claimstream reports acknowledge rpt-3f2a9c0d1e4b5a6978c0d1e2 --by li.na "
    "--note 'called back'",
    "accept": "claimstream reports accept rpt-3f2a9c0d1e4b5a6978c0d1e2 --subject institution:H0012 "
    "--by li.na   # or --case CASE_ID",
    "reject": "claimstream reports reject rpt-3f2a9c0d1e4b5a6978c0d1e2 --reason 'not the fund' "
    "--by li.na",
    "feedback": "claimstream reports feedback rpt-3f2a9c0d1e4b5a6978c0d1e2 --by li.na "
    "--note 'told of the outcome'",
    "reward": "claimstream reports reward rpt-3f2a9c0d1e4b5a6978c0d1e2 --amount 500 "
    "--reference 'voucher 17' --by fin.wu",
}
STATUSES = ("received", "acknowledged", "accepted", "rejected")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="reports_action", metavar="ACTION", required=True)
    listing = sub.add_parser(
        "list",
        help="the reports a worker holds, by the due time of their next deadline",
        description="List the reports of a running worker (its partitions), by due time; "
        "never with the reporter's name or contact.",
        epilog="example: claimstream reports list --overdue\n"
        "         claimstream reports list --status received --json | jq .report_id",
    )
    listing.add_argument("--status", choices=STATUSES, help="only reports in this status")
    listing.add_argument("--overdue", action="store_true", help="only reports past a deadline")
    listing.add_argument("--open", action="store_true", help="only reports with a deadline left")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (1-1000)")
    _add_worker_arguments(listing)
    show = sub.add_parser(
        "show",
        help="one report: deadlines, status, case and timeline",
        description="Show one report from the worker holding it (the reporter's name and "
        "contact only when $CLAIMSTREAM_CLIENT_TOKEN holds reports:contact).",
        epilog="example: claimstream reports show rpt-3f2a9c0d1e4b5a6978c0d1e2",
    )
    show.add_argument("report_id", metavar="REPORT_ID")
    _add_worker_arguments(show)

    add = _action_parser(sub, "add", "file a report from the public")
    add.add_argument("--channel", required=True, choices=("hotline", "web", "letter", "visit"))
    who = add.add_mutually_exclusive_group(required=True)
    who.add_argument("--anonymous", action="store_true", help="the reporter gave no name")
    who.add_argument("--name", help="the real-name reporter's name (needs --contact)")
    add.add_argument("--contact", help="how to reach a real-name reporter (never logged)")
    add.add_argument("--about", required=True, help="whom or what, in the reporter's words")
    add.add_argument("--subject", metavar="KIND:ID", help="the subject, once identified")
    add.add_argument("--description", required=True, help="what the reporter says happened")
    add.add_argument("--evidence", action="append", metavar="REF", help="a reference (repeat)")
    add.add_argument("--report-id", metavar="ID", help="your own id (a ticket number)")
    add.add_argument("--received-at", metavar="RFC3339", help="when it came (default: now)")

    ack = _action_parser(sub, "acknowledge", "record that the reporter was answered")
    ack.add_argument("report_id", metavar="REPORT_ID")
    ack.add_argument("--note", help="kept in the timeline")

    accept = _action_parser(sub, "accept", "accept a report into a case")
    accept.add_argument("report_id", metavar="REPORT_ID")
    target = accept.add_mutually_exclusive_group(required=True)
    target.add_argument("--case", metavar="CASE_ID", help="an existing case")
    target.add_argument("--subject", metavar="KIND:ID", help="a new case for this subject")
    accept.add_argument("--institution", metavar="ID", help="the new case's institution")
    accept.add_argument(
        "--not-told", action="store_true", help="the real-name reporter was not told yet"
    )
    accept.add_argument("--note", help="kept in the timeline")

    reject = _action_parser(sub, "reject", "reject a report, with a reason")
    reject.add_argument("report_id", metavar="REPORT_ID")
    reject.add_argument("--reason", required=True)
    reject.add_argument(
        "--not-told", action="store_true", help="the real-name reporter was not told yet"
    )

    feedback = _action_parser(sub, "feedback", "record that feedback was given to the reporter")
    feedback.add_argument("report_id", metavar="REPORT_ID")
    feedback.add_argument("--note", help="kept in the timeline")

    reward = _action_parser(sub, "reward", "record a reward paid on an accepted report")
    reward.add_argument("report_id", metavar="REPORT_ID")
    reward.add_argument("--amount", required=True, type=float, help="yuan")
    reward.add_argument("--reference", help="the payment's reference")


def _action_parser(sub: Any, name: str, help_: str) -> argparse.ArgumentParser:
    return action_parser(
        sub, name, help_, EXAMPLES[name], "report",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip


def _reporter(args: argparse.Namespace) -> dict[str, Any]:
    return {"anonymous": bool(args.anonymous), "name": args.name, "contact": args.contact}


def _told(args: argparse.Namespace) -> bool:
    return not args.not_told


#: each action sub-command's builder (claimstream.kafka.report_actions) and its arguments
ACTIONS: dict[str, tuple[str, Fields]] = {
    "add": ("receive_from_input", {"channel": "channel", "reporter": _reporter,
                                   "about": "about", "description": "description",
                                   "subject": "subject", "evidence": "evidence",
                                   "report_id": "report_id", "received_at": "received_at",
                                   "at": None}),
    "acknowledge": ("acknowledge_from_input", {"report_id": "report_id", "note": "note"}),
    "accept": ("accept_from_input", {"report_id": "report_id", "case_id": "case",
                                     "subject": "subject", "institution_id": "institution",
                                     "told_reporter": _told, "note": "note"}),
    "reject": ("reject_from_input", {"report_id": "report_id", "reason": "reason",
                                     "told_reporter": _told}),
    "feedback": ("feedback_from_input", {"report_id": "report_id", "note": "note"}),
    "reward": ("reward_from_input", {"report_id": "report_id", "amount": "amount",
                                     "reference": "reference"}),
}  # fmt: skip


def run(args: argparse.Namespace) -> int:
    return dispatch(args.reports_action, args, run_list, run_show, run_action)


def run_action(args: argparse.Namespace) -> int:
    from claimstream.kafka import report_actions

    kind = args.reports_action
    if kind == "add" and args.json:
        args.json = False  # the record holds the reporter's contact: print where it went only
    return publish_built(f"reports {kind}", args, report_actions, ACTIONS[kind])


def run_list(args: argparse.Namespace) -> int:
    import urllib.parse

    query = limited(args)
    if args.status:
        query["status"] = args.status
    if args.overdue:
        query["overdue"] = "true"
    if args.open:
        query["open"] = "true"
    reports = _get(args, "/v1/reports?" + urllib.parse.urlencode(query)).get("reports", [])

    def line(r: dict[str, Any]) -> str:
        due = _when(r.get("due")) + (" LATE" if r.get("overdue") else "")
        return (
            f"{r['report_id']:<30} {r['status']:<13} {r.get('next_stage') or '-':<9} "
            f"{due:<17} {r['channel']:<8} {r['about']}"
        )

    header = f"{'report':<30} {'status':<13} {'next':<9} {'due':<17} {'channel':<8} about"
    return print_listing(args, reports, "no report", header, line)


def run_show(args: argparse.Namespace) -> int:
    report = shown(args, "report", args.report_id)
    if report is None:
        return 0
    late = f"  OVERDUE: {', '.join(report['overdue'])}" if report.get("overdue") else ""
    print(f"report {report['report_id']}  {report['channel']}  received {report['received_at']}")
    print(f"  status {report['status']}; next {report.get('next_stage') or '-'} due "
          f"{_when(report.get('due'))}{late}")  # fmt: skip
    reporter = report.get("reporter")
    if reporter is not None:
        name = (
            "anonymous" if reporter["anonymous"] else f"{reporter['name']} ({reporter['contact']})"
        )
        print(f"  reporter: {name}")
    else:
        print(f"  reporter: {'anonymous' if report['anonymous'] else 'real name (withheld)'}")
    subject = report.get("subject")
    about = report["about"] + (f" [{subject['kind']}:{subject['id']}]" if subject else "")
    print(f"  about: {about}")
    print(f"  case: {report.get('case_id') or '-'}")
    print(f"  description: {report['description']}")
    if report.get("evidence"):
        print(f"  evidence: {', '.join(report['evidence'])}")
    print("  timeline:")
    for entry in report.get("history", []):
        note = f"  {entry['note']}" if entry.get("note") else ""
        print(f"    {entry['at']}  {entry['type']:<19} {entry['by']}{note}")
    sys.stdout.flush()
    return 0
