"""`create_app(settings)`: the faust app of one claimstream worker, built fresh on every call.

Wiring only, and explicit: each part gets what it uses and nothing else.

* `detection/`: one agent per key kind (`install_detection`), the peer-group agent
  (`install_peers`, issue #15) and the control-topic follower;
* `sanctions/`: the route, index and subject agents and their tick (`install_sanctions`),
  whose runtime is also the API's `SanctionsView`;
* `audit.py`: the audit agent; `cases.py`: the casework agents and their overdue tick (on the
  sanctions' event-time clock); `gauges.py`: the periodic gauges;
* `http/`: the routes on faust's web server (an aiohttp application): the API, the
  pre-settlement check (`http/check.py`, on a copy of the patient agent's state), freezes,
  status and metrics, `/health` and `/ready`, every error as JSON, each route behind the role
  `http/access.py` gives it; faust's own web views (tables, graph, stats) are switched off;
* `sanctions/keys.py`: the key the API signs people's actions with, and the keyring the
  sanctions agents verify them against.

The output sinks (Kafka topics and the freeze registry by default) are one `SinkSet`, opened by
the first agent that runs and closed at shutdown. A Redis registry is looked after by a guard
that rebuilds it from the commands topic when Redis lost it (`sinks.watch_registry`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast

import faust
from prometheus_client import CollectorRegistry

from claimstream.cases.processor import CASES
from claimstream.cases.report_processor import REPORTS
from claimstream.detection.engine import Engine
from claimstream.detection.sinks.base import Sink
from claimstream.freezes.base import FreezeRegistry
from claimstream.freezes.guard import RegistryGuard
from claimstream.freezes.redis import RedisRegistry, registry_from_url
from claimstream.freezes.sink import RegistrySink
from claimstream.kafka.actions import ACTIONS_TOPIC
from claimstream.kafka.sink import KafkaSink, OutputTopics
from claimstream.kafka.suspensions import SuspensionsFeed
from claimstream.kafka.topology import Topology, load_topology
from claimstream.kafka.url import bootstrap_servers, broker_url
from claimstream.observability.metrics import Metrics
from claimstream.reference.suspensions import Suspensions
from claimstream.stream.audit import install_audit
from claimstream.stream.batches import Batching
from claimstream.stream.cases import (
    CasesRuntime,
    install_cases,
    procedure_from,
    report_settings_from,
)
from claimstream.stream.consumer import Bounds, consumer_class
from claimstream.stream.detection.agents import Detection, follow_control_topic, install_detection
from claimstream.stream.detection.peers import TABLE as PEER_GROUPS
from claimstream.stream.detection.peers import install_peers
from claimstream.stream.gauges import install_gauges
from claimstream.stream.http.access import Access, access_control
from claimstream.stream.http.api import ALERT, ALERT_TOPIC, SUBJECT, SUBJECT_TOPIC, Api, ApiSettings
from claimstream.stream.http.benchmark import PEERS, benchmark_routes
from claimstream.stream.http.cases import CASE, case_routes
from claimstream.stream.http.check import (
    PATIENT,
    PATIENT_TABLE,
    CheckService,
    PostForwarder,
    check_routes,
    worker_recovering,
)
from claimstream.stream.http.console.pages import console_routes, owner_fetch
from claimstream.stream.http.errors import json_errors
from claimstream.stream.http.health import health_routes, worker_checks
from claimstream.stream.http.reports import REPORT, report_routes
from claimstream.stream.http.routes import Forwarder, api_routes, router_owner
from claimstream.stream.http.views import worker_routes
from claimstream.stream.publish import BatchPublisher
from claimstream.stream.sanctions.agents import install_sanctions
from claimstream.stream.sanctions.keys import ActionKeys, action_keys
from claimstream.stream.sanctions.runtime import ALERT_INDEX, SUBJECT_STATE, SanctionsRuntime
from claimstream.stream.settings import Settings
from claimstream.stream.sinks import SinkSet, watch_registry
from claimstream.stream.upkeep import install_upkeep


def create_app(
    settings: Settings,
    *,
    sinks: Sequence[Sink] | None = None,
    registry: FreezeRegistry | None = None,
    metrics: Metrics | None = None,
    topology: Topology | None = None,
) -> faust.App:
    """A new faust app for `settings`.

    `sinks` replaces the default output sinks (Kafka topics + freeze registry); `registry`
    the freeze registry (default: Redis at `settings.redis_url`, else in-process); `metrics` a
    `Metrics` on a registry the caller owns (default: a fresh one, served at `/metrics`).
    Raises `ConfigError` when a token file, key or keyring cannot be used.
    """
    keys = action_keys(
        signing_key_file=settings.action_signing_key_file,
        keys_file=settings.action_keys_file,
        accept_unsigned=settings.accept_unsigned_actions,
    )
    access = (
        Access.configure(
            tokens_file=settings.api_tokens_file,
            tokens=settings.api_tokens,
            legacy=settings.api_token,
        )
        if settings.web_enabled
        else Access()
    )
    topology = topology or load_topology(settings.topics_file, partitions=settings.partitions)
    registry = registry or registry_from_url(
        settings.redis_url, settings.redis_prefix, settings.redis_options
    )
    metrics = metrics or Metrics(CollectorRegistry())
    metrics.name_rules(settings.detection.custom_rules)
    app = _faust_app(settings, topology)
    publisher = _publisher(app, settings, topology)
    outputs = SinkSet(
        [KafkaSink(publisher, OutputTopics()), RegistrySink(registry)] if sinks is None else sinks,
        metrics,
    )
    guard = None
    if isinstance(registry, RedisRegistry):
        guard = watch_registry(
            app,
            registry,
            outputs,
            bootstrap=bootstrap_servers(settings.broker_url),
            topic=OutputTopics().commands,
            security=settings.kafka_security,
        )
    batching = Batching(settings.batch_size, settings.batch_within, settings.batch_reader)
    # the doctors' suspensions in force, followed from the commands topic, for every engine
    suspensions = Suspensions()
    feed = SuspensionsFeed(
        bootstrap_servers(settings.broker_url), suspensions, security=settings.kafka_security
    )

    async def follow_suspensions() -> None:
        await feed.run()

    app.task(follow_suspensions)
    detection = install_detection(
        app,
        topology=topology,
        engine=Engine(settings.detection, time.time, suspensions),
        sinks=outputs,
        publisher=publisher,
        metrics=metrics,
        batching=batching,
        sweep_interval=settings.sweep_interval,
        sweep_slice=settings.sweep_slice,
        compact_state=settings.compact_state,
    )
    detection.peers = install_peers(
        app,
        topology=topology,
        engine=lambda: detection.engine,
        sinks=outputs,
        publisher=publisher,
        metrics=metrics,
        batching=batching,
    )
    if settings.control_enabled:
        follow_control_topic(
            app,
            bootstrap_servers(settings.broker_url),
            detection,
            metrics,
            security=settings.kafka_security,
            suspensions=suspensions,
        )
    sanctions: SanctionsRuntime | None = None
    if settings.sanctions_enabled:
        sanctions = install_sanctions(
            app,
            topology=topology,
            settings=settings.sanctions,
            publisher=publisher,
            sinks=outputs,
            metrics=metrics,
            watermarks=detection.watermarks,
            detection_topics=detection.topic_kinds(),
            verifier=keys.verifier,
            batching=batching,
            sweep_interval=settings.sweep_interval,
            sweep_slice=settings.sweep_slice,
            tick_interval=settings.sanctions_tick_interval,
            tick_delay=settings.sanctions_tick_delay,
            alerts_per_subject=settings.sanctions_alerts_per_subject,
        )
    cases: CasesRuntime | None = None
    if settings.cases_enabled:
        cases = install_cases(
            app,
            topology=topology,
            procedure=procedure_from(
                step_days=settings.cases_step_days,
                group_days=settings.cases_group_days,
                calendar_file=settings.cases_calendar_file,
                tz=settings.detection.tz,
            ),
            publisher=publisher,
            sinks=outputs,
            metrics=metrics,
            verifier=keys.verifier,
            batching=batching,
            clock=sanctions.watermark if sanctions is not None else None,
            tick_interval=settings.cases_tick_interval,
            min_severity=settings.cases_min_severity,
            report_settings=report_settings_from(settings),
        )
    if settings.audit_enabled:
        install_audit(
            app,
            topology=topology,
            publisher=publisher,
            sinks=outputs,
            metrics=metrics,
            batching=batching,
            keys=settings.audit_keys,
        )
    install_gauges(
        app,
        interval=settings.gauge_interval,
        metrics=metrics,
        registry=registry,
        input_topics=detection.input_topics,
        state_tables=detection.tables,
    )
    install_upkeep(
        app, interval=settings.malloc_trim_interval, handled=lambda: detection.counters.records
    )
    _serve(
        app,
        settings,
        topology,
        detection,
        sanctions,
        publisher,
        registry,
        metrics,
        keys,
        access,
        guard,
        cases,
    )
    metrics.worker_started(
        app_id=settings.app_id, store=settings.store, config_version=settings.detection.version
    )

    async def _close(sender: Any, *args: Any, signal: Any = None, **kwargs: Any) -> None:
        detection.stop()
        await outputs.stop()

    app.on_before_shutdown.connect(cast(Any, _close))
    return app


def _faust_app(settings: Settings, topology: Topology) -> faust.App:
    bounds = Bounds.for_batches(settings.batch_size, settings.fetch_bytes)
    app = faust.App(
        settings.app_id,
        broker=broker_url(settings.broker_url),
        # TLS and SASL (`CLAIMSTREAM_KAFKA_*`): faust hands them to each aiokafka client it makes
        broker_credentials=settings.kafka_security.faust_credentials(),
        store=settings.store,
        datadir=settings.data_dir,
        autodiscover=False,
        topic_partitions=topology.default_partitions,
        topic_replication_factor=topology.topics[0].replication_factor,
        topic_allow_declare=False,  # topics are code: `claimstream topics apply` creates them
        processing_guarantee=settings.processing_guarantee,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.commit_interval,
        **bounds.faust_settings(),
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=min(3.0, settings.session_timeout / 5),
        producer_linger_ms=0,
        web_enabled=settings.web_enabled,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        # faust's own views: /table serves table values (ids, histories), /graph, /stats and
        # /performance the worker's internals; all off (`http/access.py` answers 404 for any
        # route it has no policy for, should one come back). /router (which worker holds which
        # partitions) stays, for admins only.
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_metrics_enabled=False,
        key_serializer="raw",
        value_serializer="raw",
        table_cleanup_interval=3600.0,
        table_standby_replicas=settings.standby_replicas,
    )
    bounds.apply(app)
    cast(Any, app.transport).Consumer = consumer_class(
        settings.fetch_wait_ms, bounds.response_bytes
    )
    return app


def _publisher(app: faust.App, settings: Settings, topology: Topology) -> BatchPublisher:
    # On Tansu every topic we write ends each flush with a one-record batch: its high
    # watermark (the last batch's base offset + 1) bounds what consumers can fetch too, so the
    # tail of a multi-record batch of alerts, commands or re-keyed events would stay invisible
    # until the next write to that partition, and of a changelog, to recovery.
    written = frozenset(
        spec.name for spec in topology.topics if spec.role in ("changelog", "output", "repartition")
    )
    return BatchPublisher(
        app,
        {spec.name: spec.partitions for spec in topology.topics},
        single_record_topics=written if settings.broker_flavor == "tansu" else frozenset(),
    )


def _serve(
    app: faust.App,
    settings: Settings,
    topology: Topology,
    detection: Detection,
    sanctions: SanctionsRuntime | None,
    publisher: BatchPublisher,
    registry: FreezeRegistry,
    metrics: Metrics,
    keys: ActionKeys,
    access: Access,
    guard: RegistryGuard | None,
    cases: CasesRuntime | None = None,
) -> None:
    """Add every route, the access control and the JSON errors to faust's web server."""
    if not settings.web_enabled:
        return
    worker_url = str(app.conf.canonical_url)

    def partitions(topic: str) -> int | None:
        try:
            return topology.topic(topic).partitions
        except KeyError:
            return None

    api = Api(
        sanctions,
        publisher.send_and_wait,
        ApiSettings(
            accept_unsigned=settings.accept_unsigned_actions,
            sanctions_enabled=settings.sanctions_enabled,
            actions_partitions=partitions(ACTIONS_TOPIC) or 1,
            partitions={SUBJECT: partitions(SUBJECT_TOPIC), ALERT: partitions(ALERT_TOPIC)},
        ),
        tz=lambda: detection.engine.config.tz,
        signer=keys.signer,
    )

    def status() -> dict[str, Any]:
        body = detection.status()
        body["registry"] = type(registry).__name__
        body["assigned"] = sorted(
            f"{tp.topic}:{tp.partition}"
            for tp in app.consumer.assignment()
            if tp.topic in detection.input_topics
        )
        return body

    checks = CheckService(
        engine=lambda: detection.engine,
        state=lambda patient: detection.state("patient", patient),
        registry=registry,
        metrics=metrics,
        recovering=worker_recovering(app),
        registry_state=guard.trusted if guard is not None else lambda: None,
    )
    owner_of = router_owner(
        app,
        {
            SUBJECT: SUBJECT_STATE,
            ALERT: ALERT_INDEX,
            PATIENT: PATIENT_TABLE,
            CASE: CASES,
            REPORT: REPORTS,
            PEERS: PEER_GROUPS,
        },
    )
    session = lambda: cast(Any, app.http_client)  # noqa: E731
    web_app = cast(Any, app.web).web_app
    web_app.middlewares.append(json_errors)
    web_app.middlewares.append(access_control(access))
    web_app.add_routes(
        [
            *worker_routes(
                registry=registry,
                status=status,
                exposition=lambda: metrics.exposition()[0],
                registry_state=guard.trusted if guard is not None else lambda: None,
            ),
            *api_routes(
                api,
                worker_url=worker_url,
                owner_of=owner_of,
                forward=Forwarder(session, worker_url),
            ),
            *check_routes(
                checks,
                api,
                tz=lambda: detection.engine.config.tz,
                worker_url=worker_url,
                owner_of=owner_of,
                forward=PostForwarder(session, worker_url),
            ),
            *case_routes(
                cases,
                api,
                tz=lambda: detection.engine.config.tz,
                worker_url=worker_url,
                owner_of=owner_of,
                forward=Forwarder(session, worker_url),
            ),
            *report_routes(
                cases,
                api,
                tz=lambda: detection.engine.config.tz,
                worker_url=worker_url,
                owner_of=owner_of,
                forward=Forwarder(session, worker_url),
            ),
            *health_routes(worker_checks(app, registry)),
            # the benchmark's records: the peer-group agent's table (#15), once recovered;
            # until then the route answers 503
            *benchmark_routes(
                lambda: (
                    detection.peers
                    if detection.peers is not None and detection.peers.ready
                    else None
                ),
                group_of=lambda institution: detection.engine.context.reference.peer_group(
                    institution, None
                ),
                owner_of=owner_of,
                forward=Forwarder(session, worker_url),
            ),
            *console_routes(
                cases,
                api,
                access,
                tz=lambda: detection.engine.config.tz,
                owner_of=owner_of,
                fetch=owner_fetch(session, worker_url),
            ),
        ]
    )
