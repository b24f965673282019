"""The worker's query and action API (`claimstream.stream.http.api` and `.routes`) over HTTP,
without a broker or a faust app.

Each test serves the routes the worker adds to its web server (`api_routes`, `worker_routes`,
with the `json_errors` middleware) on a plain aiohttp application through aiohttp's test server
on a free loopback port; the sanctions state is a small fake `SanctionsView`, the publisher a
fake that keeps what it was given and the owner lookup a plain function, so every answer and
every published record is checked. The routes sit behind the access control the worker adds
(`claimstream.stream.http.access`): reads here present an admin token, writes the deprecated
single token (whose actions take `by` from the body) unless a test says otherwise; the roles
themselves are tested in `test_access.py`. The OpenAPI document (`stream/http/openapi.json`) is
checked against the routes the worker's real app registers and the answers it gives.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import jsonschema
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, unused_port
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from claimstream.freezes.memory import MemoryRegistry
from claimstream.kafka.topology import load_topology
from claimstream.sanctions.actions import ManualUnfreeze, Verdict
from claimstream.sanctions.codec import action_from_dict
from claimstream.sanctions.signatures import ActionSigner, ActionVerifier, Keyring, TrustedKey
from claimstream.stream.app import create_app
from claimstream.stream.http import api as http_api
from claimstream.stream.http.access import (
    CONSOLE_PREFIX,
    Access,
    access_control,
    parse_tokens,
    token_line,
)
from claimstream.stream.http.api import Api, ApiSettings, openapi_document
from claimstream.stream.http.errors import json_errors
from claimstream.stream.http.routes import FORWARDED, WORKER, Forwarder, api_routes
from claimstream.stream.http.views import worker_routes
from claimstream.stream.settings import Settings

TOKEN = "s3cret-token"  # the deprecated single token (CLAIMSTREAM_API_TOKEN): role reviewer
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: a token per role, named after it (`settlement`, `supervisor`, `reviewer`, `admin`)
ROLE_TOKENS = {
    role: f"cs_{role}-token" for role in ("settlement", "supervisor", "reviewer", "admin")
}
TOKEN_LINES = "\n".join(token_line(role, role, token) for role, token in ROLE_TOKENS.items())
#: what reads present unless a test says otherwise
READ_AUTH = {"Authorization": f"Bearer {ROLE_TOKENS['admin']}"}
#: the key the served APIs sign actions with, and a verifier that trusts it
API_KEY = ActionSigner.generate()
VERIFY = ActionVerifier(lambda: Keyring.of([TrustedKey("api", API_KEY.public_key, True)]))


# --- fakes ---------------------------------------------------------------------------------


ALERT = {
    "schema": "alert.v1",
    "alert_id": "alt-1",
    "rule": "readmission_24h",
    "rule_version": 1,
    "severity": "high",
    "subject": {"kind": "patient", "id": "P1"},
    "patient_id": "P1",
    "institution_id": "H1",
    "doctor_id": "D1",
    "department_id": "K1",
    "event_ids": ["e1", "e2"],
    "occurred_at": "2026-03-01T09:00:00+08:00",
    "detected_at": "2026-03-01T09:00:01+08:00",
    "message": "readmitted within 24 h",
    "details": {},
}


@dataclass
class FakeSanctions:
    """A `SanctionsView` over plain dicts: subject key -> standing / alerts."""

    standings: dict[str, dict[str, Any]] = field(default_factory=dict)
    held: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: the alert index: alert id -> alert.v1 plus status and remediated
    indexed: dict[str, dict[str, Any]] = field(default_factory=dict)

    def key_of(self, kind: str, id_: str) -> str:
        return f"{kind}:{id_}"

    def subject(self, kind: str, id_: str) -> dict[str, Any] | None:
        return self.standings.get(self.key_of(kind, id_))

    def alerts(self, kind: str, id_: str, status: str | None = None) -> list[dict[str, Any]] | None:
        key = self.key_of(kind, id_)
        if key not in self.standings:
            return None
        return [a for a in self.held.get(key, []) if status is None or a["status"] == status]

    def institution(self, id_: str) -> dict[str, Any] | None:
        key = self.key_of("institution", id_)
        if key not in self.standings:
            return None
        standing = self.standings[key]
        return {
            "institution_id": id_,
            "grade": standing.get("grade"),
            "level": standing["level"],
            "frozen_until": None,
            "suspension": None,
            "freezes": [],
            "open_alerts": [a for a in self.held.get(key, []) if a["status"] == "open"],
            "rollup": {
                "institution_id": id_,
                "alerts": 1,
                "amount": 120.0,
                "departments": [],
                "doctors": [],
            },
            "as_of": "2026-03-01T09:00:00+08:00",
        }

    def alert(self, alert_id: str) -> dict[str, Any] | None:
        return self.indexed.get(alert_id)


def fake_sanctions() -> FakeSanctions:
    standing = {
        "subject": {"kind": "institution", "id": "H1"},
        "level": "warned",
        "frozen_until": None,
        "suspension": None,
        "violations": 1,
        "grade": {"grade": "B", "score": 80.0},
        "freezes": [],
        "as_of": "2026-03-01T09:00:00+08:00",
    }
    return FakeSanctions(
        standings={
            "institution:H1": standing,
            "patient:P1": {**standing, "subject": {"kind": "patient", "id": "P1"}},
        },
        held={
            "institution:H1": [{**ALERT, "status": "open"}],
            "patient:P1": [
                {**ALERT, "status": "open"},
                {**ALERT, "alert_id": "alt-0", "status": "false_positive"},
            ],
        },
        indexed={"alt-1": {**ALERT, "status": "confirmed", "remediated": False}},
    )


class FakePublisher:
    """Keeps what `send_and_wait` was given; `fail` makes it raise, `hang` never answer."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, int | None]] = []
        self.fail: Exception | None = None
        self.hang = False

    async def send_and_wait(self, records: Any) -> None:
        if self.fail is not None:
            raise self.fail
        if self.hang:  # like a producer whose broker went away: never acknowledged
            await asyncio.Event().wait()
        self.sent.extend(records)


