"""The worker's query and action API (`claimstream.stream.http.api`) over HTTP, without a broker.

Each test serves the views `install_views` and `install_api` add to a faust app through
aiohttp's test server on a free loopback port; the sanctions state is a small fake
`SanctionsView` and the publisher a fake that keeps what it was given, so every answer and every
published record is checked. The OpenAPI document (`stream/http/openapi.json`)
is checked against the routes the worker's app registers and the answers it gives.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import faust
import jsonschema
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from claimstream.freezes.memory import MemoryRegistry
from claimstream.sanctions.actions import ManualUnfreeze, Verdict
from claimstream.sanctions.codec import action_from_dict
from claimstream.stream.app import Runtime, create_app
from claimstream.stream.http import api as api_module
from claimstream.stream.http.api import FORWARDED, WORKER, install_api, openapi_document
from claimstream.stream.http.views import install_views
from claimstream.stream.settings import Settings

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


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
    table: Any = field(default_factory=lambda: SimpleNamespace(name="state-subject"))

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


def base_runtime(**changes: Any) -> Runtime:
    """The `Runtime` of a real `create_app` (sanctions wiring off, no broker touched)."""
    settings = Settings(
        sanctions_enabled=False, audit_enabled=False, control_enabled=False, api_token=TOKEN
    ).replace(**changes)
    app = create_app(settings, registry=MemoryRegistry(), sinks=[])
    runtime: Runtime = app.claimstream  # type: ignore[attr-defined]
    return runtime


@dataclass
class Served:
    client: TestClient[Any, Any]
    runtime: Runtime
    publisher: FakePublisher
    app: faust.App

    async def get(self, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
        async with self.client.get(path, **kwargs) as response:
            return response.status, await response.json(), response.headers

    async def post(self, path: str, body: Any, **kwargs: Any) -> tuple[int, Any, Any]:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
        async with self.client.post(path, data=data, headers=headers, **kwargs) as response:
            return response.status, await response.json(), response.headers


Serve = Callable[..., Any]


@pytest.fixture
def owner_of(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Where each served app believes keys live: {"owner": url|None, "here": bool}."""
    where: dict[str, Any] = {"owner": None, "here": True}
    monkeypatch.setattr(
        api_module,
        "_router_owner",
        lambda app, runtime: lambda key: (where["owner"], where["here"]),
    )
    yield where


@pytest.fixture
async def serve(owner_of: dict[str, Any]) -> AsyncIterator[Serve]:
    """`await serve(sanctions=..., **settings)` -> a `Served` API; all stopped at the end."""
    started: list[Served] = []

    async def start(sanctions: Any = "fake", **changes: Any) -> Served:
        runtime = base_runtime(**changes)
        runtime.sanctions = fake_sanctions() if sanctions == "fake" else sanctions
        publisher = FakePublisher()
        # distinct canonical URLs (nothing binds them: the test server serves the views)
        app = faust.App(
            f"api-test-{len(started)}", autodiscover=False, web_port=16000 + len(started)
        )
        install_views(app, runtime)  # the worker's other views, as create_app installs them
        install_api(app, runtime, publisher)  # type: ignore[arg-type]
        client: TestClient[Any, Any] = TestClient(TestServer(app.web.web_app))  # type: ignore[attr-defined]
        await client.start_server()
        served = Served(client, runtime, publisher, app)
        started.append(served)
        return served

    try:
        yield start
    finally:
        for served in started:
            await served.client.close()
            await served.app._maybe_close_http_client()


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
    assert headers[WORKER] == str(owner.app.conf.canonical_url)  # who answered
    assert headers[FORWARDED] == str(asked.app.conf.canonical_url)
    status, body, _ = await asked.get("/subjects/patient/P1/alerts", params={"status": "open"})
    assert status == 200
    assert [a["alert_id"] for a in body["alerts"]] == ["alt-1"]  # query string forwarded
    status, body, _ = await asked.get("/institutions/H404")
    assert status == 404  # the owner's own 404 comes back
    assert body["key"] == "institution:H404"


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
    api = await serve(api_token=None)
    status, body, headers = await api.post("/alerts/alt-1/review", REVIEW, headers=AUTH)
    assert status == 401
    assert "CLAIMSTREAM_API_TOKEN is unset" in body["error"]
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
    logged = caplog.text
    assert expected.action_id in logged and "li.na" in logged and "records checked" in logged


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
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(api_module.log, "exception", lambda *a, **k: None)  # keep the output clean
        status, answer, _ = await api.post("/alerts/alt-1/review", REVIEW, headers=AUTH)
    assert status == 503
    assert (
        "could not publish to claimstream.actions.v1: RuntimeError: broker gone" in answer["error"]
    )
    assert "repeating the same call is safe" in answer["error"]
    assert answer["action_id"].startswith("rev-")


async def test_a_publisher_that_hangs_is_503_after_the_timeout(
    serve: Serve, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_module, "PUBLISH_TIMEOUT", 0.2)
    api = await serve()
    api.publisher.hang = True
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(api_module.log, "exception", lambda *a, **k: None)
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
    """path -> methods of every view the worker's app installs (HEAD and OPTIONS aside)."""
    app = create_app(Settings(api_token="t"), registry=MemoryRegistry(), sinks=[])
    routes: dict[str, set[str]] = {}
    for path, view in app.web.views.items():  # type: ignore[attr-defined]
        methods = {m.lower() for m in view.get_methods()} & HTTP_METHODS
        routes[path] = methods
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
                 "/status", "/metrics", "/openapi.json"):  # fmt: skip
        assert path in routes


def test_write_operations_require_the_bearer_token() -> None:
    document = openapi_document()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            secured = operation.get("security") == [{"bearer": []}]
            assert secured == (method == "post"), f"{method} {path}"
            if secured:
                assert "401" in operation["responses"]


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
