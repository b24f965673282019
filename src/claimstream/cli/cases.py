"""`claimstream cases list|show|open|advance|assign|decide|recover`: casework from the command line.

`list` and `show` ask a running worker's API (`GET /v1/cases`, `GET /v1/cases/{case_id}`;
`--worker`, default `http://127.0.0.1:$CLAIMSTREAM_WEB_PORT`) with the token
`$CLAIMSTREAM_CLIENT_TOKEN` (the `supervisor` role or above), through `claimstream.client`
(`cli/_worker_api.py`: `--timeout`, and `--retries` while it answers 503 or cannot be reached).
`list` shows the cases the worker asked holds (its partitions), by due time.

The other sub-commands publish a case action on `claimstream.actions.v1` (keyed by the case
id), signed with the person's own key like `claimstream unfreeze` (`--signing-key` or
`$CLAIMSTREAM_ACTION_SIGNING_KEY_FILE`); the worker holding the case applies it within
seconds, or refuses it (a `refused` notice on `claimstream.cases.v1` with the reason; the
API's `POST /v1/cases/...` checks the transition first and answers 409 instead). Bad input is
refused before anything is published, with the same words as the API.

Cases name patients, doctors and institutions: this prints them on stdout only.

Exit status: 0 done, 2 bad input, an unknown case id or a missing topic (nothing published),
3 the broker or the worker did not answer.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Any

from claimstream.cli._actions import add_common_arguments, build_and_publish
from claimstream.cli._worker_api import add_worker_arguments

if TYPE_CHECKING:
    from claimstream.kafka.actions import AnyAction

HELP = "list and show cases, or advance, assign, decide and record money on one"
EXAMPLE = "claimstream cases advance case-3f2a9c0d1e4b5a6978c0d1e2 --by li.na --note 'checked'"
STEPS = ("first_review", "re_review", "appeal", "investigation", "decision", "closed")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="cases_action", metavar="ACTION", required=True)
    listing = sub.add_parser(
        "list",
        help="the cases a worker holds, by due time (overdue first)",
        description="List the cases of a running worker (its partitions), by due time.",
        epilog="example: claimstream cases list --overdue\n"
        "         claimstream cases list --step appeal --json | jq .case_id",
    )
    listing.add_argument("--step", choices=STEPS, help="only cases at this step")
    listing.add_argument("--overdue", action="store_true", help="only overdue cases")
    listing.add_argument("--limit", type=int, default=100, help="at most this many (1-1000)")
    _add_worker_arguments(listing)
    show = sub.add_parser(
        "show",
        help="one case: step, due date, alerts, money, decision and timeline",
        description="Show one case from the worker holding it.",
        epilog="example: claimstream cases show case-3f2a9c0d1e4b5a6978c0d1e2",
    )
    show.add_argument("case_id", metavar="CASE_ID")
    _add_worker_arguments(show)

    opening = _action_parser(sub, "open", "open a case by hand for KIND:ID")
    opening.add_argument("subject", metavar="KIND:ID", help="institution:ID, doctor:ID, patient:ID")
    opening.add_argument("--institution", metavar="ID", help="the institution the case concerns")
    opening.add_argument("--note", help="why (kept in the timeline)")

    advance = _action_parser(sub, "advance", "move a case to its next step")
    advance.add_argument("case_id", metavar="CASE_ID")
    advance.add_argument(
        "--to", choices=STEPS, help="a later step (skipping ones that did not happen)"
    )
    advance.add_argument("--note", help="why (kept in the timeline)")

    assign = _action_parser(sub, "assign", "give a case an owner")
    assign.add_argument("case_id", metavar="CASE_ID")
    assign.add_argument("--owner", required=True, metavar="NAME")

    decide = _action_parser(sub, "decide", "decide a case at its decision step")
    decide.add_argument("case_id", metavar="CASE_ID")
    decide.add_argument(
        "--outcome", required=True, choices=("confirmed", "partly_confirmed", "not_confirmed")
    )
    decide.add_argument(
        "--nature",
        choices=("intentional_fraud", "operational_error"),
        help="required unless not_confirmed",
    )
    decide.add_argument(
        "--amount", type=float, default=0.0, help="yuan confirmed (required unless not_confirmed)"
    )
    decide.add_argument(
        "--confirm-alert",
        action="append",
        dest="confirmed_alerts",
        metavar="ALERT_ID",
        help="partly_confirmed only: an alert of the case the decision confirms (repeat it for "
        "each); the case's other alerts are then found false positive. Without it, a partly "
        "confirmed decision gives its alerts no verdict",
    )
    decide.add_argument("--note", help="why (kept in the timeline)")

    recover = _action_parser(sub, "recover", "record money deducted or recovered on a case")
    recover.add_argument("case_id", metavar="CASE_ID")
    recover.add_argument("--money", required=True, choices=("deducted", "recovered"))
    recover.add_argument("--amount", required=True, type=float, help="yuan")
    recover.add_argument("--reference", help="the settlement or receipt it is recorded against")
    recover.add_argument("--note", help="why (kept in the timeline)")


EXAMPLES = {
    "open": "claimstream cases open institution:H0012 --by li.na --note 'hotline report 2026-17'",
    "advance": "claimstream cases advance CASE_ID --to investigation --by li.na "
    "--note 'no appeal lodged'",
    "assign": "claimstream cases assign CASE_ID --owner zhao.lei --by li.na",
    "decide": "claimstream cases decide CASE_ID --outcome partly_confirmed "
    "--nature operational_error --amount 1250 --confirm-alert ALERT_ID --by wang.fang",
    "recover": "claimstream cases recover CASE_ID --money deducted --amount 1250 "
    "--reference 'settlement 2026-04' --by fin.wu",
}


def _action_parser(sub: Any, name: str, help_: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help_,
        epilog=f"example: {EXAMPLES[name]}",
        description=f"{help_[0].upper()}{help_[1:]}: publish a signed case action on "
        "claimstream.actions.v1 (keyed by the case id). Bad input is refused before anything is "
        "published.",
    )
    parser.add_argument("--by", required=True, metavar="NAME", help="who acts")
    add_common_arguments(parser)
    return parser


def _add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    add_worker_arguments(
        parser,
        worker_note="the token is CLAIMSTREAM_CLIENT_TOKEN (the supervisor role or above)",
        answer="the worker's answer",
        retries=2,
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    action = args.cases_action
    if action == "list":
        return run_list(args)
    if action == "show":
        return run_show(args)
    return run_action(args)


def run_action(args: argparse.Namespace) -> int:
    from claimstream.kafka import case_actions as build_from

    kind = args.cases_action

    def build(tz: tzinfo) -> AnyAction:
        if kind == "open":
            return build_from.open_from_input(
                args.subject,
                args.by,
                institution_id=args.institution,
                note=args.note,
                at=args.at,
                tz=tz,
            )
        if kind == "advance":
            return build_from.advance_from_input(
                args.case_id, args.by, to=args.to, note=args.note, at=args.at, tz=tz
            )
        if kind == "assign":
            return build_from.assign_from_input(
                args.case_id, args.owner, args.by, at=args.at, tz=tz
            )
        if kind == "decide":
            return build_from.decide_from_input(
                args.case_id,
                args.outcome,
                args.by,
                nature=args.nature,
                confirmed_amount=args.amount,
                note=args.note,
                confirmed_alerts=args.confirmed_alerts,
                at=args.at,
                tz=tz,
            )
        return build_from.recover_from_input(
            args.case_id,
            args.money,
            args.amount,
            args.by,
            reference=args.reference,
            note=args.note,
            at=args.at,
            tz=tz,
        )

    code = build_and_publish(f"cases {kind}", args, build)
    return code


def _get(
    args: argparse.Namespace,
    path: str,
    *,
    holding: str | None = None,
    what: str = "a JSON object",
    unknown: str | None = None,
) -> dict[str, Any]:
    """`ask` of `--worker` for a supervisor's read (`cases list|show`, `reports list|show`)."""
    from claimstream.cli._worker_api import ask, worker_client

    return ask(
        worker_client(args),
        path,
        wanted="a token with the supervisor role",
        holding=holding,
        what=what,
        unknown=unknown,
    )