# --- fixtures ------------------------------------------------------------------------------

TOPOLOGY = load_topology()


def api_settings(**changes: Any) -> ApiSettings:
    """What the worker's API reads, as `create_app` gives it (repo topics.toml)."""
    values: dict[str, Any] = {
        "sanctions_enabled": False,
        "actions_partitions": TOPOLOGY.topic("claimstream.actions.v1").partitions,
        "partitions": {
            http_api.SUBJECT: TOPOLOGY.topic(http_api.SUBJECT_TOPIC).partitions,
            http_api.ALERT: TOPOLOGY.topic(http_api.ALERT_TOPIC).partitions,
        },
    }
    return ApiSettings(**(values | changes))


@dataclass
class Served:
    client: TestClient[Any, Any]
    publisher: FakePublisher
    #: the URL this server answers on, which it names in X-Claimstream-Worker
    url: str

    async def get(self, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
        kwargs["headers"] = {**READ_AUTH, **kwargs.get("headers", {})}
        async with self.client.get(path, **kwargs) as response:
            return response.status, await response.json(), response.headers

    async def post(self, path: str, body: Any, **kwargs: Any) -> tuple[int, Any, Any]:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
        async with self.client.post(path, data=data, headers=headers, **kwargs) as response:
            return response.status, await response.json(), response.headers


Serve = Callable[..., Any]


@pytest.fixture
def owner_of() -> Iterator[dict[str, Any]]:
    """Where each served API believes keys live: {"owner": url|None, "here": bool}."""
    where: dict[str, Any] = {"owner": None, "here": True}
    yield where


@pytest.fixture
async def serve(owner_of: dict[str, Any]) -> AsyncIterator[Serve]:
    """`await serve(sanctions=..., **api_settings)` -> a `Served` API; all stopped at the end."""
    started: list[Served] = []
    session = aiohttp.ClientSession()  # the forwarding client

    async def start(
        sanctions: Any = "fake",
        token: str | None = TOKEN,
        tokens: str | None = TOKEN_LINES,
        access: Access | None = None,
        signer: ActionSigner | None = API_KEY,
        **changes: Any,
    ) -> Served:
        view = fake_sanctions() if sanctions == "fake" else sanctions
        publisher = FakePublisher()
        tz = Settings().detection.tz
        api = Api(view, publisher.send_and_wait, api_settings(**changes), lambda: tz, signer)
        if access is None:
            inline = parse_tokens(tokens.encode(), "test") if tokens else None
            access = Access(None, inline, token)
        port = unused_port()
        url = f"http://127.0.0.1:{port}"
        app = web.Application(middlewares=[json_errors, access_control(access)])
        app.add_routes(
            [
                *worker_routes(  # the worker's other routes, as create_app adds them
                    registry=MemoryRegistry(), status=dict, exposition=lambda: b""
                ),
                *api_routes(
                    api,
                    worker_url=url,
                    owner_of=lambda space, key: (owner_of["owner"], owner_of["here"]),
                    forward=Forwarder(lambda: session, url),
                ),
            ]
        )
        client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1", port=port))
        await client.start_server()
        served = Served(client, publisher, url)
        started.append(served)
        return served

    try:
        yield start
    finally:
        for served in started:
            await served.client.close()
        await session.close()


# --- reads ---------------------------------------------------------------------------------


async def test_subject_standing(serve: Serve) -> None:
    api = await serve()
    status, body, _ = await api.get("/subjects/institution/H1")
    assert status == 200
    assert body["level"] == "warned"
    assert body["grade"] == {"grade": "B", "score": 80.0}


async def test_unknown_subject_is_404_with_its_partition(serve: Serve) -> None:
    api = await serve()
    status, body, _ = await api.get("/subjects/doctor/NOPE")
    assert status == 404
    assert body["key"] == "doctor:NOPE"
    assert "no sanctions state for doctor:NOPE" in body["error"]
    assert isinstance(body["partition"], int)


async def test_bad_kind_is_400(serve: Serve) -> None:
    api = await serve()
    status, body, _ = await api.get("/subjects/hospital/H1")
    assert status == 400
    assert "kind must be one of" in body["error"]
    status, body, _ = await api.get("/subjects/hospital/H1/alerts")
    assert status == 400


async def test_alerts_by_subject_and_status_filter(serve: Serve) -> None:
    api = await serve()
    status, body, _ = await api.get("/subjects/patient/P1/alerts")
    assert status == 200
    assert [a["alert_id"] for a in body["alerts"]] == ["alt-1", "alt-0"]
    status, body, _ = await api.get("/subjects/patient/P1/alerts", params={"status": "open"})
    assert [a["alert_id"] for a in body["alerts"]] == ["alt-1"]
    assert body["status"] == "open"
    status, body, _ = await api.get("/subjects/patient/P1/alerts", params={"status": "closed"})
    assert status == 400
    assert "status must be one of open, confirmed, false_positive" in body["error"]
    status, _, _ = await api.get("/subjects/patient/P404/alerts")
    assert status == 404


async def test_institution(serve: Serve) -> None:
    api = await serve()
    status, body, _ = await api.get("/institutions/H1")
    assert status == 200
    assert body["grade"]["grade"] == "B"
    assert [a["alert_id"] for a in body["open_alerts"]] == ["alt-1"]
    assert body["rollup"]["institution_id"] == "H1"
    status, body, _ = await api.get("/institutions/H404")
    assert status == 404
    assert body["key"] == "institution:H404"


async def test_reads_answer_503_while_sanctions_are_off(serve: Serve) -> None:
    api = await serve(sanctions=None)
    for path in ("/subjects/institution/H1", "/subjects/patient/P1/alerts", "/institutions/H1"):
        status, body, headers = await api.get(path)
        assert status == 503, path
        assert "sanctions are disabled" in body["error"]
        assert headers["Retry-After"] == "5"


async def test_reads_503_say_not_ready_when_sanctions_are_on(serve: Serve) -> None:
    api = await serve(sanctions=None, sanctions_enabled=True)
    status, body, _ = await api.get("/subjects/institution/H1")
    assert status == 503
    assert "not ready" in body["error"]


async def test_an_alert_is_answered_with_its_review_status(serve: Serve) -> None:
    api = await serve()
    status, body, _ = await api.get("/alerts/alt-1")
    assert status == 200
    assert body["alert_id"] == "alt-1"
    assert body["status"] == "confirmed"
    assert body["remediated"] is False


async def test_an_unknown_alert_is_404_with_its_partition(serve: Serve) -> None:
    api = await serve()
    status, body, _ = await api.get("/alerts/alt-404")
    assert status == 404
    assert body["key"] == "alt-404"
    assert body["topic"] == "claimstream.repartition.alert"
    assert isinstance(body["partition"], int)


async def test_an_alert_read_answers_503_while_sanctions_are_off(serve: Serve) -> None:
    api = await serve(sanctions=None)
    status, body, headers = await api.get("/alerts/alt-1")
    assert status == 503
    assert "sanctions are disabled" in body["error"]
    assert headers["Retry-After"] == "5"


# --- key routing ---------------------------------------------------------------------------


async def test_a_read_is_forwarded_once_to_the_owner(
    serve: Serve, owner_of: dict[str, Any]
) -> None:
    owner = await serve()  # holds institution:H1
    asked = await serve(sanctions=FakeSanctions())  # holds nothing
    owner_of.update(owner=str(owner.client.make_url("/")), here=False)
    status, body, headers = await asked.get("/subjects/institution/H1")
    assert status == 200
    assert body["subject"] == {"kind": "institution", "id": "H1"}
    assert headers[WORKER] == owner.url  # who answered
    assert headers[FORWARDED] == asked.url
    status, body, _ = await asked.get("/subjects/patient/P1/alerts", params={"status": "open"})
    assert status == 200
    assert [a["alert_id"] for a in body["alerts"]] == ["alt-1"]  # query string forwarded
    status, body, _ = await asked.get("/institutions/H404")
    assert status == 404  # the owner's own 404 comes back
    assert body["key"] == "institution:H404"


async def test_an_alert_read_is_forwarded_once_to_the_owner(
    serve: Serve, owner_of: dict[str, Any]
) -> None:
    owner = await serve()  # holds alt-1
    asked = await serve(sanctions=FakeSanctions())  # holds nothing
    owner_of.update(owner=owner.url, here=False)
    status, body, headers = await asked.get("/alerts/alt-1")
    assert status == 200
    assert body["alert_id"] == "alt-1"
    assert headers[WORKER] == owner.url
    assert headers[FORWARDED] == asked.url


async def test_an_alert_whose_owner_is_unknown_is_not_on_this_worker(
    serve: Serve, owner_of: dict[str, Any]
) -> None:
    api = await serve(sanctions=FakeSanctions())
    owner_of.update(owner=None, here=False)
    status, body, _ = await api.get("/alerts/alt-1")
    assert status == 404
    assert "not on this worker" in body["error"]
    assert body["topic"] == "claimstream.repartition.alert"


async def test_a_forwarded_read_is_never_forwarded_again(
    serve: Serve, owner_of: dict[str, Any]
) -> None:
    asked = await serve(sanctions=FakeSanctions())
    owner_of.update(owner="http://127.0.0.1:9", here=False)
    status, body, _ = await asked.get(
        "/subjects/institution/H1", headers={FORWARDED: "http://127.0.0.1:1"}
    )
    assert status == 404
    assert "no sanctions state for institution:H1" in body["error"]


async def test_unknown_owner_answers_what_is_held_else_not_on_this_worker(
    serve: Serve, owner_of: dict[str, Any]
) -> None:
    api = await serve()
    owner_of.update(owner=None, here=False)
    status, _, _ = await api.get("/subjects/institution/H1")
    assert status == 200
    status, body, _ = await api.get("/subjects/institution/H9")
    assert status == 404
    assert "not on this worker" in body["error"]
    assert body["owner"] is None
    assert body["topic"] == "claimstream.repartition.subject"


async def test_an_owner_that_does_not_answer_is_a_502(
    serve: Serve, owner_of: dict[str, Any]
) -> None:
    asked = await serve(sanctions=FakeSanctions())
    gone = await serve()
    url = str(gone.client.make_url("/"))
    await gone.client.close()
    owner_of.update(owner=url, here=False)
    status, body, _ = await asked.get("/subjects/institution/H1")
    assert status == 502
    assert body["owner"] == url
    assert "did not answer" in body["error"]


# --- writes --------------------------------------------------------------------------------

REVIEW = {"verdict": "confirmed", "by": "li.na", "note": "records checked on site"}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "needs Authorization: Bearer"),
        ({"Authorization": "Bearer wrong"}, "not valid"),
        ({"Authorization": f"Basic {TOKEN}"}, "needs Authorization: Bearer"),
        ({"Authorization": "Bearer "}, "needs Authorization: Bearer"),
    ],
)
async def test_writes_without_the_right_token_are_401(
    serve: Serve, headers: dict[str, str], message: str
) -> None:
    api = await serve()
    for path, body in (
        ("/alerts/alt-1/review", REVIEW),
        ("/unfreeze", {"scope": "institution:H1", "reason": "r", "by": "x"}),
    ):
        status, answer, response_headers = await api.post(path, body, headers=headers)
        assert status == 401, path
        assert message in answer["error"]
        assert response_headers["WWW-Authenticate"].startswith('Bearer realm="claimstream"')
    assert api.publisher.sent == []


