"""The sanctions ladder in the stream: real Tansu broker, real redis-server, `claimstream worker`.

Settlement events that break a rule become alerts, the alerts become escalation decisions:
a first violation a warning on claimstream.sanctions.v1, a repeat a FREEZE on the commands
topic and in Redis; a review through the actions topic moves the doctor's points and the
per-rule review metrics; a review of an alert nobody raised is dead-lettered.

The helpers (`SanctionsWorld`, `violation`, `review_action`, `unfreeze_action`) are meant for
other end-to-end tests of the ladder too: start a world, feed it events and actions, read what
came out of each topic, Redis and the worker's metrics.
"""

from __future__ import annotations

import itertools
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from claimstream.devtools.localbroker import LocalBroker
from claimstream.model.outputs import Scope
from claimstream.sanctions.actions import ManualUnfreeze, Verdict
from claimstream.sanctions.codec import action_key, action_to_dict
from tests.integration.stream_support import (
    TEST_SIGNER,
    WorkerProcess,
    event_messages,
    produce,
    read_topic,
    start_broker,
    wait_for,
)

pytestmark = pytest.mark.integration

ALERTS = "claimstream.alerts.v1"
COMMANDS = "claimstream.commands.v1"
NOTICES = "claimstream.sanctions.v1"
ACTIONS = "claimstream.actions.v1"
DEAD = "claimstream.dead-letter.v1"
#: finasteride, male only: dispensed to a woman it is a `gender_age_restriction` alert (high)
MALE_ONLY_DRUG = "XG04CBF001A001010100104"
_prefixes = itertools.count()
_events = itertools.count()


def violation(
    occurred_at: datetime,
    *,
    patient: str,
    institution: str,
    doctor: str | None = None,
    department: str | None = "K01",
    event_id: str | None = None,
) -> dict[str, Any]:
    """A dispensing event that breaks exactly one rule (gender_age_restriction, severity high):
    one alert naming the patient, the institution and (if given) the doctor."""
    event: dict[str, Any] = {
        "event_id": event_id or f"sanc-{next(_events)}-{occurred_at.timestamp():.0f}",
        "event_type": "dispense",
        "occurred_at": occurred_at.isoformat(),
        "patient_id": patient,
        "institution_id": institution,
        "drug_code": MALE_ONLY_DRUG,
        "days_supply": 5,
        "quantity": 1,
        "chronic": False,
        "patient_gender": "F",
        "patient_age": 40,
    }
    if doctor is not None:
        event["doctor_id"] = doctor
    if department is not None:
        event["department_id"] = department
    return event


def review_action(
    alert_id: str, verdict: str, at: datetime, by: str = "li.reviewer"
) -> tuple[str, dict[str, Any]]:
    """(key, action.v1 record) of a review, as `claimstream alerts review` publishes it."""
    action = Verdict(alert_id, verdict, by, at.isoformat())  # type: ignore[arg-type]
    return action_key(action), action_to_dict(action)


def unfreeze_action(
    kind: str, id_: str, at: datetime, ground: str = "appeal", by: str = "wang.supervisor"
) -> tuple[str, dict[str, Any]]:
    """(key, action.v1 record) of a manual unfreeze, as `claimstream unfreeze` publishes it."""
    action = ManualUnfreeze(
        Scope(kind, id_),  # type: ignore[arg-type]
        "appeal upheld",
        by,
        at.isoformat(),
        ground,  # type: ignore[arg-type]
    )
    return action_key(action), action_to_dict(action)


