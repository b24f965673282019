"""The reports API: file a report from the public, read reports, and act on them, each action a
signed person's action on `claimstream.actions.v1` keyed by the report id (docs/cases.md).

* `POST /v1/reports` (role `intake`, the hotline's or web form's front desk; `reviewer` and
  above may too): `{report_id?, received_at?, channel, reporter: {anonymous, name?, contact?},
  about, subject?: "KIND:ID", description, evidence?: [...]}`. Answered 202 with the report id;
  a retried POST is the same report: the id is the client's (`report_id`, a ticket number) or
  derived from what the report says, who says it and `received_at` (else the local day). When
  this worker already holds the report it answers 200 and publishes nothing. The answer never
  repeats the reporter's name or contact.
* `GET /v1/reports[?status=&overdue=true|false&open=true&limit=]` (supervisor): the reports of
  this worker's partitions by the due time of their next deadline, without the reporter.
* `GET /v1/reports/{report_id}` (supervisor): one report, timeline and deadlines included;
  the reporter's name and contact only for a token that also holds `reports:contact`.
  Forwarded to the worker holding it, as the cases' reads are.
* `POST /v1/reports/{report_id}/{acknowledge,accept,reject,feedback,reward}` (reviewer):
  `{note?}`, `{case_id? | subject?, institution_id?, told_reporter?, note?}`,
  `{reason, told_reporter?}`, `{note?}`, `{amount, reference?}`; each may carry `at`.

A write is made in the caller's name (a body naming someone else is 403). When this worker
holds the report, the action is tried on it first and a refusal answers 409 with its reason
(`decided`, `undecided`, `not_accepted`, `rewarded`, `unknown_report`); an acceptance into an
existing case this worker holds is refused (409) when that case is closed or unknown. A 400
names the field (`field`). Log lines (`Api.publish`) carry the action id, type and who, never
the reporter's name or contact, a note or the report's text.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import tzinfo
from typing import Any

from aiohttp import web

from claimstream.cases.case import Refusal, case_from_dict
from claimstream.cases.report_actions import AcceptReport, ReceiveReport, ReportAction
from claimstream.cases.report_processor import Repeated
from claimstream.kafka.report_actions import (
    accept_from_input,
    acknowledge_from_input,
    feedback_from_input,
    receive_from_input,
    reject_from_input,
    reward_from_input,
)
from claimstream.stream.cases import CasesRuntime
from claimstream.stream.http.access import CONTACT, grants
from claimstream.stream.http.api import Api, Caller, Reply, _at, _by
from claimstream.stream.http.cases import (
    CASE,
    action_of,
    casework_off,
    held_or_forwarded,
    limit_of,
    worker_reply,
)
from claimstream.stream.http.routes import CALLER, Forward, OwnerOf
from claimstream.stream.reports import ReportsRuntime

#: the key space of report reads (faust's router: the `reports` table)
REPORT = "report"
#: the request fields a 400 may name (its message begins with one of them)
FIELDS = (
    "report_id", "received_at", "channel", "reporter", "about", "subject", "description",
    "evidence", "case_id", "institution_id", "told_reporter", "note", "reason", "amount",
    "reference", "at", "by",
)  # fmt: skip


def field_of(message: str) -> str | None:
    """The request field a validation message is about (its first word), if it names one."""
    first = message.split(" ", 1)[0].rstrip(":").split(".", 1)[0].split("[", 1)[0]
    return first if first in FIELDS else None


def tried_report_action(
    reports: ReportsRuntime,
    cases: CasesRuntime | None,
    owner_of: OwnerOf | None,
    action: ReportAction,
) -> Reply | None:
    """The 409 (or 200, a report already received) answer when this worker's copy of the report
    (or of the case an acceptance names) refuses `action`; None: publish it."""
    owner, here = owner_of(REPORT, action.report_id) if owner_of is not None else (None, True)
    report = reports.held(action.report_id) if here or owner is None else None
    if isinstance(action, ReceiveReport):
        if report is None:
            return None
        body = {"report_id": action.report_id, "status": report.status, "repeated": True}
        return Reply(200, body)
    if report is not None:
        result = reports.processor.apply(report, action)
        if isinstance(result, Refusal):
            body = {"error": result.detail, "reason": result.reason, "report_id": action.report_id}
            return Reply(409, body)
        if isinstance(result, Repeated):
            return None
    if isinstance(action, AcceptReport) and action.open_for is None and cases is not None:
        where, mine = owner_of(CASE, action.case_id) if owner_of is not None else (None, True)
        if mine or where is None:
            held = cases.table.data.get(action.case_id)
            case = case_from_dict(held) if held is not None else None
            if case is None or case.step == "closed":
                reason = "unknown_case" if case is None else "closed"
                detail = f"no case {action.case_id}" if case is None else "the case is closed"
                body = {"error": detail, "reason": reason, "report_id": action.report_id}
                return Reply(409, body)
    return None


async def publish_report_action(
    reports: ReportsRuntime,
    cases: CasesRuntime | None,
    api: Api,
    owner_of: OwnerOf | None,
    action: ReportAction,
    remote: str | None,
    caller: str,
) -> Reply:
    """Try `action` on what this worker holds (`tried_report_action`), then publish it signed
    in `caller`'s name: 202 with the report id (and, for a receipt, without the record, which
    holds the reporter's contact)."""
    refused = tried_report_action(reports, cases, owner_of, action)
    if refused is not None:
        return refused
    answer = await api.publish(action, remote, caller)
    if answer.status == 202 and isinstance(answer.body, dict):
        answer.body["report_id"] = action.report_id
        if isinstance(action, AcceptReport):
            answer.body["case_id"] = action.case_id
        if isinstance(action, ReceiveReport):
            answer.body.pop("record", None)
    return answer