async def test_writes_are_refused_when_no_token_is_configured(serve: Serve) -> None:
    api = await serve(token=None, tokens=None)
    status, body, headers = await api.post("/alerts/alt-1/review", REVIEW, headers=AUTH)
    assert status == 401
    assert "CLAIMSTREAM_API_TOKEN are unset" in body["error"]
    assert "WWW-Authenticate" in headers
    assert api.publisher.sent == []


async def test_review_publishes_the_verdict_and_answers_202(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    api = await serve()
    body = {**REVIEW, "at": "2026-03-01T10:00:00+08:00"}
    with caplog.at_level(logging.WARNING, logger="claimstream.stream.http.api"):
        status, answer, _ = await api.post("/alerts/alt-1/review", body, headers=AUTH)
    assert status == 202, answer
    expected = Verdict(
        "alt-1", "confirmed", "li.na", "2026-03-01T10:00:00+08:00", "records checked on site"
    )
    assert answer["action_id"] == expected.action_id
    assert answer["topic"] == "claimstream.actions.v1"
    assert answer["key"] == "alt-1"
    [(topic, key, value, partition)] = api.publisher.sent
    assert (topic, key, partition) == ("claimstream.actions.v1", b"alt-1", None)
    assert value is not None
    record = orjson.loads(value)
    assert record == answer["record"]
    assert action_from_dict(record) == expected
    assert record["by"] == "li.na" and record["note"] == "records checked on site"
    assert VERIFY.check(record) == "api"  # signed with the worker's key
    logged = caplog.text
    assert expected.action_id in logged and "li.na" in logged and "CLAIMSTREAM_API_TOKEN" in logged
    assert "records checked" not in logged  # free text may quote an id: the record has it


async def test_review_defaults_at_to_now_in_the_configured_zone(serve: Serve) -> None:
    api = await serve()
    status, answer, _ = await api.post("/alerts/alt-1/review", REVIEW, headers=AUTH)
    assert status == 202
    assert answer["record"]["at"].endswith("+08:00")  # Asia/Shanghai, the default zone


async def test_unfreeze_publishes_a_manual_unfreeze(serve: Serve) -> None:
    api = await serve()
    body = {
        "scope": "institution:H1:X01",
        "reason": "appeal 2026-041 upheld",
        "by": "wang.fang",
        "ground": "appeal",
        "at": "2026-03-02T08:00:00Z",
    }
    status, answer, _ = await api.post("/unfreeze", body, headers=AUTH)
    assert status == 202, answer
    [(_, key, value, _)] = api.publisher.sent
    assert key == b"institution:H1:X01"
    action = action_from_dict(orjson.loads(value or b""))
    assert isinstance(action, ManualUnfreeze)
    assert action.scope.key() == "institution:H1:X01"
    assert action.ground == "appeal"
    assert action.at == "2026-03-02T08:00:00+00:00"
    assert answer["action_id"] == action.action_id

    scope_object = {**body, "scope": {"kind": "doctor", "id": "D7"}, "ground": None}
    status, answer, _ = await api.post("/unfreeze", scope_object, headers=AUTH)
    assert status == 202, answer
    assert answer["record"]["scope"] == {"kind": "doctor", "id": "D7"}
    assert answer["record"]["ground"] == "reviewer"


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/alerts/alt-1/review", {"verdict": "maybe", "by": "x"}, "verdict must be one of"),
        ("/alerts/alt-1/review", {"verdict": "confirmed"}, "by must be a non-empty string"),
        ("/alerts/alt-1/review", {"verdict": "confirmed", "by": "  "}, "by must be a non-empty"),
        (
            "/alerts/alt-1/review",
            {**REVIEW, "at": "2026-03-01T10:00:00"},
            "at needs a UTC offset",
        ),
        ("/alerts/alt-1/review", {**REVIEW, "at": "yesterday"}, "RFC 3339"),
        ("/alerts/alt-1/review", {**REVIEW, "at": 17}, "at must be an RFC 3339 string"),
        ("/alerts/alt-1/review", {**REVIEW, "note": 5}, "note must be a string"),
        ("/alerts/alt-1/review", ["confirmed"], "must be a JSON object"),
        ("/unfreeze", {"scope": "hospital:H1", "reason": "r", "by": "x"}, "scope kind"),
        ("/unfreeze", {"scope": "institution", "reason": "r", "by": "x"}, "KIND:ID"),
        ("/unfreeze", {"scope": "institution:", "reason": "r", "by": "x"}, "non-empty id"),
        ("/unfreeze", {"scope": "institution:H1", "by": "x"}, "reason must be a non-empty"),
        ("/unfreeze", {"scope": "institution:H1", "reason": "", "by": "x"}, "reason must be"),
        (
            "/unfreeze",
            {"scope": "institution:H1", "reason": "r", "by": "x", "ground": "mercy"},
            "ground must be one of appeal, reviewer",
        ),
        ("/unfreeze", {"reason": "r", "by": "x"}, "scope must be a string"),
    ],
)
async def test_invalid_writes_are_400_and_publish_nothing(
    serve: Serve, path: str, body: Any, message: str
) -> None:
    api = await serve()
    status, answer, _ = await api.post(path, body, headers=AUTH)
    assert status == 400, answer
    assert message in answer["error"]
    assert api.publisher.sent == []