@dataclass
class SanctionsWorld:
    """A private broker (topics at `PARTITIONS`), a worker on it using `redis_url`, and the
    means to feed and read both. `stop()` stops everything it started."""

    redis_url: str
    log_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    broker: LocalBroker | None = None
    worker: WorkerProcess | None = None
    prefix: str = field(default_factory=lambda: f"sanc{next(_prefixes)}")

    def start(self) -> SanctionsWorld:
        self.broker = start_broker()
        try:
            self.worker = WorkerProcess(
                self.broker.url,
                env={
                    "CLAIMSTREAM_REDIS_URL": self.redis_url,
                    "CLAIMSTREAM_REDIS_PREFIX": self.prefix,
                    "CLAIMSTREAM_SANCTIONS_TICK_INTERVAL": "1",
                    "CLAIMSTREAM_AUDIT_ENABLED": "false",
                    # violation() dispenses one drug twice at one institution a minute apart:
                    # a repeat dispensing since repeat_dispensing.same_institution (default on),
                    # and these tests want each violation to break exactly one rule
                    "CLAIMSTREAM_RULE__REPEAT_DISPENSING__SAME_INSTITUTION": "false",
                    **self.env,
                },
                log_path=self.log_path,
            ).start()
        except BaseException:
            self.stop()
            raise
        return self

    def restart(self, *, kill: bool = False) -> None:
        """Stop the worker (SIGTERM, or SIGKILL with `kill`) and start a new one in its place:
        it resumes from the committed offsets and the tables' changelogs."""
        assert self.worker is not None
        if kill:
            self.worker.kill()
        else:
            self.worker.stop()
        self.worker = WorkerProcess(
            self.worker.broker_url,
            env=self.worker.env,
            log_path=self.log_path,
            data_dir=self.worker.data_dir,  # on RocksDB: reopens the databases, as a volume
        ).start()

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop()
        if self.broker is not None:
            self.broker.stop()

    @property
    def bootstrap(self) -> str:
        assert self.broker is not None
        return self.broker.bootstrap

    # -- feeding ----------------------------------------------------------------------------

    def events(self, *events: dict[str, Any]) -> None:
        produce(self.bootstrap, event_messages(events))

    def actions(self, *actions: tuple[str, dict[str, Any]]) -> None:
        """Publish actions signed as the workers' API signs them (every test worker trusts it)."""
        signed = [(ACTIONS, k.encode(), orjson.dumps(TEST_SIGNER.sign(v))) for k, v in actions]
        produce(self.bootstrap, signed)

    # -- reading ----------------------------------------------------------------------------

    def read(self, topic: str) -> list[tuple[bytes | None, dict[str, Any]]]:
        return read_topic(self.bootstrap, topic)

    def wait(
        self,
        topic: str,
        done: Callable[[list[tuple[bytes | None, dict[str, Any]]]], Any],
        timeout: float = 90,
    ) -> list[tuple[bytes | None, dict[str, Any]]]:
        """Read `topic` until `done(records)` is truthy; the records then."""
        got: list[tuple[bytes | None, dict[str, Any]]] = []

        def check() -> Any:
            nonlocal got
            assert self.worker is not None and self.worker.proc is not None
            assert self.worker.proc.poll() is None, "worker exited"
            got = self.read(topic)
            return done(got)

        wait_for(check, timeout, f"records on {topic}", interval=0.5)
        return got

    def alerts_for(self, patient: str, n: int, timeout: float = 90) -> list[dict[str, Any]]:
        """The first `n` alerts whose subject is `patient`, in occurred_at order."""

        def mine(records: list[Any]) -> list[dict[str, Any]]:
            return [v for _, v in records if v["subject"]["id"] == patient]

        records = self.wait(ALERTS, lambda got: len(mine(got)) >= n, timeout)
        return sorted(mine(records), key=lambda a: a["occurred_at"])

    def notices(self, key: str, schema: str | None = None) -> list[dict[str, Any]]:
        return [
            v
            for k, v in self.read(NOTICES)
            if k == key.encode() and (schema is None or v["schema"] == schema)
        ]

    def wait_notices(
        self, key: str, schema: str, n: int = 1, timeout: float = 90
    ) -> list[dict[str, Any]]:
        def mine(records: list[Any]) -> list[dict[str, Any]]:
            return [v for k, v in records if k == key.encode() and v["schema"] == schema]

        return mine(self.wait(NOTICES, lambda got: len(mine(got)) >= n, timeout))

    def wait_commands(
        self, scope: str, action: str, n: int = 1, timeout: float = 90
    ) -> list[dict[str, Any]]:
        def mine(records: list[Any]) -> list[dict[str, Any]]:
            return [v for k, v in records if k == scope.encode() and v["action"] == action]

        return mine(self.wait(COMMANDS, lambda got: len(mine(got)) >= n, timeout))

    def diagnose(self, patient: str, key: str) -> str:
        """What each step holds for a patient's alerts and a subject (for failure messages)."""
        alerts = [v["alert_id"] for _, v in self.read(ALERTS) if v["subject"]["id"] == patient]
        envelopes = [
            (v["type"], v.get("alert", {}).get("alert_id"))
            for k, v in self.read("claimstream.repartition.subject")
            if k == key.encode()
        ]
        notices = [(v["schema"], v.get("reason")) for v in self.notices(key)]
        commands = [(v["action"], v["rule"]) for k, v in self.read(COMMANDS) if k == key.encode()]
        changelog = [
            (list(v.get("e", {}).get("a", {})) if isinstance(v, dict) else v)
            for k, v in self.read("claimstream-state-subject-changelog")
            if k == key.encode()
        ]
        return (
            f"alerts of {patient}: {alerts}\nenvelopes to {key}: {envelopes}\n"
            f"notices: {notices}\ncommands: {commands}\nchangelog of {key}: {changelog}"
        )

    def api(self, path: str) -> tuple[int, Any]:
        """GET `path` on the worker's HTTP API: (status, decoded JSON body)."""
        assert self.worker is not None
        url = f"http://127.0.0.1:{self.worker.port}{path}"
        request = urllib.request.Request(url, headers=self.worker.auth())
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, orjson.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, orjson.loads(exc.read() or b"null")

    def registry_entry(self, scope: str) -> dict[str, Any] | None:
        """The command stored under the scope's freeze key in Redis, or None."""
        client = redis.Redis.from_url(self.redis_url)
        try:
            raw = client.get(f"{self.prefix}:freeze:{scope}")
        finally:
            client.close()
        return None if raw is None else orjson.loads(raw)

    def metric(self, name: str, **labels: str) -> float:
        """A sample of the worker's /metrics (0 when absent)."""
        assert self.worker is not None
        url = f"http://127.0.0.1:{self.worker.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return float(sample.value)
        return 0.0

    def wait_metric(self, name: str, value: float, timeout: float = 60, **labels: str) -> None:
        wait_for(
            lambda: self.metric(name, **labels) == value,
            timeout,
            f"{name}{labels} == {value}",
            interval=0.5,
        )


