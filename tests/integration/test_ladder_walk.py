"""Issue #5, done when: one subject walked up the whole sanctions ladder and back down through
expiry, appeal and a reviewer, on the real broker (Tansu) and a real redis-server, with the
commands topic, the Redis freeze registry and the worker's HTTP API agreeing at every step.

The subject is an institution (`institution:HWALK`): the settlement freeze of issue #5 is first
of all an institution's, it is the subject with every part of the ladder (warning, FREEZE until
the end of the local day, SUSPEND, and the credit grade on top), and every alert names its
institution whoever the patient is, so the walk gives each violation a new patient: the
patients then only collect first-violation warnings (the one of the critical alert is
suspended, as every subject of a critical alert is) and the institution climbs alone.

The steps (each test runs them with one worker of its own, in an order where event time only
moves forward):

* first violation (gender_age_restriction, high): warning.v1 on claimstream.sanctions.v1, no
  command, nothing in Redis; API level "warned", /freezes not frozen;
* a repeat the same day: FREEZE until local midnight on the topic and in Redis (the key expiring
  at that midnight), API "frozen" until the command's `expires_at`;
* expiry: event time passes local midnight: UNFREEZE (rule escalation, effective at midnight),
  key gone, API "warned";
* appeal: `claimstream unfreeze institution:HWALK --ground appeal` (the real CLI, a subprocess):
  UNFREEZE (rule manual), key gone, API "warned";
* a critical violation (excess_quantity, made critical for these workers): SUSPEND, key with no
  expiry (PTTL -1), API "suspended" with the SUSPEND's command id;
* a reviewer lifts it: POST /unfreeze refused (401) without a token and with a wrong one, then
  accepted (202) with the worker's bearer token: UNFREEZE (rule manual), key gone, API "warned".

The registry judges what is in force against the wall clock, the ladder against event time, so
the walk keeps event times at the wall clock's "now" and the local midnight where the wall
clock can reach it:

* `test_..._expiry_last` runs in an `Etc/GMT±N` zone where it is about noon: no local midnight
  can pass by the wall clock during the walk, and expiry comes last, moving event time to the
  next local midnight (anything decided after that would begin in the future, which the
  registry rightly does not hold as in force now). Order: warning, FREEZE, appeal, SUSPEND,
  reviewer, second FREEZE, expiry.
* `test_..._real_local_midnight` runs in a zone of its own (a TZif file on PYTHONTZPATH) whose
  local midnight falls a minute or two after the worker starts: the day's FREEZE ends by the
  wall clock (Redis drops the key at its `expires_at`) and by event time (UNFREEZE by expiry),
  and the walk goes on in the new local day in the order of issue #5: warning, FREEZE, expiry,
  second FREEZE, appeal, SUSPEND, reviewer.

After each step the test waits (bounded) until every view shows the step's outcome and they all
agree, then asserts it: (a) the commands topic, replayed through `FreezeLedger` (the scope's
commands in order, its latest, and what the ledger of the whole topic holds in force); (b)
Redis: GET of `{prefix}:freeze:institution:HWALK` and its expiry, and every freeze key of the
prefix compared with the ledger by `claimstream.sanctions.ledger.compare`; (c) the API:
`GET /freezes/institution/HWALK`, `GET /freezes`, `GET /subjects/institution/HWALK` and
`GET /institutions/HWALK`. The audit agent runs too: at the end every command and manual action
of the walk is chained and `claimstream audit verify` passes.
"""

from __future__ import annotations

import math
import os
import re
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from claimstream.cli.main import main
from claimstream.freezes.base import epoch_ms
from claimstream.model.outputs import Command, stable_id
from claimstream.model.timefmt import end_of_local_day
from claimstream.sanctions.ledger import FreezeLedger, compare
from tests.integration.stream_support import person_key
from tests.integration.test_sanctions_stream import (
    ACTIONS,
    COMMANDS,
    SanctionsWorld,
    benign,
    violation,
)