async def test_a_body_that_is_not_json_is_400(serve: Serve) -> None:
    api = await serve()
    status, answer, _ = await api.post("/unfreeze", b"{not json", headers=AUTH)
    assert status == 400
    assert "must be JSON" in answer["error"]


async def test_a_publisher_failure_is_503_not_202(serve: Serve) -> None:
    api = await serve()
    api.publisher.fail = RuntimeError("broker gone")
    status, answer, _ = await api.post("/alerts/alt-1/review", REVIEW, headers=AUTH)
    assert status == 503
    assert (
        "could not publish to claimstream.actions.v1: RuntimeError: broker gone" in answer["error"]
    )
    assert "repeating the same call is safe" in answer["error"]
    assert answer["action_id"].startswith("rev-")


async def test_a_publisher_that_hangs_is_503_after_the_timeout(serve: Serve) -> None:
    api = await serve(publish_timeout=0.2)
    api.publisher.hang = True
    status, answer, _ = await api.post("/alerts/alt-1/review", REVIEW, headers=AUTH)
    assert status == 503
    assert "TimeoutError" in answer["error"]


async def test_writes_work_while_sanctions_are_off(serve: Serve) -> None:
    """Publishing an action needs no sanctions state: any worker accepts it."""
    api = await serve(sanctions=None)
    status, _, _ = await api.post("/alerts/alt-1/review", REVIEW, headers=AUTH)
    assert status == 202
    assert len(api.publisher.sent) == 1