def report_routes(
    cases: CasesRuntime | None,
    api: Api,
    *,
    tz: Callable[[], tzinfo],
    worker_url: str,
    owner_of: OwnerOf,
    forward: Forward,
) -> list[web.RouteDef]:
    """The `/v1/reports` routes over the cases runtime's reports (None: casework off, 503)."""

    reply = worker_reply(worker_url)

    def runtime() -> ReportsRuntime | None:
        return cases.reports if cases is not None else None

    def off() -> web.Response:
        return reply(casework_off())

    async def listing(request: web.Request) -> web.Response:
        reports = runtime()
        if reports is None:
            return off()
        query = request.query
        flags: dict[str, bool | None] = {"overdue": None, "open": None}
        for name in flags:
            if name in query:
                if query[name] not in ("true", "false"):
                    return reply(Reply(400, {"error": f"{name} must be true or false",
                                             "field": name}))  # fmt: skip
                flags[name] = query[name] == "true"
        limit = limit_of(query, named=True)
        if isinstance(limit, Reply):
            return reply(limit)
        try:
            rows = reports.list(
                status=query.get("status") or None,
                overdue_only=flags["overdue"],
                open_only=bool(flags["open"]),
                limit=limit,
            )
        except ValueError as exc:
            return reply(Reply(400, {"error": str(exc), "field": "status"}))
        return reply(Reply(200, {"as_of": reports.now(), "reports": rows}))

    def local(reports: ReportsRuntime, report_id: str, caller: Caller) -> Reply:
        found = reports.report(report_id, contact=grants(caller.roles, CONTACT))
        if found is None:
            body = {
                "error": f"no report {report_id} is held on this worker",
                "key": report_id,
                "partition": reports.partition(report_id),
            }
            return Reply(404, body)
        return Reply(200, found)

    async def one(request: web.Request) -> web.StreamResponse:
        reports = runtime()
        if reports is None:
            return off()
        report_id = request.match_info["report_id"]
        caller = request[CALLER]
        answer = await held_or_forwarded(
            request, REPORT, report_id, lambda: local(reports, report_id, caller), owner_of, forward
        )
        return reply(answer) if isinstance(answer, Reply) else answer

    async def write(
        request: web.Request, build: Callable[[dict[str, Any], Caller], ReportAction]
    ) -> web.Response:
        reports = runtime()
        if reports is None:
            return off()
        action = await action_of(request, build, field_of)
        if isinstance(action, Reply):
            return reply(action)
        return reply(
            await publish_report_action(
                reports, cases, api, owner_of, action, request.remote, request[CALLER].name
            )
        )

    async def receive(request: web.Request) -> web.Response:
        return await write(
            request,
            lambda b, c: receive_from_input(
                channel=b.get("channel"),
                reporter=b.get("reporter"),
                about=b.get("about"),
                description=b.get("description"),
                by=_by(b, c),
                subject=b.get("subject"),
                evidence=b.get("evidence"),
                report_id=b.get("report_id"),
                received_at=_at(b, "received_at"),
                tz=tz(),
            ),
        )

    def acting(what: str) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.Response:
            rid = request.match_info["report_id"]

            def build(b: dict[str, Any], c: Caller) -> ReportAction:
                by, at = _by(b, c), _at(b)
                if what == "acknowledge":
                    return acknowledge_from_input(rid, by, note=b.get("note"), at=at, tz=tz())
                if what == "accept":
                    return accept_from_input(
                        rid, by, case_id=b.get("case_id"), subject=b.get("subject"),
                        institution_id=b.get("institution_id"),
                        told_reporter=b.get("told_reporter"), note=b.get("note"), at=at, tz=tz(),
                    )  # fmt: skip
                if what == "reject":
                    return reject_from_input(
                        rid, b.get("reason"), by, told_reporter=b.get("told_reporter"),
                        at=at, tz=tz(),
                    )  # fmt: skip
                if what == "feedback":
                    return feedback_from_input(rid, by, note=b.get("note"), at=at, tz=tz())
                return reward_from_input(
                    rid, b.get("amount"), by, reference=b.get("reference"), at=at, tz=tz()
                )

            return await write(request, build)

        return handler

    return [
        web.get("/v1/reports", listing),
        web.post("/v1/reports", receive),
        web.get("/v1/reports/{report_id}", one),
        *(
            web.post(f"/v1/reports/{{report_id}}/{what}", acting(what))
            for what in ("acknowledge", "accept", "reject", "feedback", "reward")
        ),
    ]