@pytest.fixture(scope="module")
def world(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SanctionsWorld]:
    log = tmp_path_factory.mktemp("sanctions") / "worker.log"
    w = SanctionsWorld(redis_url, log_path=log).start()
    try:
        yield w
    finally:
        w.stop()
        if log.exists():
            print(log.read_text(errors="replace")[-4000:])


def now() -> datetime:
    return datetime.now(UTC)


def test_a_first_violation_warns_and_a_repeat_freezes_in_topic_and_registry(
    world: SanctionsWorld,
) -> None:
    t0 = now() - timedelta(minutes=3)
    world.events(violation(t0, patient="PS1", institution="HS1", doctor="DS1"))
    [first] = world.alerts_for("PS1", 1)
    assert first["rule"] == "gender_age_restriction"
    for key in ("institution:HS1", "doctor:DS1", "patient:PS1"):
        [warning] = world.wait_notices(key, "warning.v1")
        assert warning["alert_ids"] == [first["alert_id"]]
        assert f"{warning['subject']['kind']}:{warning['subject']['id']}" == key
    assert not [v for _, v in world.read(COMMANDS) if v["scope"]["id"] in ("HS1", "DS1", "PS1")]

    world.events(
        violation(t0 + timedelta(minutes=1), patient="PS1", institution="HS1", doctor="DS1")
    )
    alerts = world.alerts_for("PS1", 2)
    for scope in ("institution:HS1", "doctor:DS1", "patient:PS1"):
        [freeze] = world.wait_commands(scope, "FREEZE")
        assert freeze["rule"] == "escalation"
        assert set(freeze["alert_ids"]) == {a["alert_id"] for a in alerts}
        assert freeze["expires_at"] is not None
        stored = wait_for(lambda s=scope: world.registry_entry(s), 30, f"{scope} in Redis")
        assert stored["command_id"] == freeze["command_id"]
    assert len(world.notices("institution:HS1", "warning.v1")) == 1  # not warned again
    # the query API answers from the same state
    status, standing = world.api("/subjects/institution/HS1")
    assert status == 200 and standing["level"] == "frozen", standing
    [institution_freeze] = world.wait_commands("institution:HS1", "FREEZE")
    assert [f["command_id"] for f in standing["freezes"]] == [institution_freeze["command_id"]]
    status, inst = world.api("/institutions/HS1")
    assert status == 200
    assert {a["alert_id"] for a in inst["open_alerts"]} == {a["alert_id"] for a in alerts}
    assert inst["rollup"]["alerts"] == 2
    status, listed = world.api("/subjects/patient/PS1/alerts")
    assert status == 200
    assert [a["alert_id"] for a in listed["alerts"]] == [a["alert_id"] for a in alerts[::-1]]
    world.wait_metric("claimstream_commands_total", 1, action="FREEZE", scope_kind="institution")