async def test_openapi_document_is_served(serve: Serve) -> None:
    api = await serve()
    status, body, _ = await api.get("/openapi.json")
    assert status == 200
    assert body["openapi"].startswith("3.1")
    assert "/unfreeze" in body["paths"]


# --- the OpenAPI document ------------------------------------------------------------------

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}
DOC_URI = "urn:claimstream:openapi"


def registered_routes() -> dict[str, set[str]]:
    """path -> methods of every route the worker's app adds (HEAD and OPTIONS aside), but the
    console's HTML pages (`/console/...`, described in docs/console.md, not an API)."""
    app = create_app(Settings(api_token="t"), registry=MemoryRegistry(), sinks=[])
    routes: dict[str, set[str]] = {}
    for route in app.web.web_app.router.routes():  # type: ignore[attr-defined]
        assert route.resource is not None
        if route.resource.canonical.startswith(CONSOLE_PREFIX):
            continue
        methods = routes.setdefault(route.resource.canonical, set())
        methods |= {route.method.lower()} & HTTP_METHODS
    return routes


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()
    assert document["openapi"].startswith("3.1.")
    validate(document)


def test_every_registered_route_is_documented_and_vice_versa() -> None:
    routes = registered_routes()
    documented = {
        path: {m for m in operations if m in HTTP_METHODS}
        for path, operations in openapi_document()["paths"].items()
    }
    assert routes == documented
    for path in ("/freezes/{kind}/{id}", "/subjects/{kind}/{id}", "/institutions/{id}",
                 "/subjects/{kind}/{id}/alerts", "/alerts/{alert_id}/review", "/unfreeze",
                 "/status", "/metrics", "/openapi.json", "/alerts/{alert_id}", "/health",
                 "/ready", "/v1/check", "/v1/check/{check_id}/feedback"):  # fmt: skip
        assert path in routes


