"""Prometheus metrics of a claimstream worker, on a registry the caller owns.

There is no module-level registry and no module-level metric: a worker (or a test) builds one
`Metrics(CollectorRegistry())` and passes it to whatever records something, so two apps in one
process never collide ("Duplicated timeseries") and every test starts from zero.

Labels are bounded by construction. Every label value comes from a closed set known when the
worker starts: rule names (the `RULES` registry), severities, modes, actions, key kinds,
dead-letter reasons, event types and the topic names of `topics/topics.toml`. A value outside
its set is counted under `"other"`, never used as given: a patient, doctor or institution id
can never become a label value (ids belong in alerts, not in metrics; one label value per id
would mean one time series per patient). `tests/test_metrics.py` enforces this.

What the worker calls, and when:

- `event_consumed(topic, event_type)` for every record read from an input topic (event type
  `"unknown"` when it could not be decoded; such a record is also a `dead_letter`);
- `dead_letter(reason)` for every record sent to the dead-letter topic;
- `batch(size)` once per batch taken from the stream;
- `alert_emitted(alert, mode, emitted_at=..., arrived_at=...)` for every alert produced;
- `violation_amount(rule, amount, source)` for every enforce-mode alert with an amount (the
  stream pipeline, `source="stream"`) and every violation a pre-settlement check returns
  (`source="check"`): `claimstream_violation_amount_yuan_total` is the fund amount flagged;
- `command_issued(command)` for every settlement command produced;
- `set_active_freezes(kind, n)`, `set_state_keys(rule, n)`, `set_consumer_lag(...)`,
  `set_assigned_partitions(...)` and `set_rule_config_version(v)` from a periodic task;
- `review_recorded(rule, verdict)` when a person's verdict on an alert is recorded or changed
  (the sanctions index agent; a repeated verdict is not counted again);
- `set_reviewed_alerts({rule: (confirmed, reviewed)})` after each batch of the index agent:
  the alerts of this worker's partitions whose latest verdict is `confirmed` /
  `false_positive`; per-rule precision is `claimstream:rule_precision:ratio`, a recording rule
  summing them over workers (deploy/prometheus/rules/claimstream.rules.yml);
- `sanction_notice(schema)` for every warning, grade change and points change published;
- `action_refused(reason)` for every person's action the sanctions agents refused before it
  changed anything (`unsigned_action`, `unknown_key`, `bad_signature`, `stale_action`; each is
  also a dead letter): someone without a key tried to act, or a keyring is missing a key;
- `set_sink_up(sink, up)` when an output sink (the Kafka topics, the freeze registry) starts
  failing or is back (`stream.sinks`: once per outage, not per retry);
- `registry_rebuilding(trigger)` and `registry_rebuilt(trigger, outcome)` around every rebuild
  of the freeze registry the worker's guard runs on its own (`freezes.guard`: Redis lost the
  registry, or restarted);
- `check_answered(decision)` for every pre-settlement check answered (`POST /v1/check`, on the
  worker that evaluated it; a forwarded one is not counted by the forwarder);
- `check_override(rule, handling)` for every violation a check's feedback answered (the
  sanctions index agent, once per feedback action id);
- casework (`claimstream.stream.cases`): `case_action(action, outcome)` for every case action
  read (applied, refused by the procedure, or a repeat), `case_money(stage, amount)` for every
  money line added to a case (flagged by an alert, confirmed by a decision, deducted,
  recovered: `claimstream_case_money_yuan_total`), and `set_cases_overdue({step: n})` from the
  cases tick (cases of this worker's partitions whose current step is past its due time);
  reports from the public: `case_action(report_*, outcome)` for every report action read, and
  `set_reports_overdue({stage: n})` from the same tick (reports of this worker's partitions
  past a deadline with nothing done: respond, accept, feedback);
- event-time alignment of the doctor and institution agents (docs/time.md §5), by key kind:
  `set_events_waiting(kind, n)` after each of their batches (events held until the input
  partitions' watermark passes them), `events_unaligned(kind, n)` for events applied at once,
  out of event-time order (their partition ran more than the lateness behind, or came back
  after being idle: their alerts may differ from `replay`'s), and `set_aligned_lag(kind,
  seconds)` about once a second (wall clock minus the aligned watermark: how far behind the
  input partitions' confirmed progress is; the alerts of these kinds wait that plus the
  slack);
- the peer comparison (issue #15), by the peer-group agent: `indicator_record(outcome)` per
  institution month record read, `peer_groups_compared(n)` per group month compared,
  `peer_outlier(indicator)` per peer_outlier alert (no institution or group label).

The exposition is `exposition()` (body and content type) for any web server, e.g. a
`GET /metrics` route on the worker's own web server.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any, Final, Protocol

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from claimstream import __version__
from claimstream.model.events import EVENT_TYPES, KEY_KINDS
from claimstream.model.indicators import INDICATORS
from claimstream.model.outputs import SEVERITIES, Alert, Command
from claimstream.model.rejection import REASONS
from claimstream.rules.custom.settings import NAME as RULE_NAME

__all__ = [
    "ACTIONS",
    "ALIGNED_KINDS",
    "CASE_ACTIONS",
    "CASE_OUTCOMES",
    "CASE_STEPS",
    "CHECK_DECISIONS",
    "CHECK_HANDLINGS",
    "DEAD_LETTER_REASONS",
    "DETECTION_LATENCY_BUCKETS",
    "INDICATOR_OUTCOMES",
    "LABEL_NAMES",
    "MAX_RULE_LABELS",
    "MODES",
    "MONEY_STAGES",
    "NOTICES",
    "OTHER",
    "PEER_INDICATORS",
    "REBUILD_OUTCOMES",
    "REBUILD_TRIGGERS",
    "REFUSED_ACTIONS",
    "REPORT_ACTIONS",
    "REPORT_STAGES",
    "SINKS",
    "SOURCES",
    "VERDICTS",
    "ConsumerLike",
    "Metrics",
]

#: The value a label takes when what the caller passed is outside its bounded set.
OTHER: Final = "other"
#: The most rule names that get a label value of their own, built-in and custom together (a
#: configuration is bounded, but a label must stay bounded whatever it holds).
MAX_RULE_LABELS: Final = 100

MODES: Final = ("enforce", "shadow")
ACTIONS: Final = ("FREEZE", "UNFREEZE", "SUSPEND")
#: The core's rejection reasons plus what the stream adapter itself may dead-letter (the
#: sanctions agents: an alert or action record that is not one, an action about an alert
#: the index does not hold).
DEAD_LETTER_REASONS: Final[tuple[str, ...]] = (
    *REASONS,
    "processing_error",
    "wrong_key",
    "invalid_alert",
    "invalid_action",
    "invalid_envelope",
    "unknown_alert",
    # people's actions refused (claimstream.sanctions.signatures.REFUSED)
    "unsigned_action",
    "unknown_key",
    "bad_signature",
    "stale_action",
)
#: Why a person's action was refused (claimstream.sanctions.signatures.REFUSED).
REFUSED_ACTIONS: Final = ("unsigned_action", "unknown_key", "bad_signature", "stale_action")
#: What the peer stage did with an institution month record (`detection.peers`), and the
#: indicators it compares (`model.indicators.INDICATORS`).
INDICATOR_OUTCOMES: Final = ("stored", "duplicate", "late", "invalid")
PEER_INDICATORS: Final = tuple(INDICATORS)
#: The key kinds whose events wait for the input partitions' watermark (docs/time.md §5).
ALIGNED_KINDS: Final = ("doctor", "institution", "trace_code")
#: Review outcomes, as in action.v1: precision of a rule = confirmed / reviewed.
VERDICTS: Final = ("confirmed", "false_positive")
#: Escalation notices on claimstream.sanctions.v1, by schema.
NOTICES: Final = ("warning.v1", "grade-change.v1", "doctor-points.v1")
#: The worker's output sinks (`Sink.name`): Kafka topics, the freeze registry, in-process.
SINKS: Final = ("kafka", "registry", "memory")
#: Why the worker's guard rebuilt the freeze registry (`freezes.guard.TRIGGERS`): it held
#: nothing when the worker started, it lost its data, its Redis restarted with data.
REBUILD_TRIGGERS: Final = ("start", "lost", "restart")
#: How a rebuild ended (`freezes.guard.OUTCOMES`): nothing differed, keys were written, failed.
REBUILD_OUTCOMES: Final = ("clean", "repaired", "failed")
#: Where a violation amount was found: an alert of the stream, a pre-settlement check.
SOURCES: Final = ("stream", "check")
#: What a pre-settlement check answers (`claimstream.detection.check.DECISIONS`).
CHECK_DECISIONS: Final = ("pass", "warn", "hold", "reject")
#: What a clinician did with a check's violation (`claimstream.sanctions.actions.HANDLINGS`).
CHECK_HANDLINGS: Final = ("modified", "continued", "cancelled")
#: Casework (claimstream.cases): the steps with a deadline, the case action types, what became
#: of a case action, and the stages of the money a case follows.
CASE_STEPS: Final = ("first_review", "re_review", "appeal", "investigation", "decision")
CASE_ACTIONS: Final = ("case_open", "case_advance", "case_assign", "case_decide", "case_recover")
CASE_OUTCOMES: Final = ("applied", "refused", "repeated")
#: Reports from the public (claimstream.cases.reports): the report action types (counted with
#: the case actions) and the deadlines a report may be overdue at.
REPORT_ACTIONS: Final = (
    "report_receive",
    "report_acknowledge",
    "report_accept",
    "report_reject",
    "report_feedback",
    "report_reward",
)
REPORT_STAGES: Final = ("respond", "accept", "feedback")
MONEY_STAGES: Final = ("flagged", "confirmed", "deducted", "recovered")
#: Every label name any claimstream metric may carry (the test checks the exposition).
LABEL_NAMES: Final = frozenset(
    {
        "topic",
        "partition",
        "event_type",
        "reason",
        "rule",
        "severity",
        "mode",
        "action",
        "scope_kind",
        "key_kind",
        "verdict",
        "notice",
        "version",
        "app_id",
        "store",
        "sink",
        "trigger",
        "outcome",
        "source",
        "decision",
        "handling",
        "step",
        "stage",
        "case_action",
        "result",
        "indicator",
    }
)

#: Seconds. Arrival-to-alert is normally well under a second; event-time-to-alert also holds
#: producer delay and allowed lateness (up to an hour by default), hence the long tail.
DETECTION_LATENCY_BUCKETS: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    900.0,
    3600.0,
)
BATCH_SIZE_BUCKETS: Final = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
_EVENT_TYPES: Final = (*sorted(EVENT_TYPES), "unknown")
_TOPIC_NAME = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
#: Partition numbers are small integers; anything else is not a partition.
_MAX_PARTITION: Final = 4096


class TopicPartitionLike(Protocol):
    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...


class ConsumerLike(Protocol):
    """What `Metrics.sample_consumer` needs of a consumer (faust's `app.consumer` has it)."""

    def assignment(self) -> AbstractSet[Any]: ...
    def highwater(self, tp: Any) -> int | None: ...
    async def position(self, tp: Any) -> int | None: ...


def _bounded(value: str, allowed: Iterable[str]) -> str:
    return value if value in allowed else OTHER


def _parse_iso(value: str) -> float | None:
    try:
        return datetime.fromisoformat(value).timestamp()
    except (TypeError, ValueError):
        return None


def _declared_topics() -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(every topic name, the input topics) of topics.toml, or None if it cannot be loaded."""
    from claimstream.kafka.topology import TopologyError, load_topology

    try:
        topology = load_topology()
    except TopologyError:
        return None
    return topology.names(), tuple(spec.name for spec in topology.by_role("input"))


class Metrics:
    """Every metric of one claimstream worker, registered on `registry`.

    `rules` are the rule names (default: the `RULES` registry); `topics` the topic names the
    worker may label with (default: the names declared in topics.toml; if that file cannot be
    found, any syntactically valid topic name, which configuration bounds, never data).
    `input_topics` (default: the input topics of topics.toml when `topics` is not given) get
    their `claimstream_events_consumed_total` series created at zero for every event type.
    `process=True` also registers the standard `process_*` and `python_info` collectors.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        rules: Iterable[str] | None = None,
        topics: Iterable[str] | None = None,
        input_topics: Iterable[str] | None = None,
        process: bool = True,
    ) -> None:
        if rules is None:
            from claimstream.rules import RULES

            rules = RULES
        self.registry = registry
        self.rules: tuple[str, ...] = tuple(sorted(rules))
        inputs: tuple[str, ...] = tuple(input_topics or ())
        if topics is None:
            declared = _declared_topics()
            if declared is not None:
                topics, inputs = declared[0], inputs or declared[1]
        self.topics: frozenset[str] | None = None if topics is None else frozenset(topics)
        if process:
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)

        self.worker_info = Info(
            "claimstream_worker",
            "Constant 1 per running worker, labelled with its version and settings.",
            registry=registry,
        )
        self.start_time = Gauge(
            "claimstream_worker_start_time_seconds",
            "Unix time the worker started.",
            registry=registry,
        )
        self.events_consumed = Counter(
            "claimstream_events_consumed_total",
            "Records read from the input topics, by topic and event type "
            "(event_type=unknown: not decodable, also counted as a dead letter).",
            ("topic", "event_type"),
            registry=registry,
        )
        self.last_event = Gauge(
            "claimstream_last_event_consumed_timestamp_seconds",
            "Unix time (wall clock) the last input record was read; the start time until then.",
            registry=registry,
        )
        self.dead_letters = Counter(
            "claimstream_dead_letters_total",
            "Records sent to the dead-letter topic, by reason.",
            ("reason",),
            registry=registry,
        )
        self.alerts = Counter(
            "claimstream_alerts_total",
            "Alerts emitted, by rule, severity and mode (enforce or shadow).",
            ("rule", "severity", "mode"),
            registry=registry,
        )
        self.violation_amounts = Counter(
            "claimstream_violation_amount_yuan",
            "Violation amounts in yuan (each alert's or check violation's `amount`, by the "
            "rule's formula in docs/rules.md), by rule and source (stream: enforce-mode alerts; "
            "check: violations returned by pre-settlement checks). Violations whose events "
            "carry no price add nothing.",
            ("rule", "source"),
            registry=registry,
        )
        self.commands = Counter(
            "claimstream_commands_total",
            "Settlement commands issued, by action and the kind of their scope.",
            ("action", "scope_kind"),
            registry=registry,
        )
        self.active_freezes = Gauge(
            "claimstream_active_freezes",
            "Freezes and suspensions in force in the freeze registry, by scope kind.",
            ("scope_kind",),
            registry=registry,
        )
        self.detection_latency = Histogram(
            "claimstream_detection_latency_seconds",
            "Event time (occurred_at of the completing event) to alert emitted, by rule.",
            ("rule",),
            buckets=DETECTION_LATENCY_BUCKETS,
            registry=registry,
        )
        self.processing_latency = Histogram(
            "claimstream_processing_latency_seconds",
            "Arrival of the completing record at the worker to alert emitted, by rule.",
            ("rule",),
            buckets=DETECTION_LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "claimstream_batch_size",
            "Records per batch taken from the stream.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self.state_keys = Gauge(
            "claimstream_state_keys",
            "Keys holding live state, by rule, in this worker's partitions.",
            ("rule",),
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "claimstream_consumer_lag",
            "Records behind the end of the partition (high watermark minus committed offset).",
            ("topic", "partition"),
            registry=registry,
        )
        self.assigned_partitions = Gauge(
            "claimstream_assigned_partitions",
            "Partitions currently assigned to this worker, by topic.",
            ("topic",),
            registry=registry,
        )
        self.rule_config_version = Gauge(
            "claimstream_rule_config_version",
            "Version of the detection configuration in force (bumped by every rule change).",
            registry=registry,
        )
        self.reviews = Counter(
            "claimstream_reviews_total",
            "Verdicts on alerts recorded (first verdict or a changed one), by rule and verdict "
            "(confirmed, false_positive).",
            ("rule", "verdict"),
            registry=registry,
        )
        self.reviewed_alerts = Gauge(
            "claimstream_reviewed_alerts",
            "Reviewed alerts of this worker's partitions by the rule that raised them and their "
            "latest verdict (since the alert index began); precision = confirmed / all.",
            ("rule", "verdict"),
            registry=registry,
        )
        self.refused_actions = Counter(
            "claimstream_refused_actions_total",
            "People's actions (reviews, unfreezes, remediations) refused before they changed "
            "anything, by reason (unsigned_action, unknown_key, bad_signature, stale_action); "
            "each is also a dead letter.",
            ("reason",),
            registry=registry,
        )
        self.sanction_notices = Counter(
            "claimstream_sanction_notices_total",
            "Escalation notices published on claimstream.sanctions.v1, by schema (warning.v1, "
            "grade-change.v1, doctor-points.v1).",
            ("notice",),
            registry=registry,
        )
        self.events_waiting = Gauge(
            "claimstream_aligned_events_waiting",
            "Doctor- and institution-keyed events waiting until the input partitions' "
            "watermark has passed them (then their rules see them in event-time order), by "
            "key kind, in this worker.",
            ("key_kind",),
            registry=registry,
        )
        self.unaligned = Counter(
            "claimstream_aligned_events_out_of_order_total",
            "Doctor- and institution-keyed events applied at once, out of event-time order, "
            "because they arrived behind what their key had already released (their input "
            "partition ran more than the allowed lateness behind, or came back after being "
            "idle); their alerts may differ from replay's. By key kind.",
            ("key_kind",),
            registry=registry,
        )
        self.aligned_lag = Gauge(
            "claimstream_aligned_watermark_lag_seconds",
            "Wall clock minus the watermark the doctor and institution agents release by (the "
            "least confirmed progress of the active input partitions), by key kind; their "
            "alerts wait this plus the alignment slack.",
            ("key_kind",),
            registry=registry,
        )

        self.sink_up = Gauge(
            "claimstream_sink_up",
            "1 while the output sink's writes succeed, 0 from its first failed write until one "
            "succeeds again (writes are retried meanwhile and consumption waits), by sink "
            "(kafka, registry).",
            ("sink",),
            registry=registry,
        )
        self.registry_rebuilds = Counter(
            "claimstream_registry_rebuilds_total",
            "Rebuilds of the freeze registry from the commands topic this worker ran on its own, "
            "by trigger (start: empty when the worker started; lost: Redis lost its data; "
            "restart: Redis restarted with its data) and outcome (clean: nothing differed; "
            "repaired: keys were written; failed: tried again shortly).",
            ("trigger", "outcome"),
            registry=registry,
        )
        self.registry_rebuilding_gauge = Gauge(
            "claimstream_registry_rebuilding",
            "1 while this worker rebuilds the freeze registry (from a loss until the rebuild "
            "succeeded, failed attempts included), else 0.",
            registry=registry,
        )

        self.indicator_records = Counter(
            "claimstream_indicator_records_total",
            "Institution month records (claimstream.indicators.v1) the peer-group agent read, by "
            "outcome (stored; duplicate: a redelivery; late: its month had closed for the "
            "group, dropped; invalid: not a record, dead-lettered).",
            ("outcome",),
            registry=registry,
        )
        self.peer_groups_evaluated = Counter(
            "claimstream_peer_groups_evaluated_total",
            "Peer-group months compared (closed with at least min_group_size institutions).",
            registry=registry,
        )
        self.peer_outliers = Counter(
            "claimstream_peer_outliers_total",
            "peer_outlier alerts (enforce and shadow), by indicator.",
            ("indicator",),
            registry=registry,
        )

        self.checks = Counter(
            "claimstream_checks_total",
            "Pre-settlement checks answered (POST /v1/check) by the worker that evaluated them, "
            "by decision (pass, warn, hold, reject).",
            ("decision",),
            registry=registry,
        )
        self.check_overrides = Counter(
            "claimstream_check_overrides_total",
            "Violations of pre-settlement checks answered by a clinician's feedback, by rule and "
            "handling (modified, continued: settled anyway, cancelled); counted once per "
            "feedback by the worker owning its partition of the actions topic.",
            ("rule", "handling"),
            registry=registry,
        )

        self.cases_overdue = Gauge(
            "claimstream_cases_overdue",
            "Cases of this worker's partitions whose current step is past its due time (working "
            "days on the holiday calendar, judged at the sanctions' event time), by step.",
            ("step",),
            registry=registry,
        )
        self.reports_overdue = Gauge(
            "claimstream_reports_overdue",
            "Reports from the public held by this worker's partitions that are past a deadline "
            "with nothing done (respond: 48 h; accept: 5 working days; feedback: 7 days), by "
            "stage.",
            ("stage",),
            registry=registry,
        )
        self.case_actions = Counter(
            "claimstream_case_actions_total",
            "People's case and report actions read by the cases agent, by type and result "
            "(applied, refused by the procedure, repeated: already applied).",
            ("case_action", "result"),
            registry=registry,
        )
        self.money_on_cases = Counter(
            "claimstream_case_money_yuan_total",
            "Fund money (yuan) entered on cases, by stage: flagged by alerts, confirmed by "
            "decisions, deducted from settlements, recovered.",
            ("stage",),
            registry=registry,
        )

        # Every bounded combination starts at zero, so rate()/increase() see the first event
        # and dashboards show 0 rather than "no data".
        labelled_rules = (*self.rules, OTHER)
        for rule in labelled_rules:
            self.detection_latency.labels(rule)
            self.processing_latency.labels(rule)
            for severity in SEVERITIES:
                for mode in MODES:
                    self.alerts.labels(rule, severity, mode)
            for verdict in VERDICTS:
                self.reviews.labels(rule, verdict)
                self.reviewed_alerts.labels(rule, verdict)
            for source in SOURCES:
                self.violation_amounts.labels(rule, source)
            for handling in CHECK_HANDLINGS:
                self.check_overrides.labels(rule, handling)
        for decision in CHECK_DECISIONS:
            self.checks.labels(decision)
        for topic in inputs:
            for event_type in _EVENT_TYPES:
                self.events_consumed.labels(self._topic(topic), event_type)
        for notice in NOTICES:
            self.sanction_notices.labels(notice)
        for reason in DEAD_LETTER_REASONS:
            self.dead_letters.labels(reason)
        for reason in REFUSED_ACTIONS:
            self.refused_actions.labels(reason)
        for action in ACTIONS:
            for kind in KEY_KINDS:
                self.commands.labels(action, kind)
        for kind in KEY_KINDS:
            self.active_freezes.labels(kind)
        for rule in self.rules:
            self.state_keys.labels(rule)
        for trigger in REBUILD_TRIGGERS:
            for outcome in REBUILD_OUTCOMES:
                self.registry_rebuilds.labels(trigger, outcome)
        self.registry_rebuilding_gauge.set(0)
        for step in CASE_STEPS:
            self.cases_overdue.labels(step)
        for report_stage in REPORT_STAGES:
            self.reports_overdue.labels(report_stage)
        for case_action in (*CASE_ACTIONS, *REPORT_ACTIONS):
            for case_outcome in CASE_OUTCOMES:
                self.case_actions.labels(case_action, case_outcome)
        for stage in MONEY_STAGES:
            self.money_on_cases.labels(stage)
        for aligned in ALIGNED_KINDS:
            self.events_waiting.labels(aligned)
            self.unaligned.labels(aligned)
        for outcome in INDICATOR_OUTCOMES:
            self.indicator_records.labels(outcome)
        for indicator in PEER_INDICATORS:
            self.peer_outliers.labels(indicator)

        now = time.time()
        self.start_time.set(now)
        self.last_event.set(now)

    # -- identity ---------------------------------------------------------------------------

    def worker_started(
        self, *, app_id: str = "claimstream", store: str = "memory", config_version: int = 1
    ) -> None:
        """Label the worker (version, app id, store scheme) and record its config version."""
        scheme = store.split(":", 1)[0] if store else "memory"
        self.worker_info.info(
            {
                "version": __version__,
                "app_id": app_id if _TOPIC_NAME.match(app_id) else OTHER,
                "store": _bounded(scheme, ("memory", "rocksdb", "aerospike")),
            }
        )
        self.set_rule_config_version(config_version)

    # -- per record -------------------------------------------------------------------------

    def event_consumed(self, topic: str, event_type: str, n: int = 1) -> None:
        self.events_consumed.labels(self._topic(topic), _bounded(event_type, _EVENT_TYPES)).inc(n)
        self.last_event.set(time.time())

    def dead_letter(self, reason: str) -> None:
        self.dead_letters.labels(_bounded(reason, DEAD_LETTER_REASONS)).inc()

    def batch(self, size: int) -> None:
        self.batch_size.observe(size)

    def alert_emitted(
        self,
        alert: Alert,
        mode: str,
        *,
        emitted_at: float | None = None,
        arrived_at: float | None = None,
        event_ts: float | None = None,
    ) -> None:
        """Count `alert` and observe its latencies.

        `emitted_at` is the wall-clock time the alert was handed to the sinks (default: now);
        `arrived_at` the wall-clock time the completing record reached the worker (no
        arrival-to-alert observation without it); `event_ts` that record's event time (default:
        `alert.occurred_at` parsed). Negative latencies (clock skew) are observed as 0.
        """
        rule = self._rule(alert.rule)
        self.alerts.labels(rule, _bounded(alert.severity, SEVERITIES), _bounded(mode, MODES)).inc()
        now = time.time() if emitted_at is None else emitted_at
        occurred = _parse_iso(alert.occurred_at) if event_ts is None else event_ts
        if occurred is not None and math.isfinite(occurred):
            self.detection_latency.labels(rule).observe(max(0.0, now - occurred))
        if arrived_at is not None:
            self.processing_latency.labels(rule).observe(max(0.0, now - arrived_at))

    def violation_amount(self, rule: str, amount: float | None, source: str = "stream") -> None:
        """Add a violation's amount (yuan) to its rule's total; None, a negative or a non-finite
        amount adds nothing."""
        if amount is None or not math.isfinite(amount) or amount <= 0:
            return
        self.violation_amounts.labels(self._rule(rule), _bounded(source, SOURCES)).inc(amount)

    def command_issued(self, command: Command) -> None:
        self.commands.labels(
            _bounded(command.action, ACTIONS), _bounded(command.scope.kind, KEY_KINDS)
        ).inc()

    def review_recorded(self, rule: str, verdict: str) -> None:
        self.reviews.labels(self._rule(rule), _bounded(verdict, VERDICTS)).inc()

    def check_answered(self, decision: str) -> None:
        self.checks.labels(_bounded(decision, CHECK_DECISIONS)).inc()

    def check_override(self, rule: str, handling: str) -> None:
        self.check_overrides.labels(self._rule(rule), _bounded(handling, CHECK_HANDLINGS)).inc()

    def action_refused(self, reason: str) -> None:
        self.refused_actions.labels(_bounded(reason, REFUSED_ACTIONS)).inc()

    def sanction_notice(self, schema: str) -> None:
        self.sanction_notices.labels(_bounded(schema, NOTICES)).inc()

    def set_reviewed_alerts(self, counts: dict[str, tuple[int, int]]) -> None:
        """`{rule: (confirmed, reviewed)}` over this worker's partitions (a rule outside the
        known set is summed into "other"); rules not named are set to 0."""
        totals: dict[str, list[int]] = {}
        for rule, (confirmed, reviewed) in counts.items():
            row = totals.setdefault(self._rule(rule), [0, 0])
            row[0] += confirmed
            row[1] += reviewed
        for rule in (*self.rules, OTHER):
            confirmed, reviewed = totals.get(rule, (0, 0))
            self.reviewed_alerts.labels(rule, "confirmed").set(confirmed)
            self.reviewed_alerts.labels(rule, "false_positive").set(reviewed - confirmed)

    # -- outputs and the freeze registry ----------------------------------------------------

    def case_action(self, action: str, outcome: str) -> None:
        self.case_actions.labels(
            _bounded(action, (*CASE_ACTIONS, *REPORT_ACTIONS)), _bounded(outcome, CASE_OUTCOMES)
        ).inc()

    def case_money(self, stage: str, amount: float) -> None:
        if amount > 0 and math.isfinite(amount):
            self.money_on_cases.labels(_bounded(stage, MONEY_STAGES)).inc(amount)

    def set_cases_overdue(self, counts: dict[str, int]) -> None:
        """Overdue cases per step (steps not named are set to 0)."""
        for step in CASE_STEPS:
            self.cases_overdue.labels(step).set(counts.get(step, 0))

    def set_reports_overdue(self, counts: dict[str, int]) -> None:
        """Reports overdue per stage (stages not named are set to 0)."""
        for stage in REPORT_STAGES:
            self.reports_overdue.labels(stage).set(counts.get(stage, 0))

    def set_sink_up(self, sink: str, up: bool) -> None:
        self.sink_up.labels(_bounded(sink, SINKS)).set(1 if up else 0)

    def registry_rebuilding(self, trigger: str) -> None:
        """A rebuild of the freeze registry starts (`trigger`: why)."""
        self.registry_rebuilding_gauge.set(1)

    def registry_rebuilt(self, trigger: str, outcome: str) -> None:
        """A rebuild ended; a failed one leaves the gauge at 1 (it is tried again)."""
        self.registry_rebuilds.labels(
            _bounded(trigger, REBUILD_TRIGGERS), _bounded(outcome, REBUILD_OUTCOMES)
        ).inc()
        if outcome != "failed":
            self.registry_rebuilding_gauge.set(0)

    # -- periodic ---------------------------------------------------------------------------

    def set_active_freezes(self, scope_kind: str, count: int) -> None:
        self.active_freezes.labels(_bounded(scope_kind, KEY_KINDS)).set(count)

    def set_state_keys(self, rule: str, count: int) -> None:
        self.state_keys.labels(self._rule(rule)).set(count)

    def set_consumer_lag(self, topic: str, partition: int, lag: int) -> None:
        self.consumer_lag.labels(self._topic(topic), self._partition(partition)).set(max(0, lag))

    def clear_consumer_lag(self) -> None:
        """Forget every partition's lag (after a rebalance took partitions away)."""
        self.consumer_lag.clear()

    def set_assigned_partitions(self, topic: str, count: int) -> None:
        self.assigned_partitions.labels(self._topic(topic)).set(count)

    def set_rule_config_version(self, version: int) -> None:
        self.rule_config_version.set(version)

    def indicator_record(self, outcome: str, n: int = 1) -> None:
        self.indicator_records.labels(_bounded(outcome, INDICATOR_OUTCOMES)).inc(n)

    def peer_groups_compared(self, n: int = 1) -> None:
        self.peer_groups_evaluated.inc(n)

    def peer_outlier(self, indicator: str) -> None:
        self.peer_outliers.labels(_bounded(indicator, PEER_INDICATORS)).inc()

    def set_events_waiting(self, kind: str, count: int) -> None:
        self.events_waiting.labels(_bounded(kind, ALIGNED_KINDS)).set(count)

    def events_unaligned(self, kind: str, n: int = 1) -> None:
        self.unaligned.labels(_bounded(kind, ALIGNED_KINDS)).inc(n)

    def set_aligned_lag(self, kind: str, seconds: float) -> None:
        self.aligned_lag.labels(_bounded(kind, ALIGNED_KINDS)).set(seconds)

    async def sample_consumer(self, consumer: ConsumerLike) -> None:
        """Set consumer lag and assigned partitions from a faust (or aiokafka) consumer.

        Lag of a partition is its high watermark minus the consumer's position (records not
        yet read). Partitions no longer assigned (after a rebalance) disappear from the gauge.
        Call it from a periodic task of the worker, e.g. every 10 s.
        """
        samples: list[tuple[str, int, int]] = []
        per_topic: dict[str, int] = {}
        for tp in sorted(consumer.assignment(), key=lambda tp: (tp.topic, tp.partition)):
            per_topic[tp.topic] = per_topic.get(tp.topic, 0) + 1
            try:
                highwater = consumer.highwater(tp)
                position = await consumer.position(tp)
            except Exception:  # noqa: BLE001, S112  (revoked meanwhile: skip it this time)
                continue
            if highwater is None or position is None:
                continue  # nothing fetched yet for this partition
            samples.append((tp.topic, tp.partition, int(highwater) - int(position)))
        # no await below: a scrape never sees the gauges half-updated
        self.consumer_lag.clear()
        for topic, partition, lag in samples:
            self.set_consumer_lag(topic, partition, lag)
        self.assigned_partitions.clear()
        for topic, count in per_topic.items():
            self.set_assigned_partitions(topic, count)

    # -- exposition -------------------------------------------------------------------------

    def exposition(self) -> tuple[bytes, str]:
        """The text exposition of the registry and its content type, for a `/metrics` route."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    # -- label bounding ---------------------------------------------------------------------

    def _rule(self, rule: str) -> str:
        return _bounded(rule, self.rules)

    def name_rules(self, names: Iterable[str]) -> None:
        """Give rules of the configuration in force beyond the built-ins (custom rules) label
        values of their own, up to `MAX_RULE_LABELS` in all; the rest stay under "other".
        Called whenever a configuration is applied; a name once given stays (its series
        do)."""
        known = set(self.rules)
        for name in sorted(names):
            if len(known) >= MAX_RULE_LABELS:
                break
            if name not in known and RULE_NAME.fullmatch(name):
                known.add(name)
        self.rules = tuple(sorted(known))

    def _topic(self, topic: str) -> str:
        if self.topics is not None:
            return _bounded(topic, self.topics)
        return topic if _TOPIC_NAME.match(topic) else OTHER

    @staticmethod
    def _partition(partition: int) -> str:
        if isinstance(partition, int) and 0 <= partition < _MAX_PARTITION:
            return str(partition)
        return OTHER
