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
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, tzinfo
from types import ModuleType
from typing import Any

from claimstream.cli._actions import add_common_arguments, build_and_publish
from claimstream.cli._worker_api import add_worker_arguments

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
    return action_parser(sub, name, help_, EXAMPLES[name], "case")


# -- what `claimstream cases` and `claimstream reports` share ----------------------------------

#: a builder's keyword -> the parsed argument it takes, or a function of the parsed arguments;
#: None: not passed (`by` and `at` are passed unless so)
Fields = Mapping[str, str | Callable[[argparse.Namespace], object] | None]


def action_parser(
    sub: Any, name: str, help_: str, example: str, noun: str, **more: Any
) -> argparse.ArgumentParser:
    """An action sub-command's parser: its help, `--by` and the publishing options."""
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help_,
        epilog=f"example: {example}",
        description=f"{help_[0].upper()}{help_[1:]}: publish a signed {noun} action on "
        f"claimstream.actions.v1 (keyed by the {noun} id). Bad input is refused before "
        "anything is published.",
        **more,
    )
    parser.add_argument("--by", required=True, metavar="NAME", help="who acts")
    add_common_arguments(parser)
    return parser


def dispatch(
    action: str,
    args: argparse.Namespace,
    listing: Callable[[argparse.Namespace], int],
    show: Callable[[argparse.Namespace], int],
    act: Callable[[argparse.Namespace], int],
) -> int:
    """`list`, `show`, or an action sub-command."""
    if action == "list":
        return listing(args)
    if action == "show":
        return show(args)
    return act(args)


def publish_built(
    command: str, args: argparse.Namespace, builders: ModuleType, spec: tuple[str, Fields]
) -> int:
    """Build the action `spec` names (a builder of `builders`, called with the arguments its
    fields name) and publish it (`build_and_publish`)."""
    name, fields = spec
    values = {
        keyword: getattr(args, given) if isinstance(given, str) else given(args)
        for keyword, given in ({"by": "by", "at": "at"} | dict(fields)).items()
        if given is not None
    }

    def build(tz: tzinfo) -> Any:
        return getattr(builders, name)(**values, tz=tz)

    return build_and_publish(command, args, build)


def limited(args: argparse.Namespace) -> dict[str, str]:
    """A listing's query, its `--limit` checked."""
    from claimstream.cli.exits import CommandError

    if not 1 <= args.limit <= 1000:
        raise CommandError("--limit must be from 1 to 1000")
    return {"limit": str(args.limit)}


def print_listing(
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
    none: str,
    header: str,
    line: Callable[[dict[str, Any]], str],
) -> int:
    """A listing's rows: one JSON object a line (`--json`), `none`, or a table."""
    import json

    if args.json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return 0
    if not rows:
        print(none)
        return 0
    print(header)
    for row in rows:
        print(line(row))
    return 0


def shown(args: argparse.Namespace, noun: str, key: str, **asked: Any) -> dict[str, Any] | None:
    """The `noun` (a case, a report) the worker holds as `key`; None when printed as JSON."""
    import json
    import urllib.parse

    path = f"/v1/{noun}s/" + urllib.parse.quote(key, safe="")
    unknown = f"no {noun} {key} (unknown id, or not held by that worker)"
    found = _get(args, path, unknown=unknown, **asked)
    if args.json:
        print(json.dumps(found, ensure_ascii=False, indent=2))
        return None
    return found


def _add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    add_worker_arguments(
        parser,
        worker_note="the token is CLAIMSTREAM_CLIENT_TOKEN (the supervisor role or above)",
        answer="the worker's answer",
        retries=2,
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


#: each action sub-command's builder (claimstream.kafka.case_actions) and its arguments
ACTIONS: dict[str, tuple[str, Fields]] = {
    "open": ("open_from_input", {"subject": "subject", "institution_id": "institution",
                                 "note": "note"}),
    "advance": ("advance_from_input", {"case_id": "case_id", "to": "to", "note": "note"}),
    "assign": ("assign_from_input", {"case_id": "case_id", "owner": "owner"}),
    "decide": ("decide_from_input", {"case_id": "case_id", "outcome": "outcome",
                                     "nature": "nature", "confirmed_amount": "amount",
                                     "note": "note", "confirmed_alerts": "confirmed_alerts"}),
    "recover": ("recover_from_input", {"case_id": "case_id", "money": "money",
                                       "amount": "amount", "reference": "reference",
                                       "note": "note"}),
}  # fmt: skip


def run(args: argparse.Namespace) -> int:
    return dispatch(args.cases_action, args, run_list, run_show, run_action)


def run_action(args: argparse.Namespace) -> int:
    from claimstream.kafka import case_actions

    kind = args.cases_action
    return publish_built(f"cases {kind}", args, case_actions, ACTIONS[kind])


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
    import urllib.parse

    query = limited(args)
    if args.step:
        query["step"] = args.step
    if args.overdue:
        query["overdue"] = "true"
    answer = _get(
        args, "/v1/cases?" + urllib.parse.urlencode(query), holding="cases", what="a list of cases"
    )

    def line(case: dict[str, Any]) -> str:
        subject = f"{case['subject']['kind']}:{case['subject']['id']}"
        totals = case.get("totals", {})
        due = _when(case.get("due")) + (" LATE" if case.get("overdue") else "")
        got = totals.get("deducted", 0) + totals.get("recovered", 0)
        return (
            f"{case['case_id']:<30} {case['step']:<14} {due:<17} {subject:<24} "
            f"{totals.get('flagged', 0):>10.2f} {got:>10.2f}"
        )

    header = (
        f"{'case':<30} {'step':<14} {'due':<17} {'subject':<24} {'flagged':>10} {'recovered':>10}"
    )
    return print_listing(args, answer.get("cases", []), "no case", header, line)


def run_show(args: argparse.Namespace) -> int:
    case = shown(args, "case", args.case_id, holding="case_id", what="a case")
    if case is None:
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
