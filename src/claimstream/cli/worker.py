"""`claimstream worker`: the production entry point, configured by CLAIMSTREAM_* variables.

Runs one faust worker of the app built by `create_app(Settings.from_env())` until SIGTERM or
SIGINT, then stops cleanly (agents finish their batch, offsets of handled batches are
committed, connections closed). Before starting it checks that every declared topic exists as
declared (`--apply-topics` creates missing ones), because a worker touching a missing topic
makes auto-creating brokers create it with the wrong partition count; and, when
`CLAIMSTREAM_REDIS_URL` is set, that Redis answers.

Exit status: 0 stopped cleanly, 1 the topics differ from topics.toml (nothing started), 2 an
invalid setting or a `CLAIMSTREAM_*` variable that is none, 3 the broker or Redis did not
answer.
"""

from __future__ import annotations

import argparse

HELP = "run the stream worker (configured by CLAIMSTREAM_* environment variables)"
EXAMPLE = "claimstream worker --apply-topics   # with CLAIMSTREAM_REDIS_URL etc. set"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--apply-topics",
        action="store_true",
        help="create missing declared topics before starting (default: only check them)",
    )
    parser.add_argument(
        "--skip-topic-check", action="store_true", help="start without checking the topics"
    )
    parser.add_argument(
        "--loglevel", default=None, help="log level (default: $CLAIMSTREAM_LOG_LEVEL, WARNING)"
    )


def run(args: argparse.Namespace) -> int:
    import sys

    from claimstream.cli.exits import CommandError, require_broker
    from claimstream.model.config import ConfigError
    from claimstream.stream.settings import Settings

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        raise CommandError(str(exc)) from None
    if args.loglevel:
        settings = settings.replace(log_level=args.loglevel)
    if (problem := settings.audit_problem()) is not None:
        raise CommandError(problem)
    # None: $CLAIMSTREAM_BROKER_URL or the default, as Settings read it
    require_broker(None, security=settings.kafka_security)
    if settings.redis_url:
        check_redis(settings.redis_url, settings.redis_options)
    if not args.skip_topic_check:
        problem = check_topics(settings, create=args.apply_topics)
        if problem:
            print(f"claimstream worker: {problem}", file=sys.stderr)
            return 1
    return run_worker(settings)


def check_redis(url: str, options: object = None) -> None:
    """Return when Redis at `url` (reached with `options`, a `RedisOptions`) answers a PING;
    else `Unreachable` (exit 3), or a usage error (exit 2) when it refuses the login, a command
    or the TLS handshake."""
    import asyncio

    from redis.exceptions import RedisError

    from claimstream.cli.exits import CommandError, redis_failure
    from claimstream.freezes.connection import RedisOptions, close, connect

    assert options is None or isinstance(options, RedisOptions)

    async def ping() -> None:
        client = connect(url, options, socket_connect_timeout=5, socket_timeout=5)
        try:
            await client.ping()
        finally:
            await close(client)

    try:
        asyncio.run(ping())
    except (RedisError, OSError) as exc:  # before ValueError: a certificate error is both
        raise redis_failure(url, exc) from None
    except ValueError as exc:  # a URL redis-py cannot parse
        raise CommandError(f"CLAIMSTREAM_REDIS_URL: {exc}") from None


def check_topics(settings: object, *, create: bool) -> str | None:
    """None when every declared topic exists as declared, else what is wrong (an unreachable
    broker raises `Unreachable`)."""
    from claimstream.cli.exits import CommandError, broker_unreachable
    from claimstream.kafka.admin import apply_topics_sync
    from claimstream.kafka.topology import TopologyError, load_topology
    from claimstream.kafka.url import BrokerUnreachable, bootstrap_servers
    from claimstream.stream.settings import Settings

    assert isinstance(settings, Settings)
    try:
        topology = load_topology(settings.topics_file, partitions=settings.partitions)
    except TopologyError as exc:
        raise CommandError(str(exc)) from None
    try:
        report = apply_topics_sync(
            bootstrap_servers(settings.broker_url),
            topology,
            create=create,
            security=settings.kafka_security,
        )
    except (BrokerUnreachable, TimeoutError) as exc:
        raise broker_unreachable(exc, None) from None
    if report.in_sync:
        return None
    return (
        "topics differ from topics.toml (run `claimstream topics apply` or pass --apply-topics):\n"
        + report.format_table()
    )


def run_worker(settings: object) -> int:
    """Run a faust worker for `settings` in this process until it is told to stop.

    Once its partitions are assigned it prints one line to stdout (broker, consumer group,
    partitions held per topic, web URL). When stdout or stderr is not a terminal (a container
    log, a file) mode's progress spinner is switched off: it writes cursor escapes and
    backspaces even there; the log lines themselves are uncoloured off a terminal.
    Third-party libraries log at INFO or above whatever the level (their DEBUG output quotes
    records, ids included); a token file, key or keyring that cannot be used exits 2.
    """
    import sys

    from claimstream.cli.exits import CommandError
    from claimstream.kafka.url import bootstrap_servers
    from claimstream.model.config import ConfigError
    from claimstream.stream import create_app
    from claimstream.stream.collector import tune as tune_collector
    from claimstream.stream.settings import Settings
    from claimstream.stream.startup import announce_when_assigned, worker_class

    assert isinstance(settings, Settings)
    try:
        app = create_app(settings)
    except ConfigError as exc:  # a token file, key or keyring that cannot be used
        raise CommandError(str(exc)) from None
    tune_collector(settings.gc_thresholds)  # after the app is built: it is frozen with the rest

    def write(line: str) -> None:
        print(line, flush=True)

    announce_when_assigned(
        app,
        broker=bootstrap_servers(settings.broker_url),
        group=settings.app_id,
        web_url=str(app.conf.canonical_url),
        write=write,
    )
    worker = worker_class()(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    if not (sys.stdout.isatty() and sys.stderr.isatty()):
        worker.spinner = None
    worker.execute_from_commandline()  # returns only by SystemExit after shutdown
    return 0
