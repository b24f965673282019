"""The console's routes (all under `/console`), each a server-rendered page.

* `GET /console/login`, `POST /console/login` (the token pasted), `POST /console/logout`;
* `GET /console/`: the queue, the cases this worker holds by due time, then severity (the
  highest of the alerts held here), then amount flagged; overdue ones say so in words;
* `GET /console/cases/{case_id}`: the case: evidence (its alerts in time order, with rule,
  thresholds, legal basis and amount), money, the timeline, and the forms of the next step;
* `POST /console/cases/{case_id}/{advance,assign,decide,recover}`: a case action, answered with
  a redirect to the case page, which reloads itself (no script: a meta refresh) until the
  action is in the timeline;
* `POST /console/cases/{case_id}/review` (`alert_id`, `verdict`, `note`): a reviewer's verdict
  on one of the case's alerts, and `POST /console/cases/{case_id}/unfreeze` (`scope`, the
  case's subject, `reason`, `ground`): a manual unfreeze; the same signed people's actions as
  `claimstream alerts review` and `claimstream unfreeze` (the same builders), the page
  reloading until the alert's status is the verdict, or the subject has nothing in force;
* `GET /console/institutions/{institution_id}`: grade, freezes in force, open cases and
  alerts, the responsibility roll-up with doctors' points (the sanctions view);
  `POST /console/institutions/{institution_id}/unfreeze` (`reason`, `ground`);
* `GET /console/reports`: the reports from the public this worker holds, by the due time of
  their next deadline, overdue ones marked; `GET /console/reports/{report_id}`: one report
  (the reporter's name and contact only for `reports:contact`), its deadlines and timeline, and
  the forms (acknowledge, accept into a new or an existing case, reject, feedback, reward);
  `POST /console/reports/{report_id}/{acknowledge,accept,reject,feedback,reward}`;
* `GET /console/static/console.css`.

Like the API's reads, a page answers from what this worker holds (its partitions); a case held
by another worker is read from its owner's `/v1/cases/{case_id}` with the person's token.
Log lines name the route's pattern and the person, never a path or an id.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, tzinfo
from importlib import resources
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import web
from yarl import URL

from claimstream.cases.actions import STEPS, CaseAction
from claimstream.cases.report_actions import ReportAction
from claimstream.kafka.actions import unfreeze_from_input, verdict_from_input
from claimstream.kafka.case_actions import (
    advance_from_input,
    assign_from_input,
    decide_from_input,
    recover_from_input,
)
from claimstream.kafka.report_actions import accept_from_input as accept_report
from claimstream.kafka.report_actions import acknowledge_from_input as acknowledge_report
from claimstream.kafka.report_actions import feedback_from_input as report_feedback
from claimstream.kafka.report_actions import reject_from_input as reject_report
from claimstream.kafka.report_actions import reward_from_input as reward_report
from claimstream.model.outputs import SEVERITIES
from claimstream.sanctions.actions import ManualUnfreeze, Verdict
from claimstream.sanctions.codec import PersonAction
from claimstream.stream.cases import CasesRuntime
from claimstream.stream.http.access import CONTACT, Access, Denied, grants
from claimstream.stream.http.api import Api, Caller, Reply
from claimstream.stream.http.cases import CASE, publish_case_action
from claimstream.stream.http.console.session import (
    COOKIE,
    csrf_ok,
    csrf_token,
    over_tls,
    same_origin,
    signed_in,
    signed_out,
)
from claimstream.stream.http.reports import REPORT, publish_report_action
from claimstream.stream.http.routes import FORWARDED, OwnerOf, route_of
from claimstream.stream.reports import ReportsRuntime

log = logging.getLogger(__name__)

PREFIX = "/console"
READ, ACT = "supervisor", "reviewer"
#: cases the queue shows at most, and alerts of a case looked at for its severity
QUEUE_LIMIT = 200
SEVERITY_ALERTS = 50
#: alerts of a case the evidence shows at most
EVIDENCE_LIMIT = 200
#: how many times a case page reloads itself waiting for a just-published action
PENDING_TRIES = 15
#: the steps' names, with the regulations' Chinese term (marked `lang`, for screen readers)
STEP_NAMES = {
    "first_review": ("First review", "初审"),
    "re_review": ("Re-review", "复审"),
    "appeal": ("Appeal", "申诉"),
    "investigation": ("Investigation", "调查核实"),
    "decision": ("Decision", "处理"),
    "closed": ("Closed", ""),
}
#: the timeline's words for an entry's type
ENTRY_NAMES = {
    "case_open": "opened",
    "alert": "alert linked",
    "case_advance": "advanced",
    "case_assign": "assigned",
    "case_decide": "decided",
    "case_recover": "money recorded",
    "report_accept": "report linked",
    "report_receive": "received",
    "report_acknowledge": "acknowledged",
    "report_reject": "rejected",
    "report_feedback": "feedback given",
    "report_reward": "reward paid",
}
#: a reviewer's verdicts on an alert, as the forms name them (`claimstream alerts review`)
VERDICT_NAMES = {"confirmed": "confirm", "false_positive": "false positive"}
NO_SANCTIONS = "Sanctions are not available on this worker."
#: the reports' deadlines, as the pages name them
STAGE_NAMES = {"respond": "respond", "accept": "decide on acceptance", "feedback": "feedback"}
#: what the sign-in page may be asked to say (`?why=`)
SIGN_IN_NOTES = {
    "expired": "Your token is no longer valid: sign in again.",
    "signed_out": "Signed out.",
}
#: the headers of every page: nothing of it may be cached or framed, and nothing but this
#: server's stylesheet is loaded (there is no script)
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

Fetch = Callable[[str, str, str], Awaitable[tuple[int, Any]]]


class Templates:
    """The Jinja2 environment, built at the first page (the worker starts without it)."""

    def __init__(self) -> None:
        self._env: Any = None

    def render(self, name: str, **values: Any) -> str:
        if self._env is None:
            import jinja2

            self._env = jinja2.Environment(
                loader=jinja2.PackageLoader("claimstream.stream.http.console", "templates"),
                autoescape=True,
                trim_blocks=True,
                lstrip_blocks=True,
            )
            self._env.filters["label"] = step_label
            self._env.filters["entry"] = lambda v: ENTRY_NAMES.get(v, v)
            self._env.filters["stage"] = lambda v: STAGE_NAMES.get(v, v)
        text: str = self._env.get_template(name).render(**values)
        return text


def step_label(step: str) -> Any:
    """A step's name, and its Chinese term in a `lang` span (escaped here: it is markup)."""
    from markupsafe import Markup, escape

    english, chinese = STEP_NAMES.get(step, (step, ""))
    if not chinese:
        return escape(english)
    return Markup('{} (<span lang="zh-Hans">{}</span>)').format(english, chinese)