pytestmark = pytest.mark.integration

INSTITUTION = "HWALK"
SCOPE = f"institution:{INSTITUTION}"
TOKEN = "walk-token"
AUDIT = "claimstream.audit.v1"
#: how long one step may take to show in every view
SETTLE_SECONDS = 60.0
#: the walk across a real midnight: the local midnight falls this long (at least) after the
#: worker is started, time for the warning and the first FREEZE before it
MIDNIGHT_LEAD_SECONDS = 75.0
WORKER_ENV = {
    "CLAIMSTREAM_API_TOKEN": TOKEN,
    "CLAIMSTREAM_AUDIT_ENABLED": "true",
    "CLAIMSTREAM_RULE__EXCESS_QUANTITY__SEVERITY": "critical",
}


def noon_zone(now: datetime) -> str:
    """An `Etc/GMT±N` zone where it is between 12:00 and 13:00 at `now` (local midnight is then
    at least 11 hours away)."""
    offset = 12 - now.astimezone(UTC).hour  # -11 .. 12
    if offset == 0:
        return "Etc/GMT"
    return f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"  # POSIX sign: GMT-8 is UTC+8


def midnight_zone(directory: Path, midnight: float) -> tuple[str, tzinfo]:
    """Write a zone (fixed UTC offset, whole minutes) whose local midnight is at `midnight`
    (a whole minute, POSIX seconds) as a TZif file under `directory` (for PYTHONTZPATH):
    its name and the same offset as a tzinfo for the test."""
    offset = int(-midnight) % 86400
    if offset > 43200:
        offset -= 86400
    sign = "+" if offset >= 0 else "-"
    hours, minutes = divmod(abs(offset) // 60, 60)
    abbr = f"{sign}{hours:02d}{minutes:02d}".encode() + b"\0"

    def block() -> bytes:  # RFC 8536: no transitions, one local time type
        header = b"TZif2" + bytes(15) + struct.pack(">6l", 0, 0, 0, 0, 1, len(abbr))
        return header + struct.pack(">lBB", offset, 0, 0) + abbr

    posix = f"<{abbr[:-1].decode()}>{'-' if offset > 0 else '+'}{hours}:{minutes:02d}"
    name = "Walk/Midnight"
    (directory / "Walk").mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(block() + block() + f"\n{posix}\n".encode())
    return name, timezone(timedelta(seconds=offset))


def excess(occurred_at: datetime, *, patient: str, institution: str) -> dict[str, Any]:
    """A dispensing of 60 days of an acute drug: one `excess_quantity` alert (critical in this
    module's workers) naming the patient and the institution."""
    return {
        "event_id": f"walk-excess-{patient}-{occurred_at.timestamp():.0f}",
        "event_type": "dispense",
        "occurred_at": occurred_at.isoformat(),
        "patient_id": patient,
        "institution_id": institution,
        "department_id": "K01",
        "drug_code": "XJ01CA04ACUTE",
        "days_supply": 60,
        "quantity": 6,
        "chronic": False,
        "patient_gender": "M",
        "patient_age": 40,
    }


# -- the three views --------------------------------------------------------------------------


@dataclass
class Views:
    """What the commands topic, Redis and the API say at one moment (`now`, wall time)."""

    now: float
    #: the scope's commands, one per id, in the order they reached the topic
    mine: list[dict[str, Any]]
    #: FreezeLedger of the whole commands topic: what is in force at `now`
    ledger: dict[str, Command]
    #: every freeze key of the registry: scope key -> the stored command
    stored: dict[str, dict[str, Any]]
    entry: dict[str, Any] | None  # GET of the scope's key
    pttl: int  # -2: no key, -1: no expiry
    expire_ms: int  # PEXPIRETIME of the scope's key (epoch ms; -1: none, -2: no key)
    freeze_api: tuple[int, Any]  # GET /freezes/institution/HWALK
    freezes_api: tuple[int, Any]  # GET /freezes
    subject_api: tuple[int, Any]  # GET /subjects/institution/HWALK
    institution_api: tuple[int, Any]  # GET /institutions/HWALK
    warnings: list[dict[str, Any]] = field(default_factory=list)  # the scope's warning.v1

    @property
    def latest(self) -> dict[str, Any]:
        assert self.mine, f"no command of {SCOPE} on the topic"
        return self.mine[-1]

    @property
    def standing(self) -> dict[str, Any]:
        status, body = self.subject_api
        return body if status == 200 and isinstance(body, dict) else {}

    def describe(self) -> str:
        def short(c: dict[str, Any] | None) -> Any:
            if c is None:
                return None
            return {k: c.get(k) for k in ("action", "rule", "command_id", "expires_at")}

        standing = {
            k: self.standing.get(k) for k in ("level", "frozen_until", "suspension", "as_of")
        }
        path = SCOPE.replace(":", "/")
        return (
            f"  commands of {SCOPE} on the topic: {[short(c) for c in self.mine]}\n"
            f"  ledger in force: { {k: c.command_id for k, c in self.ledger.items()} }\n"
            f"  registry keys: { {k: v.get('command_id') for k, v in self.stored.items()} }\n"
            f"  registry {SCOPE}: {short(self.entry)} pttl={self.pttl}\n"
            f"  GET /freezes/{path}: {self.freeze_api}\n"
            f"  GET /freezes: {self.freezes_api}\n"
            f"  GET /subjects/{path}: {self.subject_api[0]} {standing}\n"
            f"  GET /institutions/{INSTITUTION}: {self.institution_api[0]} "
            f"level={_get(self.institution_api, 'level')}\n"
            f"  warnings of {SCOPE}: {len(self.warnings)}\n"
            f"  wall time: {datetime.fromtimestamp(self.now, UTC).isoformat()}"
        )


def _get(answer: tuple[int, Any], key: str) -> Any:
    status, body = answer
    return body.get(key) if status == 200 and isinstance(body, dict) else None


@dataclass
class Expect:
    """A step's outcome for the institution."""

    level: str
    #: id of the command in force for the scope (FREEZE / SUSPEND), None: nothing in force
    in_force: str | None
    #: command ids of the scope so far, in topic order
    history: list[str]


def _scope_key(command: dict[str, Any]) -> str:
    scope = command["scope"]
    base = f"{scope['kind']}:{scope['id']}"
    return f"{base}:{scope['drug_code']}" if scope.get("drug_code") else base


def _after_prefix(key: str) -> str:
    """The scope part of a registry key `{prefix}:freeze:{scope}`."""
    return key.partition(":freeze:")[2]


def _same_time(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    return datetime.fromisoformat(a) == datetime.fromisoformat(b)


def disagreements(v: Views, expect: Expect) -> list[str]:
    """Where the views differ from the expected outcome or from each other (empty: none)."""
    out: list[str] = []
    # (a) the commands topic, and its ledger
    ids = [c["command_id"] for c in v.mine]
    if ids != expect.history:
        out.append(f"topic: commands of {SCOPE} are {ids}, expected {expect.history}")
    held = v.ledger.get(SCOPE)
    ledger_id = held.command_id if held else None
    if ledger_id != expect.in_force:
        out.append(f"ledger of the topic: in force {ledger_id}, expected {expect.in_force}")
    frozen_until = held.expires_at if held is not None and held.action == "FREEZE" else None
    suspended_by = ledger_id if held is not None and held.action == "SUSPEND" else None
    # (b) the registry, against the ledger of the whole topic
    agreement = compare(v.ledger, v.stored.values())
    if not agreement.ok:
        out.append(f"registry vs ledger of the topic: {agreement}")
    entry_id = v.entry["command_id"] if v.entry else None
    if entry_id != ledger_id:
        out.append(f"registry: {SCOPE} holds {entry_id}, the ledger {ledger_id}")
    if held is None:
        if v.pttl != -2:
            out.append(f"registry: {SCOPE} key still there (PTTL {v.pttl})")
    elif held.expires_at is None:
        if v.pttl != -1:
            out.append(f"registry: the SUSPEND key must not expire, PTTL {v.pttl}")
    elif v.expire_ms != epoch_ms(held.expires_at):
        out.append(
            f"registry: key expires at {v.expire_ms} ms, the FREEZE at "
            f"{epoch_ms(held.expires_at)} ms ({held.expires_at})"
        )
    # (c) the API: /freezes (answered from the registry) ...
    status, answer = v.freeze_api
    if status != 200:
        out.append(f"API /freezes/{SCOPE}: {status} {answer}")
    else:
        api_ids = [f["command_id"] for f in answer["freezes"]]
        if answer["frozen"] != (held is not None) or api_ids != ([ledger_id] if held else []):
            out.append(f"API /freezes/{SCOPE}: frozen={answer['frozen']} {api_ids}")
    status, answer = v.freezes_api
    listed = (
        {_after_prefix(f["key"]): f["command_id"] for f in answer["freezes"]}
        if status == 200
        else answer
    )
    if listed != {k: c.command_id for k, c in v.ledger.items()}:
        out.append(f"API /freezes lists {listed}")
    # ... and /subjects, /institutions (answered from the ladder's state)
    status, standing = v.subject_api
    if status != 200:
        return [*out, f"API /subjects/{SCOPE}: {status} {standing}"]
    if standing["level"] != expect.level:
        out.append(f"API /subjects: level {standing['level']!r}, expected {expect.level!r}")
    if not _same_time(standing["frozen_until"], frozen_until):
        out.append(f"API /subjects: frozen_until {standing['frozen_until']}, ledger {frozen_until}")
    if (standing["suspension"] or {}).get("command_id") != suspended_by:
        out.append(f"API /subjects: suspension {standing['suspension']}, ledger {suspended_by}")
    freeze_ids = [f["command_id"] for f in standing["freezes"]]
    if freeze_ids != ([ledger_id] if frozen_until else []):
        out.append(f"API /subjects: freezes {freeze_ids}, ledger {ledger_id}")
    status, institution = v.institution_api
    if status != 200 or (institution["level"], institution["frozen_until"]) != (
        standing["level"],
        standing["frozen_until"],
    ):
        out.append(f"API /institutions: {status} level={_get(v.institution_api, 'level')}")
    return out


def assert_not_frozen(views: Views) -> None:
    status, answer = views.freeze_api
    assert status == 200 and (answer["frozen"], answer["freezes"]) == (False, []), answer


# -- the walk ---------------------------------------------------------------------------------


class Walk:
    """A world, the subject's history so far, and one method per step of the ladder."""

    def __init__(self, world: SanctionsWorld, zone: tzinfo) -> None:
        self.world = world
        self.zone = zone
        #: the key `claimstream unfreeze` signs with (a person every test worker trusts)
        assert world.log_path is not None
        self.person_key = person_key(world.log_path.parent)
        self.redis = redis.Redis.from_url(world.redis_url)
        self.freeze_prefix = f"{world.prefix}:freeze:"
        #: the scope's command ids so far, in topic order
        self.history: list[str] = []
        #: the subject's alerts so far
        self.alerts: list[dict[str, Any]] = []
        #: manual action ids (appeal, reviewer)
        self.actions: list[str] = []
        self.patients = iter(f"PW{n}" for n in range(1, 100))

    def close(self) -> None:
        self.redis.close()

    def moment(self) -> datetime:
        """Event time for the next input: a second ago on the wall clock, in the local zone."""
        return datetime.now(self.zone).replace(microsecond=0) - timedelta(seconds=1)

    # -- reading ----------------------------------------------------------------------------

    def views(self) -> Views:
        commands = [v for _, v in self.world.read(COMMANDS)]
        mine: dict[str, dict[str, Any]] = {}
        for c in commands:
            if _scope_key(c) == SCOPE:
                mine.setdefault(c["command_id"], c)
        now = time.time()
        stored: dict[str, dict[str, Any]] = {}
        for raw in sorted(self.redis.scan_iter(match=f"{self.freeze_prefix}*", count=1000)):
            value = self.redis.get(raw)
            if value is not None:
                stored[raw.decode()[len(self.freeze_prefix) :]] = orjson.loads(value)
        key = self.freeze_prefix + SCOPE
        return Views(
            now=now,
            mine=list(mine.values()),
            ledger=FreezeLedger.rebuild(commands).active(now),
            stored=stored,
            entry=self.world.registry_entry(SCOPE),
            pttl=int(self.redis.pttl(key)),
            expire_ms=int(self.redis.pexpiretime(key)),
            freeze_api=self.world.api(f"/freezes/institution/{INSTITUTION}"),
            freezes_api=self.world.api("/freezes"),
            subject_api=self.world.api(f"/subjects/institution/{INSTITUTION}"),
            institution_api=self.world.api(f"/institutions/{INSTITUTION}"),
            warnings=self.world.notices(SCOPE, "warning.v1"),
        )

    def settle(self, step: str, expect: Expect, timeout: float = SETTLE_SECONDS) -> Views:
        """Wait until the views show `expect` and agree with each other; fail naming what
        each view said when they do not within `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            self.alive(step)
            views = self.views()
            problems = disagreements(views, expect)
            if not problems:
                return views
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"step {step!r}: after {timeout:.0f} s the views do not show the expected "
                    f"outcome (level {expect.level!r}, in force {expect.in_force}, commands "
                    f"{expect.history}):\n"
                    + "\n".join(f"- {p}" for p in problems)
                    + f"\nwhat each view said:\n{views.describe()}"
                )
            time.sleep(0.5)

    def alive(self, step: str) -> None:
        worker = self.world.worker
        assert worker is not None and worker.proc is not None
        assert worker.proc.poll() is None, f"step {step!r}: the worker exited"

    def wait_command(self, step: str, known: int) -> dict[str, Any]:
        """The scope's next command on the topic (after the `known` first)."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            self.alive(step)
            mine: dict[str, dict[str, Any]] = {}
            for _, c in self.world.read(COMMANDS):
                if _scope_key(c) == SCOPE:
                    mine.setdefault(c["command_id"], c)
            if len(mine) > known:
                assert len(mine) == known + 1, f"step {step!r}: more than one command: {mine}"
                return list(mine.values())[-1]
            assert time.monotonic() < deadline, (
                f"step {step!r}: no new command of {SCOPE} on {COMMANDS} after "
                f"{SETTLE_SECONDS:.0f} s; it holds {list(mine)}"
            )
            time.sleep(0.5)

    def alert(self, event: dict[str, Any]) -> dict[str, Any]:
        """Feed a violation; its (one) alert."""
        self.world.events(event)
        [alert] = self.world.alerts_for(event["patient_id"], 1, timeout=SETTLE_SECONDS)
        assert alert["institution_id"] == INSTITUTION, alert
        self.alerts.append(alert)
        return alert

    def post(self, path: str, body: dict[str, Any], token: str | None) -> tuple[int, Any, Any]:
        """POST JSON to the worker: (status, decoded body, response headers)."""
        assert self.world.worker is not None
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.world.worker.port}{path}",
            data=orjson.dumps(body),
            headers=headers,
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, orjson.loads(response.read()), response.headers
        except urllib.error.HTTPError as exc:
            return exc.code, orjson.loads(exc.read() or b"null"), exc.headers

    # -- the steps --------------------------------------------------------------------------

    def first_violation(self) -> None:
        step = "first violation: warning"
        alert = self.alert(violation(self.moment(), patient=next(self.patients), **_at))
        assert (alert["rule"], alert["severity"]) == ("gender_age_restriction", "high")
        [warning] = self.world.wait_notices(SCOPE, "warning.v1", timeout=SETTLE_SECONDS)
        assert warning["alert_ids"] == [alert["alert_id"]]
        views = self.settle(step, Expect("warned", None, self.history))
        assert views.mine == [] and views.entry is None and views.pttl == -2
        assert_not_frozen(views)
        assert views.standing["violations"] == 1

    def repeat(self) -> dict[str, Any]:
        """A violation within 30 days of the others: FREEZE until the end of the local day."""
        step = "repeat: FREEZE"
        at = self.moment()
        alert = self.alert(violation(at, patient=next(self.patients), **_at))
        freeze = self.wait_command(step, len(self.history))
        assert (freeze["action"], freeze["rule"]) == ("FREEZE", "escalation"), freeze
        self.history.append(freeze["command_id"])
        views = self.settle(step, Expect("frozen", freeze["command_id"], self.history))
        midnight = datetime.fromtimestamp(end_of_local_day(at.timestamp(), self.zone), self.zone)
        assert freeze["expires_at"] == midnight.isoformat()  # the local midnight, local offset
        assert _same_time(freeze["effective_from"], alert["occurred_at"])
        assert set(freeze["alert_ids"]) == {a["alert_id"] for a in self.alerts}
        assert views.entry == freeze
        assert views.expire_ms == int(midnight.timestamp() * 1000)
        assert views.freeze_api[1]["frozen"] is True
        assert views.standing["frozen_until"] == freeze["expires_at"]
        assert [f["command_id"] for f in views.standing["freezes"]] == [freeze["command_id"]]
        assert len(views.warnings) == 1  # warned once, at the first violation
        return freeze

    def expire(self, freeze: dict[str, Any], event_at: datetime) -> None:
        """An event at `event_at` (past the freeze's local midnight) moves event time on."""
        step = "expiry: UNFREEZE"
        midnight = datetime.fromisoformat(freeze["expires_at"])
        assert event_at > midnight
        self.world.events(benign(event_at))
        command_id = stable_id("cmd", "UNFREEZE", SCOPE, "expiry", freeze["command_id"])
        self.history.append(command_id)
        views = self.settle(step, Expect("warned", None, self.history))
        expiry = views.latest
        assert (expiry["action"], expiry["rule"]) == ("UNFREEZE", "escalation"), expiry
        assert datetime.fromisoformat(expiry["effective_from"]) == midnight
        assert expiry["alert_ids"] == sorted(freeze["alert_ids"])
        assert_not_frozen(views)
        assert datetime.fromisoformat(views.standing["as_of"]) >= midnight
        assert views.standing["violations"] == len(self.alerts)

    def appeal(self, freeze: dict[str, Any]) -> None:
        """`claimstream unfreeze SCOPE --ground appeal`, the real command line."""
        step = "appeal: UNFREEZE"
        env = {k: v for k, v in os.environ.items() if not k.startswith("CLAIMSTREAM_")}
        env.update(
            {
                k: v
                for k, v in self.world.env.items()
                if k in ("CLAIMSTREAM_TIMEZONE", "PYTHONTZPATH")
            }
        )
        cli = subprocess.run(
            [sys.executable, "-m", "claimstream", "unfreeze", SCOPE, "--ground", "appeal",
             "--reason", "appeal 2026-041 upheld: invoices supplied", "--by", "wang.fang",
             "--bootstrap", self.world.bootstrap, "--signing-key", str(self.person_key)],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert cli.returncode == 0, cli.stdout + cli.stderr
        match = re.search(r"published (\S+)", cli.stdout)
        assert match, cli.stdout
        self.actions.append(match.group(1))
        command_id = stable_id("cmd", "UNFREEZE", SCOPE, "manual", match.group(1))
        self.history.append(command_id)
        views = self.settle(step, Expect("warned", None, self.history))
        unfreeze = views.latest
        assert (unfreeze["action"], unfreeze["rule"]) == ("UNFREEZE", "manual"), unfreeze
        assert "(appeal) by wang.fang" in unfreeze["reason"], unfreeze
        assert unfreeze["alert_ids"] == freeze["alert_ids"]  # what the appeal lifted
        assert_not_frozen(views)
        assert views.standing["frozen_until"] is None

    def critical(self) -> dict[str, Any]:
        step = "critical violation: SUSPEND"
        alert = self.alert(excess(self.moment(), patient=next(self.patients), **_at))
        assert (alert["rule"], alert["severity"]) == ("excess_quantity", "critical")
        suspend = self.wait_command(step, len(self.history))
        assert (suspend["action"], suspend["rule"]) == ("SUSPEND", "escalation"), suspend
        self.history.append(suspend["command_id"])
        views = self.settle(step, Expect("suspended", suspend["command_id"], self.history))
        assert suspend["expires_at"] is None and suspend["alert_ids"] == [alert["alert_id"]]
        assert views.entry == suspend and views.pttl == -1
        assert views.freeze_api[1]["frozen"] is True
        assert views.freeze_api[1]["freezes"][0]["action"] == "SUSPEND"
        assert views.standing["suspension"]["cause"] == "critical"
        assert views.standing["suspension"]["command_id"] == suspend["command_id"]
        return suspend

    def reviewer(self) -> None:
        """POST /unfreeze: refused without the bearer token, accepted with it."""
        step = "reviewer lifts: UNFREEZE"
        body = {"scope": SCOPE, "ground": "reviewer", "reason": "excess justified", "by": "li.na"}
        before = self.world.read(ACTIONS)
        for token in (None, "not-the-token"):
            status, answer, headers = self.post("/unfreeze", body, token)
            assert status == 401, (token, status, answer)
            assert headers["WWW-Authenticate"].startswith("Bearer"), headers
        assert self.world.read(ACTIONS) == before  # nothing published
        status, answer, _ = self.post("/unfreeze", body, TOKEN)
        assert status == 202, answer
        assert (answer["record"]["ground"], answer["record"]["by"]) == ("reviewer", "li.na")
        self.actions.append(answer["action_id"])
        command_id = stable_id("cmd", "UNFREEZE", SCOPE, "manual", answer["action_id"])
        self.history.append(command_id)
        views = self.settle(step, Expect("warned", None, self.history))
        lift = views.latest
        assert (lift["action"], lift["rule"]) == ("UNFREEZE", "manual"), lift
        assert "(reviewer) by li.na" in lift["reason"], lift
        assert views.standing["suspension"] is None
        assert_not_frozen(views)

    def finish(self, expected: list[tuple[str, str]]) -> None:
        """The whole walk on the topic; one warning; every command and manual action chained
        in the audit trail, which verifies."""
        views = self.views()
        assert [(c["action"], c["rule"]) for c in views.mine] == expected
        assert len(views.warnings) == 1
        assert self.world.notices(SCOPE, "grade-change.v1")  # the grade followed the violations
        wanted = {("command", c) for c in self.history} | {("manual", a) for a in self.actions}

        def chained() -> set[tuple[str, str]]:
            return {(r["kind"], r["record_id"]) for _, r in self.world.read(AUDIT)} & wanted

        deadline = time.monotonic() + SETTLE_SECONDS
        while (got := chained()) != wanted:
            assert time.monotonic() < deadline, f"not in the audit trail: {sorted(wanted - got)}"
            time.sleep(0.5)
        argv = ["audit", "verify", "--topic", AUDIT, "--bootstrap", self.world.bootstrap]
        assert main(argv) == 0


_at = {"institution": INSTITUTION}

WalkFactory = Callable[[dict[str, str], tzinfo], Walk]


@pytest.fixture
def start_walk(redis_url: str, tmp_path: Path) -> Iterator[WalkFactory]:
    """Start a world (broker + worker with `env`) and its walk; stopped at the end."""
    started: list[tuple[Walk, Path]] = []

    def start(env: dict[str, str], zone: tzinfo) -> Walk:
        log = tmp_path / f"worker{len(started)}.log"
        world = SanctionsWorld(redis_url, log_path=log, env={**WORKER_ENV, **env})
        walk = Walk(world, zone)
        started.append((walk, log))
        world.start()
        return walk

    try:
        yield start
    finally:
        for walk, log in started:
            walk.close()
            walk.world.stop()
            if log.exists():
                print(log.read_text(errors="replace")[-4000:])


def test_an_institution_walks_up_and_down_the_ladder_expiry_last(
    start_walk: WalkFactory,
) -> None:
    from zoneinfo import ZoneInfo

    name = noon_zone(datetime.now(UTC))
    walk = start_walk({"CLAIMSTREAM_TIMEZONE": name}, ZoneInfo(name))
    walk.first_violation()
    freeze1 = walk.repeat()
    walk.appeal(freeze1)
    walk.critical()
    walk.reviewer()
    freeze2 = walk.repeat()
    assert freeze2["command_id"] != freeze1["command_id"]
    assert freeze2["expires_at"] == freeze1["expires_at"]  # the same local day
    walk.expire(freeze2, datetime.fromisoformat(freeze2["expires_at"]) + timedelta(minutes=5))
    walk.finish(
        [
            ("FREEZE", "escalation"),
            ("UNFREEZE", "manual"),
            ("SUSPEND", "escalation"),
            ("UNFREEZE", "manual"),
            ("FREEZE", "escalation"),
            ("UNFREEZE", "escalation"),
        ]
    )


def test_an_institution_walks_up_and_down_the_ladder_across_a_real_local_midnight(
    start_walk: WalkFactory, tmp_path: Path
) -> None:
    midnight = float(math.ceil((time.time() + MIDNIGHT_LEAD_SECONDS) / 60) * 60)
    zones = tmp_path / "zones"
    name, zone = midnight_zone(zones, midnight)
    tzpath = os.pathsep.join([str(zones), "/usr/share/zoneinfo"])
    walk = start_walk(
        {
            "CLAIMSTREAM_TIMEZONE": name,
            "PYTHONTZPATH": tzpath,
            # ticks follow event time closely, so the expiry needs no event far past midnight
            "CLAIMSTREAM_SANCTIONS_TICK_DELAY": "1",
        },
        zone,
    )
    walk.first_violation()
    freeze1 = walk.repeat()
    assert _same_time(freeze1["expires_at"], datetime.fromtimestamp(midnight, UTC).isoformat())
    assert time.time() < midnight - 1, (
        f"the warning and the first FREEZE took until {time.time() - midnight:+.1f} s from the "
        f"local midnight; raise MIDNIGHT_LEAD_SECONDS ({MIDNIGHT_LEAD_SECONDS:g})"
    )

    # the wall clock passes midnight: Redis drops the key at the FREEZE's expires_at, and the
    # ledger of the topic holds nothing in force either; the ladder has not seen the new day
    while time.time() < midnight + 2.5:  # (event times are a second behind, whole seconds)
        time.sleep(0.2)
    views = walk.views()
    assert views.entry is None and views.pttl == -2, views.describe()
    assert views.ledger.get(SCOPE) is None and compare(views.ledger, views.stored.values()).ok
    assert_not_frozen(views)
    assert views.latest["command_id"] == freeze1["command_id"]  # no event has passed midnight

    # event time passes midnight too: UNFREEZE by expiry; then the walk goes on in the new day
    walk.expire(freeze1, walk.moment())
    freeze2 = walk.repeat()
    assert datetime.fromisoformat(freeze2["expires_at"]) == datetime.fromtimestamp(
        midnight, zone
    ) + timedelta(days=1)
    walk.appeal(freeze2)
    walk.critical()
    walk.reviewer()
    walk.finish(
        [
            ("FREEZE", "escalation"),
            ("UNFREEZE", "escalation"),
            ("FREEZE", "escalation"),
            ("UNFREEZE", "manual"),
            ("SUSPEND", "escalation"),
            ("UNFREEZE", "manual"),
        ]
    )