def test_the_document_names_the_role_of_every_operation_as_the_policy_does() -> None:
    from claimstream.stream.http.access import required_role

    document = openapi_document()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            role = required_role(path, method.upper())
            if role is None:
                assert operation["security"] == [], f"{method} {path} is open"
                continue
            assert operation["security"] == [{"bearer": [role]}], f"{method} {path}"
            assert {"401", "403"} <= set(operation["responses"]), f"{method} {path}"


def schema_check(name: str, value: Any) -> None:
    registry: Registry[Any] = Registry().with_resource(
        DOC_URI, Resource.from_contents(openapi_document(), default_specification=DRAFT202012)
    )
    validator = jsonschema.Draft202012Validator(
        {"$ref": f"{DOC_URI}#/components/schemas/{name}"}, registry=registry
    )
    validator.validate(value)


def test_examples_in_the_document_match_their_schemas() -> None:
    for operations in openapi_document()["paths"].values():
        for operation in operations.values():
            content = operation.get("requestBody", {}).get("content", {})
            for media in content.values():
                if "example" in media:
                    name = media["schema"]["$ref"].rsplit("/", 1)[1]
                    schema_check(name, media["example"])
    schema_check("Alert", {**ALERT, "status": "open"})


async def test_answers_match_the_documented_schemas(serve: Serve) -> None:
    api = await serve()
    checks = [
        ("/subjects/institution/H1", 200, "Standing"),
        ("/subjects/patient/P1/alerts", 200, "AlertList"),
        ("/institutions/H1", 200, "Institution"),
        ("/subjects/doctor/D404", 404, "NotFound"),
        ("/subjects/hospital/H1", 400, "Error"),
        ("/freezes/institution/H1", 200, "FreezeStatus"),
        ("/freezes", 200, "FreezeList"),
    ]
    for path, expected, name in checks:
        status, body, _ = await api.get(path)
        assert status == expected, path
        schema_check(name, body)
    status, body, _ = await api.post(
        "/alerts/alt-1/review",
        {"verdict": "false_positive", "by": "li.na"},
        headers={"Authorization": "Bearer s3cret-token"},
    )
    assert status == 202
    schema_check("Accepted", body)
    schema_check("Action", body["record"])
    status, body, _ = await api.post("/unfreeze", {"scope": "doctor:D1"})
    assert status == 401
    schema_check("Error", body)