def _safe_next(value: object) -> str:
    """Where to go after signing in: a console path only (no open redirect)."""
    if isinstance(value, str) and value.startswith(f"{PREFIX}/") and "//" not in value:
        return value
    return f"{PREFIX}/"


def _text(form: Mapping[str, Any], name: str) -> str | None:
    """A form field's text; None when it is missing or blank."""
    value = form.get(name)
    return value if isinstance(value, str) and value.strip() else None


def in_force(standing: Mapping[str, Any] | None) -> bool:
    """Whether a subject's standing has a freeze or a suspension in force (an unfreeze ends
    every one of them at once: its scope is the subject)."""
    return standing is not None and bool(standing.get("freezes") or standing.get("suspension"))


def pending_of(
    request: web.Request, held: Mapping[str, Any], *, seen: bool = False
) -> dict[str, Any]:
    """What a case's, report's or institution's page says of the action `?pending=` names (a
    page that reloads itself, `refresh`, at most `PENDING_TRIES` times, until it is in the
    timeline, or `seen`: its effect shows, for an action that has no timeline entry, such as
    a verdict or an unfreeze). The reload keeps the page's other query fields."""
    pending = request.query.get("pending", "")
    try:
        tries = int(request.query.get("tries", "0"))
    except ValueError:
        tries = PENDING_TRIES
    applied = seen or any(e.get("action_id") == pending for e in held.get("history") or ())
    waiting = bool(pending) and not applied
    refresh = ""
    if waiting and tries < PENDING_TRIES:
        query = {**request.query, "pending": pending, "tries": str(tries + 1)}
        refresh = str(URL(request.path).with_query(query))
    return {
        "pending": pending,
        "applied": applied and bool(pending),
        "waiting": waiting,
        "refresh": refresh,
    }


