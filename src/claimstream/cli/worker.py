"""`claimstream worker`: the production entry point, configured by CLAIMSTREAM_* variables.

Runs one faust worker of the app built by `create_app(Settings.from_env())` until SIGTERM or
SIGINT, then stops cleanly (agents finish their batch, offsets of handled batches are
committed, connections closed). Before starting it checks that every declared topic exists as
declared (`--apply-topics` creates missing ones), because a worker touching a missing topic
makes auto-creating brokers create it with the wrong partition count.
"""

from __future__ import annotations

import argparse

HELP = "run the stream worker (configured by CLAIMSTREAM_* environment variables)"


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

    from claimstream.model.config import ConfigError
    from claimstream.stream.settings import Settings

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"claimstream worker: {exc}", file=sys.stderr)
        return 2
    if args.loglevel:
        settings = settings.replace(log_level=args.loglevel)
    if not args.skip_topic_check:
        problem = check_topics(settings, create=args.apply_topics)
        if problem:
            print(f"claimstream worker: {problem}", file=sys.stderr)
            return 3
    return run_worker(settings)


def check_topics(settings: object, *, create: bool) -> str | None:
    """None when every declared topic exists as declared, else what is wrong."""
    from aiokafka.errors import KafkaError

    from claimstream.kafka.admin import apply_topics_sync
    from claimstream.kafka.topology import load_topology
    from claimstream.kafka.url import bootstrap_servers
    from claimstream.stream.settings import Settings

    assert isinstance(settings, Settings)
    topology = load_topology(settings.topics_file, partitions=settings.partitions)
    try:
        report = apply_topics_sync(bootstrap_servers(settings.broker_url), topology, create=create)
    except (OSError, TimeoutError, KafkaError) as exc:
        return f"cannot check topics on {settings.broker_url}: {type(exc).__name__}: {exc}"
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
    """
    import sys

    import faust

    from claimstream.kafka.url import bootstrap_servers
    from claimstream.stream import create_app
    from claimstream.stream.settings import Settings
    from claimstream.stream.startup import announce_when_assigned

    assert isinstance(settings, Settings)
    app = create_app(settings)

    def write(line: str) -> None:
        print(line, flush=True)

    announce_when_assigned(
        app,
        broker=bootstrap_servers(settings.broker_url),
        group=settings.app_id,
        web_url=str(app.conf.canonical_url),
        write=write,
    )
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True, redirect_stdouts=False)
    if not (sys.stdout.isatty() and sys.stderr.isatty()):
        worker.spinner = None
    worker.execute_from_commandline()  # returns only by SystemExit after shutdown
    return 0