def test_a_review_moves_doctor_points_and_the_review_metrics(world: SanctionsWorld) -> None:
    t0 = now() - timedelta(minutes=2)
    world.events(violation(t0, patient="PS2", institution="HS2", doctor="DS2"))
    [alert] = world.alerts_for("PS2", 1)
    world.wait_notices("doctor:DS2", "warning.v1")  # the alert is indexed by now
    world.actions(review_action(alert["alert_id"], "confirmed", now()))
    [points] = world.wait_notices("doctor:DS2", "doctor-points.v1")
    assert (points["doctor_id"], points["delta"], points["total"]) == ("DS2", 5, 5)
    assert points["alert_id"] == alert["alert_id"]
    rule = {"rule": "gender_age_restriction"}
    world.wait_metric("claimstream_reviews_total", 1, verdict="confirmed", **rule)
    world.wait_metric("claimstream_reviewed_alerts", 1, verdict="confirmed", **rule)

    # the same verdict again changes nothing; reversing it takes the points back
    world.actions(review_action(alert["alert_id"], "confirmed", now(), by="someone.else"))
    world.actions(review_action(alert["alert_id"], "false_positive", now()))
    changes = world.wait_notices("doctor:DS2", "doctor-points.v1", n=2)
    assert [(c["delta"], c["total"]) for c in changes] == [(5, 5), (-5, 0)]
    world.wait_metric("claimstream_reviewed_alerts", 1, verdict="false_positive", **rule)
    assert world.metric("claimstream_reviewed_alerts", verdict="confirmed", **rule) == 0
    assert world.metric("claimstream_reviews_total", verdict="confirmed", **rule) == 1


def test_a_review_of_an_unknown_alert_is_dead_lettered_and_consumption_goes_on(
    world: SanctionsWorld,
) -> None:
    world.actions(review_action("alr-nobody-raised-this", "confirmed", now()))
    t0 = now() - timedelta(minutes=1)
    world.events(violation(t0, patient="PS3", institution="HS3"))
    letters = world.wait(
        DEAD, lambda got: [v for _, v in got if v["reason"] == "unknown_alert"], timeout=60
    )
    [letter] = [v for _, v in letters if v["reason"] == "unknown_alert"]
    assert letter["origin"]["topic"] == ACTIONS
    assert letter["origin"]["offset"] >= 0
    assert "alr-nobody-raised-this" in letter["detail"]
    world.wait_notices("patient:PS3", "warning.v1")  # the stream goes on
    world.wait_metric("claimstream_dead_letters_total", 1, reason="unknown_alert")


def test_the_ladder_state_survives_a_restart(world: SanctionsWorld) -> None:
    t0 = now() - timedelta(minutes=2)
    world.events(violation(t0, patient="PS5", institution="HS5", doctor="DS5"))
    world.wait_notices("institution:HS5", "warning.v1")
    [alert] = world.alerts_for("PS5", 1)
    world.restart()
    world.events(violation(t0 + timedelta(minutes=1), patient="PS5", institution="HS5"))
    try:
        [freeze] = world.wait_commands("institution:HS5", "FREEZE", timeout=60)
    except AssertionError:
        raise AssertionError(world.diagnose("PS5", "institution:HS5")) from None
    assert alert["alert_id"] in freeze["alert_ids"]  # the first alert was remembered
    world.actions(review_action(alert["alert_id"], "confirmed", now()))
    [points] = world.wait_notices("doctor:DS5", "doctor-points.v1")  # and so was the index
    assert points["total"] == 5
    assert len(world.notices("institution:HS5", "warning.v1")) == 1


def benign(occurred_at: datetime, patient: str = "PB0", institution: str = "HB0") -> dict[str, Any]:
    """A dispensing no rule objects to: moves event time forward and nothing else."""
    return {
        "event_id": f"benign-{next(_events)}-{occurred_at.timestamp():.0f}",
        "event_type": "dispense",
        "occurred_at": occurred_at.isoformat(),
        "patient_id": patient,
        "institution_id": institution,
        "drug_code": "INS",
        "days_supply": 30,
        "quantity": 4,
        "chronic": True,
        "patient_gender": "M",
        "patient_age": 40,
    }