async def test_an_alert_and_an_unknown_alert_match_the_documented_schemas(serve: Serve) -> None:
    api = await serve()
    status, body, _ = await api.get("/alerts/alt-1")
    assert status == 200
    schema_check("Alert", body)
    status, body, _ = await api.get("/alerts/alt-404")
    assert status == 404
    schema_check("NotFound", body)


async def test_documented_answers_while_sanctions_are_off(serve: Serve) -> None:
    api = await serve(sanctions=None)
    status, body, _ = await api.get("/institutions/H1")
    assert status == 503
    schema_check("Error", body)


def test_fake_sanctions_has_the_view_protocol() -> None:
    from claimstream.stream.http.sanctions_view import SanctionsView

    view: SanctionsView = FakeSanctions()
    assert view.subject("institution", "H1") is None
    assert fake_sanctions().subject("institution", "H1") is not None


# --- writes in the caller's name, signed --------------------------------------------------------


def as_role(role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {ROLE_TOKENS[role]}"}


async def test_a_named_tokens_action_is_made_in_its_name(serve: Serve) -> None:
    api = await serve()
    body = {"verdict": "confirmed", "note": "checked"}
    status, answer, _ = await api.post("/alerts/alt-1/review", body, headers=as_role("reviewer"))
    assert status == 202, answer
    assert answer["record"]["by"] == "reviewer"
    status, answer, _ = await api.post(
        "/alerts/alt-1/review", {**body, "by": "reviewer"}, headers=as_role("reviewer")
    )
    assert status == 202, answer


async def test_a_write_in_someone_elses_name_is_403_and_publishes_nothing(serve: Serve) -> None:
    api = await serve()
    status, answer, _ = await api.post(
        "/unfreeze",
        {"scope": "institution:H1", "reason": "r", "by": "wang.fang"},
        headers=as_role("reviewer"),
    )
    assert status == 403
    assert "by must be the caller's own name (reviewer)" in answer["error"]
    assert api.publisher.sent == []


async def test_a_worker_without_a_signing_key_refuses_writes(serve: Serve) -> None:
    api = await serve(signer=None)
    status, answer, _ = await api.post("/alerts/alt-1/review", REVIEW, headers=AUTH)
    assert status == 503
    assert "CLAIMSTREAM_ACTION_SIGNING_KEY_FILE is unset" in answer["error"]
    assert api.publisher.sent == []


async def test_in_the_development_mode_a_worker_without_a_key_publishes_unsigned(
    serve: Serve,
) -> None:
    api = await serve(signer=None, accept_unsigned=True)
    status, answer, _ = await api.post("/alerts/alt-1/review", REVIEW, headers=AUTH)
    assert status == 202
    assert "signature" not in answer["record"]


async def test_a_forwarded_read_is_checked_again_by_the_owner(
    serve: Serve, owner_of: dict[str, Any]
) -> None:
    owner = await serve(tokens=None)  # knows none of the role tokens
    asked = await serve(sanctions=FakeSanctions())
    owner_of.update(owner=owner.url, here=False)
    status, _, _ = await asked.get("/subjects/institution/H1")
    assert status == 401  # the owner's own refusal, relayed