def _when(ts: object) -> str:
    if not isinstance(ts, int | float):
        return "-"
    return datetime.fromtimestamp(ts, UTC).astimezone().strftime("%Y-%m-%d %H:%M")


def run_list(args: argparse.Namespace) -> int:
    import json
    import urllib.parse

    from claimstream.cli.exits import CommandError

    if not 1 <= args.limit <= 1000:
        raise CommandError("--limit must be from 1 to 1000")
    query: dict[str, str] = {"limit": str(args.limit)}
    if args.step:
        query["step"] = args.step
    if args.overdue:
        query["overdue"] = "true"
    answer = _get(
        args, "/v1/cases?" + urllib.parse.urlencode(query), holding="cases", what="a list of cases"
    )
    cases = answer.get("cases", [])
    if args.json:
        for case in cases:
            print(json.dumps(case, ensure_ascii=False))
        return 0
    if not cases:
        print("no case")
        return 0
    print(
        f"{'case':<30} {'step':<14} {'due':<17} {'subject':<24} {'flagged':>10} {'recovered':>10}"
    )
    for case in cases:
        subject = f"{case['subject']['kind']}:{case['subject']['id']}"
        totals = case.get("totals", {})
        due = _when(case.get("due")) + (" LATE" if case.get("overdue") else "")
        got = totals.get("deducted", 0) + totals.get("recovered", 0)
        print(
            f"{case['case_id']:<30} {case['step']:<14} {due:<17} {subject:<24} "
            f"{totals.get('flagged', 0):>10.2f} {got:>10.2f}"
        )
    return 0


def run_show(args: argparse.Namespace) -> int:
    import json
    import urllib.parse

    case_id = args.case_id
    path = "/v1/cases/" + urllib.parse.quote(case_id, safe="")
    unknown = f"no case {case_id} (unknown id, or not held by that worker)"
    case = _get(args, path, holding="case_id", what="a case", unknown=unknown)
    if args.json:
        print(json.dumps(case, ensure_ascii=False, indent=2))
        return 0
    subject = f"{case['subject']['kind']}:{case['subject']['id']}"
    late = "  OVERDUE" if case.get("overdue") else ""
    print(f"case {case['case_id']}  {subject}  institution {case.get('institution_id') or '-'}")
    owner = case.get("owner") or "-"
    print(f"  step {case['step']}, due {_when(case.get('due'))}{late}; owner {owner}")
    totals = case.get("totals", {})
    print("  money: " + ", ".join(f"{k} {v:.2f}" for k, v in totals.items()))
    decision = case.get("decision")
    if decision:
        print(
            f"  decision: {decision['outcome']} ({decision.get('nature') or '-'}) "
            f"{decision['confirmed_amount']:.2f} by {decision['by']} at {decision['at']}"
        )
        if decision.get("confirmed_alerts"):
            print(f"    confirms alerts: {', '.join(decision['confirmed_alerts'])}")
    print(f"  alerts ({case.get('alert_count', 0)}): {', '.join(case.get('alert_ids', []))}")
    print("  timeline:")
    for entry in case.get("history", []):
        note = f"  {entry['note']}" if entry.get("note") else ""
        print(f"    {entry['at']}  {entry['type']:<13} {entry['step']:<14} {entry['by']}{note}")
    sys.stdout.flush()
    return 0