def owner_fetch(session: Callable[[], aiohttp.ClientSession], worker_url: str) -> Fetch:
    """Reads a JSON path of another worker with the person's token (a forwarded read)."""

    async def fetch(owner: str, path: str, token: str) -> tuple[int, Any]:
        target = URL(owner).with_path(path)
        headers = {
            "Authorization": f"Bearer {token}",
            FORWARDED: worker_url,
            "Accept": "application/json",
        }
        timeout = aiohttp.ClientTimeout(total=5.0)
        async with session().get(target, headers=headers, timeout=timeout) as response:
            return response.status, await response.json(content_type=None)

    return fetch


def console_routes(
    runtime: CasesRuntime | None,
    api: Api,
    access: Access,
    *,
    tz: Callable[[], tzinfo],
    owner_of: OwnerOf | None = None,
    fetch: Fetch | None = None,
) -> list[web.RouteDef]:
    """The console's routes over the cases `runtime` (None: casework off), the API's logic
    (`api`: the sanctions view and the signed publishing) and the worker's tokens."""
    templates = Templates()

    def when(ts: float | None) -> str:
        if ts is None:
            return "—"
        return datetime.fromtimestamp(ts, tz()).strftime("%Y-%m-%d %H:%M")

    def page(
        request: web.Request,
        name: str,
        status: int = 200,
        caller: Caller | None = None,
        **values: Any,
    ) -> web.Response:
        token = request.cookies.get(COOKIE, "")
        text = templates.render(
            name,
            caller=caller,
            can_act=caller is not None and not caller.legacy and grants(caller.roles, ACT),
            csrf=csrf_token(token) if caller is not None else "",
            prefix=PREFIX,
            when=when,
            quote=lambda v: quote(str(v), safe=""),
            **values,
        )
        return web.Response(
            text=text, status=status, content_type="text/html", headers=PAGE_HEADERS
        )

    def refused(
        request: web.Request, status: int, message: str, caller: Caller | None
    ) -> web.Response:
        log.warning(
            "console refused (%d) %s %s from %s%s",
            status,
            request.method,
            route_of(request),
            request.remote,
            f" by {caller.name}" if caller else "",
        )
        return page(request, "refused.html", status, caller, code=status, message=message)

    def to_login(request: web.Request, why: str = "") -> web.Response:
        target = URL(f"{PREFIX}/login").with_query(
            {"next": request.path_qs if request.method == "GET" else f"{PREFIX}/"}
            | ({"why": why} if why else {})
        )
        response = web.Response(status=303, headers={"Location": str(target), **PAGE_HEADERS})
        if why:
            signed_out(response, secure=over_tls(request.secure, request.headers))
        return response

    def who(request: web.Request, needed: str = READ) -> Caller | web.Response:
        """The signed-in person holding `needed`, or the page to answer instead."""
        token = request.cookies.get(COOKIE)
        if not token:
            return to_login(request)
        answer = access.authenticate(f"Bearer {token}", needed)
        if isinstance(answer, Denied):
            if answer.status == 401:
                return to_login(request, "expired")
            caller = None
            if answer.status == 403:
                read = access.authenticate(f"Bearer {token}", READ)
                caller = read if isinstance(read, Caller) else None
            return refused(request, answer.status, answer.error, caller)
        return answer

    # -- sign-in --------------------------------------------------------------------------------

    async def login_form(request: web.Request) -> web.Response:
        # a code, not free text: a link cannot make the sign-in page say what it wants
        why = SIGN_IN_NOTES.get(request.query.get("why", ""), "")
        return page(request, "login.html", next=_safe_next(request.query.get("next")), error=why)

    async def login(request: web.Request) -> web.Response:
        form = await request.post()
        target = _safe_next(form.get("next"))
        if not same_origin(request.headers, request.host):
            return page(
                request,
                "login.html",
                403,
                next=target,
                error="This sign-in did not come from this console's page.",
            )
        token = form.get("token")
        token = token.strip() if isinstance(token, str) else ""
        answer = access.authenticate(f"Bearer {token}", READ) if token else None
        if not isinstance(answer, Caller):
            status = 401 if answer is None else answer.status
            error = "Paste your API token." if answer is None else answer.error
            if isinstance(answer, Denied) and answer.status == 401:
                error = "That token is not valid."
            log.warning("console sign-in refused (%d) from %s", status, request.remote)
            return page(request, "login.html", status, next=target, error=error)
        if answer.legacy:
            log.warning("console sign-in refused (403) from %s: the shared token", request.remote)
            return page(
                request,
                "login.html",
                403,
                next=target,
                error="The shared CLAIMSTREAM_API_TOKEN has no person's name: sign in "
                "with your own token (docs/security.md).",
            )
        log.info("console sign-in by %s from %s", answer.name, request.remote)
        response = web.Response(status=303, headers={"Location": target, **PAGE_HEADERS})
        signed_in(response, token, secure=over_tls(request.secure, request.headers))
        return response

    async def logout(request: web.Request) -> web.Response:
        token = request.cookies.get(COOKIE, "")
        form = await request.post()
        if token and not csrf_ok(token, form.get("csrf")):
            return refused(request, 403, "This form did not come from your console session.", None)
        response = web.Response(
            status=303,
            headers={"Location": f"{PREFIX}/login?why=signed_out", **PAGE_HEADERS},
        )
        signed_out(response, secure=over_tls(request.secure, request.headers))
        return response

    # -- reads ----------------------------------------------------------------------------------

    def severity_of(case: Mapping[str, Any]) -> str | None:
        view = api.view
        if view is None:
            return None
        rank = -1
        for alert_id in list(case.get("alert_ids") or ())[:SEVERITY_ALERTS]:
            found = view.alert(alert_id)
            if found is not None and found.get("severity") in SEVERITIES:
                rank = max(rank, SEVERITIES.index(found["severity"]))
        return SEVERITIES[rank] if rank >= 0 else None

    def queue_rows(step: str | None, overdue: bool | None) -> list[dict[str, Any]]:
        assert runtime is not None
        rows = runtime.list(step=step, overdue=overdue, limit=1000)
        for row in rows:
            held = runtime.table.data.get(row["case_id"])
            row["severity"] = severity_of(held) if held is not None else None
        rows.sort(
            key=lambda r: (
                r["due"] is None,
                r["due"] or 0.0,
                -(SEVERITIES.index(r["severity"]) if r["severity"] else -1),
                -float(r["totals"].get("flagged") or 0.0),
                r["case_id"],
            )
        )
        return rows[:QUEUE_LIMIT]

    async def queue(request: web.Request) -> web.Response:
        caller = who(request)
        if not isinstance(caller, Caller):
            return caller
        if runtime is None:
            return refused(request, 503, "Casework is disabled on this worker.", caller)
        step = request.query.get("step") or None
        if step is not None and step not in STEPS:
            step = None
        shown = request.query.get("show", "open")
        rows = queue_rows(step, None)
        if shown == "overdue":
            rows = [r for r in rows if r["overdue"]]
        elif shown != "all":
            shown = "open"
            rows = [r for r in rows if r["step"] != "closed"]
        return page(
            request,
            "queue.html",
            caller=caller,
            rows=rows,
            steps=STEPS,
            step=step,
            shown=shown,
            as_of=runtime.now(),
            limit=QUEUE_LIMIT,
        )

    async def read_held(
        request: web.Request, space: str, key: str, local: Callable[[], Any]
    ) -> tuple[int, Any]:
        """As `GET /v1/{space}s/{key}` (a case or a report): from this worker when it owns
        `key` (or nobody is known to), `local()`, else from its owner with the person's token
        (a standby copy may lag)."""
        where, here = owner_of(space, key) if owner_of is not None else (None, True)
        if here or where is None or fetch is None or request.headers.get(FORWARDED):
            found = local()
            return (404, None) if found is None else (200, found)
        try:
            status, body = await fetch(
                where, f"/v1/{space}s/{quote(key, safe='')}", request.cookies.get(COOKIE, "")
            )
        except Exception as exc:  # noqa: BLE001  (the owner is down or moving: say so)
            log.warning(
                "console: reading a %s from %s failed: %s", space, where, type(exc).__name__
            )
            return 502, None
        return status, body if status == 200 else None

    def not_held(
        request: web.Request, caller: Caller, space: str, key: str, found_status: int
    ) -> web.Response:
        """The page saying a case or report is not held here, or its owner did not answer."""
        if found_status == 404:
            message, code = f"No {space} {key} is held on this worker.", 404
        else:
            message, code = f"The worker holding this {space} did not answer; try again.", 502
        return page(request, "refused.html", code, caller, code=code, message=message)

    def form_action(
        space: str,
        build: Callable[[str, Mapping[str, Any], Caller], Any],
        held: Callable[[], object],
        publish: Callable[[Any, web.Request, Caller], Awaitable[Reply]],
        detail: Callable[..., Awaitable[web.Response]],
        *,
        off: str = "Casework is disabled on this worker.",
        awaited: Callable[[Any], Mapping[str, str]] | None = None,
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        """The handler of a form posting an action (`build`: a case or report action, or a
        person's action of the sanctions) from the page of `space` (a case, a report, an
        institution): the person, the form's CSRF token and origin, the reviewer role, the
        runtime on (`held()` not None, else 503 saying `off`), then the action built, tried
        and published (`publish`); answered with a redirect to the `detail` page waiting for it
        (`awaited(action)`: the query fields that page needs to see it applied), or that page
        with the refusal."""
        key_name = f"{space}_id"

        async def handler(request: web.Request) -> web.Response:
            caller = who(request)
            if not isinstance(caller, Caller):
                return caller
            form = await request.post()
            token = request.cookies.get(COOKIE, "")
            if not csrf_ok(token, form.get("csrf")) or not same_origin(
                request.headers, request.host
            ):
                return refused(
                    request,
                    403,
                    "This form did not come from your console "
                    "session: reload the page and try again.",
                    caller,
                )
            if caller.legacy or not grants(caller.roles, ACT):
                roles = ", ".join(sorted(caller.roles))
                return refused(
                    request,
                    403,
                    f"Your token ({caller.name}) has the role {roles}: {space} actions need {ACT}.",
                    caller,
                )
            if held() is None:
                return refused(request, 503, off, caller)
            key = request.match_info[key_name]
            values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf"}
            try:
                action = build(key, values, caller)
            except ValueError as exc:
                return await detail(request, caller, status=400, error=str(exc), form=values)
            answer = await publish(action, request, caller)
            if answer.status != 202:
                body = answer.body if isinstance(answer.body, dict) else {}
                return await detail(
                    request,
                    caller,
                    status=answer.status,
                    error=str(body.get("error", "refused")),
                    form=values,
                )
            query = {"pending": action.action_id, **(awaited(action) if awaited else {})}
            target = URL(f"{PREFIX}/{space}s/{quote(key, safe='')}", encoded=True).with_query(query)
            return web.Response(status=303, headers={"Location": str(target), **PAGE_HEADERS})

        return handler

    def evidence(case: Mapping[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
        """The case's alerts held here, in time order, and the ids of those not held here."""
        held: list[dict[str, Any]] = []
        elsewhere: list[str] = []
        view = api.view
        for alert_id in list(case.get("alert_ids") or ())[:EVIDENCE_LIMIT]:
            found = view.alert(alert_id) if view is not None else None
            if found is None:
                elsewhere.append(alert_id)
            else:
                held.append(found)
        held.sort(key=lambda a: (str(a.get("occurred_at", "")), str(a.get("alert_id", ""))))
        return held, elsewhere

    def next_step(case: Mapping[str, Any]) -> str | None:
        step = case["step"]
        if step == "closed":
            return None
        target = STEPS[STEPS.index(step) + 1]
        if target == "closed" and case.get("decision") is None:
            return None  # decide first
        return target

    async def case_page(
        request: web.Request,
        caller: Caller,
        *,
        status: int = 200,
        error: str = "",
        form: Mapping[str, Any] | None = None,
    ) -> web.Response:
        assert runtime is not None
        case_id = request.match_info["case_id"]
        found_status, case = await read_held(request, CASE, case_id, lambda: runtime.case(case_id))
        if case is None:
            return not_held(request, caller, CASE, case_id, found_status)
        alerts, elsewhere = evidence(case)
        decision = case.get("decision")
        standing = standing_of(case.get("subject"))
        return page(
            request,
            "case.html",
            status,
            caller,
            case=case,
            alerts=alerts,
            elsewhere=elsewhere,
            next_step=next_step(case),
            can_decide=case["step"] == "decision" and decision is None,
            can_recover=decision is not None and decision.get("outcome") != "not_confirmed",
            standing=standing if in_force(standing) else None,
            verdicts=VERDICT_NAMES,
            error=error,
            form=form or {},
            **pending_of(request, case, seen=effect_seen(request, standing)),
        )

    def standing_of(subject: object) -> Mapping[str, Any] | None:
        """A subject's standing (freezes in force, suspension) when this worker holds it."""
        view = api.view
        if view is None or not isinstance(subject, Mapping):
            return None
        return view.subject(str(subject.get("kind")), str(subject.get("id")))

    def effect_seen(request: web.Request, standing: Mapping[str, Any] | None) -> bool:
        """Whether the verdict (`?alert=&verdict=`) or the unfreeze (`?lifted=`) a page waits
        for shows in what this worker holds: the alert's status is the verdict, or the
        subject has no freeze or suspension in force."""
        query = request.query
        if "verdict" in query:
            found = api.view.alert(query.get("alert", "")) if api.view is not None else None
            return found is not None and found.get("status") == query["verdict"]
        if "lifted" in query:
            return standing is not None and not in_force(standing)
        return False

    async def case_view(request: web.Request) -> web.Response:
        caller = who(request)
        if not isinstance(caller, Caller):
            return caller
        if runtime is None:
            return refused(request, 503, "Casework is disabled on this worker.", caller)
        return await case_page(request, caller)

    def builder(what: str) -> Callable[[str, Mapping[str, Any], Caller], CaseAction]:
        if what == "advance":
            return lambda case_id, f, c: advance_from_input(
                case_id, c.name, to=_text(f, "to"), note=_text(f, "note"), tz=tz()
            )
        if what == "assign":
            return lambda case_id, f, c: assign_from_input(
                case_id, _text(f, "owner"), c.name, tz=tz()
            )
        if what == "decide":
            return lambda case_id, f, c: decide_from_input(
                case_id,
                _text(f, "outcome"),
                c.name,
                nature=_text(f, "nature"),
                confirmed_amount=_text(f, "confirmed_amount") or 0,
                note=_text(f, "note"),
                tz=tz(),
            )
        return lambda case_id, f, c: recover_from_input(
            case_id,
            _text(f, "money"),
            _text(f, "amount"),
            c.name,
            reference=_text(f, "reference"),
            note=_text(f, "note"),
            tz=tz(),
        )

    async def publish(action: CaseAction, request: web.Request, caller: Caller) -> Reply:
        """What `POST /v1/cases/{case_id}/...` does (the same function): try the action on
        this worker's own copy of the case (a refusal publishes nothing), then publish it
        signed in the person's name."""
        assert runtime is not None
        return await publish_case_action(
            runtime, api, owner_of, action, request.remote, caller.name
        )

    def act(what: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        return form_action(CASE, builder(what), lambda: runtime, publish, case_page)

    # -- people's actions of the sanctions: a verdict on an alert, an unfreeze ------------------
    # built by the command line's builders (`claimstream alerts review`, `claimstream unfreeze`)
    # and published as `POST /v1/alerts/{alert_id}/review` and `POST /v1/unfreeze` publish them

    def review_build(case_id: str, f: Mapping[str, Any], c: Caller) -> PersonAction:
        return verdict_from_input(
            _text(f, "alert_id"), _text(f, "verdict"), c.name, note=_text(f, "note"), tz=tz()
        )

    def unfreeze_build(scope: Callable[[str, Mapping[str, Any]], object]) -> Callable[
        [str, Mapping[str, Any], Caller], PersonAction
    ]:  # fmt: skip
        def build(key: str, f: Mapping[str, Any], c: Caller) -> PersonAction:
            return unfreeze_from_input(
                scope(key, f), _text(f, "reason"), c.name, ground=_text(f, "ground"), tz=tz()
            )

        return build

    async def publish_review(action: Verdict, request: web.Request, caller: Caller) -> Reply:
        """A verdict on an alert of the case this worker holds (when it holds the case), and
        held here (the form is shown for those only; the CLI likewise refuses an alert it
        cannot find); a refusal publishes nothing."""
        assert runtime is not None
        case = runtime.case(request.match_info["case_id"])
        if case is not None and action.alert_id not in (case.get("alert_ids") or ()):
            return Reply(409, {"error": f"alert {action.alert_id} is not one of this case's"})
        if api.view is None or api.view.alert(action.alert_id) is None:
            return Reply(404, {"error": f"no alert {action.alert_id} is held on this worker"})
        return await api.publish(action, request.remote, caller.name)

    async def publish_case_unfreeze(
        action: ManualUnfreeze, request: web.Request, caller: Caller
    ) -> Reply:
        """An unfreeze from a case's page: of the case's subject (when this worker holds the
        case; the API would take any scope from a reviewer, the page offers only this one)."""
        assert runtime is not None
        case = runtime.case(request.match_info["case_id"])
        subject = (case or {}).get("subject") or {}
        scope = action.scope
        if case is not None and (scope.kind, scope.id, scope.drug_code) != (
            subject.get("kind"), subject.get("id"), None
        ):  # fmt: skip
            return Reply(409, {"error": "the scope is not this case's subject"})
        return await api.publish(action, request.remote, caller.name)

    async def publish_person_action(
        action: PersonAction, request: web.Request, caller: Caller
    ) -> Reply:
        return await api.publish(action, request.remote, caller.name)

    def awaited_verdict(action: Verdict) -> dict[str, str]:
        return {"alert": action.alert_id, "verdict": action.verdict}

    def awaited_unfreeze(action: ManualUnfreeze) -> dict[str, str]:
        return {"lifted": "yes"}

    review = form_action(
        CASE, review_build, lambda: runtime, publish_review, case_page, awaited=awaited_verdict
    )
    case_unfreeze = form_action(
        CASE,
        unfreeze_build(lambda _, f: _text(f, "scope")),
        lambda: runtime,
        publish_case_unfreeze,
        case_page,
        awaited=awaited_unfreeze,
    )

    async def institution(request: web.Request) -> web.Response:
        caller = who(request)
        if not isinstance(caller, Caller):
            return caller
        return await institution_page(request, caller)

    async def institution_page(
        request: web.Request,
        caller: Caller,
        *,
        status: int = 200,
        error: str = "",
        form: Mapping[str, Any] | None = None,
    ) -> web.Response:
        id_ = request.match_info["institution_id"]
        view = api.view
        if view is None:
            return refused(request, 503, NO_SANCTIONS, caller)
        found = view.institution(id_)
        if found is None:
            return refused(
                request,
                404,
                f"No sanctions state for institution {id_} is held on this worker.",
                caller,
            )
        doctors = []
        for ranked in list((found.get("rollup") or {}).get("doctors") or ())[:20]:
            standing = view.subject("doctor", str(ranked.get("id")))
            doctors.append({**ranked, "points": (standing or {}).get("points")})
        cases = []
        if runtime is not None:
            cases = [
                r
                for r in runtime.list(limit=1000)
                if r.get("institution_id") == id_ and r["step"] != "closed"
            ]
        return page(
            request, "institution.html", status, caller, inst=found, doctors=doctors,
            cases=cases, in_force=in_force(found), error=error, form=form or {},
            **pending_of(request, {}, seen=effect_seen(request, found)),
        )  # fmt: skip

    institution_unfreeze = form_action(
        "institution",
        unfreeze_build(lambda id_, _: f"institution:{id_}"),
        lambda: api.view,
        publish_person_action,
        institution_page,
        off=NO_SANCTIONS,
        awaited=awaited_unfreeze,
    )

    # -- reports from the public ----------------------------------------------------------------

    def report_runtime() -> ReportsRuntime | None:
        return runtime.reports if runtime is not None else None

    async def reports(request: web.Request) -> web.Response:
        caller = who(request)
        if not isinstance(caller, Caller):
            return caller
        held = report_runtime()
        if held is None:  # the page still says what it is, and why it is empty
            return page(request, "reports.html", caller=caller, rows=[], shown="open",
                        as_of=None, limit=QUEUE_LIMIT, disabled=True)  # fmt: skip
        shown = request.query.get("show", "open")
        if shown not in ("open", "overdue", "all"):
            shown = "open"
        rows = held.list(
            overdue_only=True if shown == "overdue" else None,
            open_only=shown == "open",
            limit=QUEUE_LIMIT,
        )
        return page(
            request, "reports.html", caller=caller, rows=rows, shown=shown, as_of=held.now(),
            limit=QUEUE_LIMIT,
        )  # fmt: skip

    async def report_page(
        request: web.Request,
        caller: Caller,
        *,
        status: int = 200,
        error: str = "",
        form: Mapping[str, Any] | None = None,
    ) -> web.Response:
        held = report_runtime()
        assert held is not None
        report_id = request.match_info["report_id"]
        contact = grants(caller.roles, CONTACT)
        found_status, report = await read_held(
            request, REPORT, report_id, lambda: held.report(report_id, contact=contact)
        )
        if report is None:
            return not_held(request, caller, REPORT, report_id, found_status)
        subject = report.get("subject")
        return page(
            request, "report.html", status, caller, report=report, error=error, form=form or {},
            subject_text=f"{subject['kind']}:{subject['id']}" if subject else "",
            decided=report["status"] in ("accepted", "rejected"), **pending_of(request, report),
        )  # fmt: skip

    async def report_view(request: web.Request) -> web.Response:
        caller = who(request)
        if not isinstance(caller, Caller):
            return caller
        if report_runtime() is None:
            return refused(request, 503, "Casework is disabled on this worker.", caller)
        return await report_page(request, caller)

    def report_builder(what: str) -> Callable[[str, Mapping[str, Any], Caller], ReportAction]:
        def build(report_id: str, f: Mapping[str, Any], c: Caller) -> ReportAction:
            if what == "acknowledge":
                return acknowledge_report(report_id, c.name, note=_text(f, "note"), tz=tz())
            if what == "accept":
                return accept_report(
                    report_id, c.name, case_id=_text(f, "case_id"), subject=_text(f, "subject"),
                    told_reporter=f.get("told_reporter") == "yes", note=_text(f, "note"), tz=tz(),
                )  # fmt: skip
            if what == "reject":
                return reject_report(
                    report_id, _text(f, "reason"), c.name,
                    told_reporter=f.get("told_reporter") == "yes", tz=tz(),
                )  # fmt: skip
            if what == "feedback":
                return report_feedback(report_id, c.name, note=_text(f, "note"), tz=tz())
            return reward_report(
                report_id, _text(f, "amount"), c.name, reference=_text(f, "reference"), tz=tz()
            )

        return build

    async def publish_report(action: ReportAction, request: web.Request, caller: Caller) -> Reply:
        """What `POST /v1/reports/{report_id}/...` does (the same function)."""
        held = report_runtime()
        assert held is not None
        return await publish_report_action(
            held, runtime, api, owner_of, action, request.remote, caller.name
        )

    def report_act(what: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        return form_action(
            REPORT, report_builder(what), report_runtime, publish_report, report_page
        )

    stylesheet = (
        resources.files("claimstream.stream.http.console")
        .joinpath("static/console.css")
        .read_bytes()
    )

    async def css(request: web.Request) -> web.Response:
        return web.Response(
            body=stylesheet,
            content_type="text/css",
            headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    async def home(request: web.Request) -> web.Response:
        return web.Response(status=308, headers={"Location": f"{PREFIX}/"})

    return [
        web.get(PREFIX, home),
        web.get(f"{PREFIX}/", queue),
        web.get(f"{PREFIX}/login", login_form),
        web.post(f"{PREFIX}/login", login),
        web.post(f"{PREFIX}/logout", logout),
        web.get(f"{PREFIX}/cases/{{case_id}}", case_view),
        *(
            web.post(f"{PREFIX}/cases/{{case_id}}/{what}", act(what))
            for what in ("advance", "assign", "decide", "recover")
        ),
        web.post(f"{PREFIX}/cases/{{case_id}}/review", review),
        web.post(f"{PREFIX}/cases/{{case_id}}/unfreeze", case_unfreeze),
        web.get(f"{PREFIX}/institutions/{{institution_id}}", institution),
        web.post(f"{PREFIX}/institutions/{{institution_id}}/unfreeze", institution_unfreeze),
        web.get(f"{PREFIX}/reports", reports),
        web.get(f"{PREFIX}/reports/{{report_id}}", report_view),
        *(
            web.post(f"{PREFIX}/reports/{{report_id}}/{what}", report_act(what))
            for what in ("acknowledge", "accept", "reject", "feedback", "reward")
        ),
        web.get(f"{PREFIX}/static/console.css", css),
    ]