def test_a_freeze_ends_by_expiry_once_event_time_passes_its_local_midnight(
    world: SanctionsWorld,
) -> None:
    """Last in the module: it moves the worker's event time past the end of the local day."""
    t0 = now() - timedelta(minutes=2)
    world.events(
        violation(t0, patient="PS4", institution="HS4"),
        violation(t0 + timedelta(minutes=1), patient="PS4", institution="HS4"),
    )
    [freeze] = world.wait_commands("institution:HS4", "FREEZE")
    wait_for(lambda: world.registry_entry("institution:HS4"), 30, "the freeze in Redis")
    assert world.notices("institution:HS4", "warning.v1")  # the first of the two warned
    midnight = datetime.fromisoformat(freeze["expires_at"])
    world.events(benign(midnight + timedelta(minutes=5)))
    [unfreeze] = world.wait_commands("institution:HS4", "UNFREEZE")
    assert unfreeze["rule"] == "escalation"
    assert datetime.fromisoformat(unfreeze["effective_from"]) == midnight
    assert sorted(freeze["alert_ids"]) == unfreeze["alert_ids"]
    wait_for(
        lambda: world.registry_entry("institution:HS4") is None, 30, "the freeze lifted in Redis"
    )


def offline_decisions(envelopes: list[tuple[bytes | None, dict[str, Any]]]) -> dict[str, set[str]]:
    """The ladder applied offline to the alert envelopes of claimstream.repartition.subject,
    each subject's in the order they reached it: decision ids by command action / notice
    schema. Without ticks other than each input's own time."""
    from claimstream.model.outputs import Command
    from claimstream.sanctions import Escalation
    from claimstream.sanctions.codec import alert_from_dict, to_ts
    from claimstream.sanctions.processor import parse_subject_key

    esc = Escalation()
    states: dict[str, Any] = {}
    out: dict[str, set[str]] = {}
    for raw_key, envelope in envelopes:
        assert raw_key is not None and envelope["type"] == "alert", envelope
        key = raw_key.decode()
        a = alert_from_dict(envelope["alert"])
        state = states.setdefault(key, esc.new_state(parse_subject_key(key)))
        for d in esc.on_alert(state, a, to_ts(a.occurred_at)):
            if isinstance(d, Command):
                out.setdefault(d.action, set()).add(d.command_id)
            else:
                record = d.to_dict()
                ident = next(v for k, v in record.items() if k.endswith("_id"))
                out.setdefault(record["schema"], set()).add(ident)
    return out


def test_a_simulated_month_escalates_as_the_ladder_does_offline(
    redis_url: str, tmp_path: Path
) -> None:
    """A backlog of 25 days of events (abuse injected) caught up in seconds: the ticks must
    not run ahead of alerts still on their way, so the stream decides what the ladder decides
    offline when given each subject's alerts in the order they reached it."""
    from claimstream.devtools.simulate import generate
    from claimstream.sanctions import Escalation
    from claimstream.sanctions.codec import alert_from_dict
    from tests.integration.stream_support import recent_start, replay_ids

    events = list(generate(2500, seed=11, start=recent_start()))
    expected_alerts, _, _ = replay_ids(events)
    w = SanctionsWorld(redis_url, log_path=tmp_path / "worker.log").start()
    try:
        w.events(*events)
        alerts = w.wait(ALERTS, lambda got: {v["alert_id"] for _, v in got} >= expected_alerts, 120)
        fanned_out = sum(len(Escalation().subjects(alert_from_dict(v))) for _, v in alerts)
        envelopes = w.wait(
            "claimstream.repartition.subject", lambda got: len(got) >= fanned_out, 60
        )
        expected = offline_decisions(envelopes)
        assert expected.get("warning.v1") and expected.get("FREEZE"), expected

        def decided() -> dict[str, set[str]]:
            got: dict[str, set[str]] = {}
            for _, c in w.read(COMMANDS):
                if c["rule"] in ("escalation", "doctor_points", "credit_grade"):
                    got.setdefault(c["action"], set()).add(c["command_id"])
            for _, n in w.read(NOTICES):
                ident = next(v for k, v in n.items() if k.endswith("_id"))
                got.setdefault(n["schema"], set()).add(ident)
            return got

        def agrees() -> bool:
            got = decided()
            return all(
                got.get(kind, set()) == ids for kind, ids in expected.items() if kind != "UNFREEZE"
            )

        try:
            wait_for(agrees, 60, "the stream's decisions to equal the offline ladder's")
        except AssertionError:
            got = decided()
            diff = {k: (got.get(k, set()) ^ v) for k, v in expected.items()}
            raise AssertionError(f"stream vs offline differ: {diff}") from None
        assert expected.get("UNFREEZE", set()) <= decided().get("UNFREEZE", set())
    finally:
        w.stop()
