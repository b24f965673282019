"""`claimstream produce FILE`: publish a JSON-lines file of events to the input topics.

Each line goes through the worker's own decoder first; a valid event is published, as its bytes
were, on its family's input topic (`settlement.<family>.v1`, `model.events.FAMILY_OF`: dispense
-> dispensing, consultation -> consultations, admission and discharge -> stays, claim ->
claims), keyed by its `patient_id`, on the partition Kafka's Java client would choose for that
key: `murmur2(key) & 0x7fffffff % partitions` (`kafka.actions.partition_of`, aiokafka's murmur2),
the partition the worker expects a patient's events on. Other producers must hash the same way
(librdkafka: `partitioner=murmur2_random`; see docs/cli.md).

A line that is not a valid event is refused with its line number and the decoder's reason
(the dead-letter reason codes of `claimstream validate`) and not published: by default the rest
is published and the command exits 1 at the end; `--strict` stops at the first such line
(lines before it are published: the worker drops a redelivered event by its id, so producing
the corrected file again is harmless). `--raw` publishes every line as it is, valid or not (to
exercise the dead-letter path), keyed by its `patient_id` when it has one. `--dry-run` checks
and routes everything without a broker, with the partition counts topics.toml declares.

Progress goes to stderr (a bar on a terminal, a line every 10 s otherwise), the summary (records
per topic) to stdout. Exit status: 0 all published, 1 lines refused, 2 a file that cannot be
read, bad arguments or a missing topic, 3 the broker did not answer or acknowledge.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import stat
import sys
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

HELP = (
    "publish a JSON-lines file of events to the input topics, keyed and partitioned for the worker"
)
EXAMPLE = (
    "claimstream produce events.jsonl\n"
    "         claimstream simulate 1000 | claimstream produce - --strict"
)
#: refused lines listed on stderr; the count says how many more (`validate` lists them all)
SHOWN_REFUSALS = 100
#: records in flight before waiting for the broker's acknowledgement of all of them
WINDOW = 4000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="JSON-lines file of events ('-': stdin)")
    parser.add_argument(
        "--bootstrap",
        metavar="HOST:PORT",
        help="broker (default: $CLAIMSTREAM_BROKER_URL, else kafka://127.0.0.1:9092)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="check and route every line, publish nothing (no broker needed)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="stop at the first refused line (exit 1)"
    )
    parser.add_argument(
        "--raw",
        action="store_true",
        help="publish every line as it is, even invalid ones (to test the dead-letter path)",
    )
    parser.add_argument(
        "--topic",
        metavar="NAME",
        help="publish every line to this topic instead of its family's (needed with --raw for "
        "lines without a known event_type)",
    )
    parser.add_argument(
        "--topics-file",
        metavar="F",
        help="topics declaration (default: $CLAIMSTREAM_TOPICS_FILE, else topics/topics.toml)",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        metavar="N",
        help="with --dry-run: partitions of the input topics (default: from the topics file)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="longest wait for the broker to answer or acknowledge",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


@dataclass(frozen=True, slots=True)
class Routed:
    """Where one line goes: topic, key (None: no key), the bytes to publish."""

    topic: str
    key: bytes | None
    value: bytes


@dataclass(frozen=True, slots=True)
class Refusal:
    line: int
    reason: str
    detail: str


@dataclass
class Tally:
    """What happened, for the summary."""

    records: Counter[str] = field(default_factory=Counter)
    partitions: defaultdict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    refused: list[Refusal] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    stopped_at: int | None = None
    lines: int = 0

    def publish(self, routed: Routed, partition: int | None) -> None:
        self.records[routed.topic] += 1
        if partition is not None:
            self.partitions[routed.topic][partition] += 1

    def refuse(self, refusal: Refusal, name: str, *, quiet: bool) -> None:
        self.reasons[refusal.reason] += 1
        if len(self.refused) < SHOWN_REFUSALS:
            self.refused.append(refusal)
            if not quiet:
                print(f"{name}:{refusal.line}: {refusal.reason}: {refusal.detail}", file=sys.stderr)


def family_topics(topology: Any) -> dict[str, str]:
    """event_type -> the input topic of its family, as topics.toml declares it."""
    from claimstream.cli.exits import CommandError
    from claimstream.model.events import FAMILY_OF

    inputs = {spec.name for spec in topology.by_role("input")}
    out: dict[str, str] = {}
    for event_type, family in FAMILY_OF.items():
        name = f"settlement.{family}.v1"
        if name not in inputs:
            raise CommandError(
                f"{topology.source} declares no input topic {name} for {event_type} events"
            )
        out[event_type] = name
    return out


def route(
    number: int, line: bytes, topics: Mapping[str, str], *, raw: bool, topic: str | None
) -> Routed | Refusal:
    """The topic, key and value of one line, or why it is refused."""
    import orjson

    from claimstream.detection.decode import decode_event
    from claimstream.model.rejection import Rejection

    if not raw:
        decoded = decode_event(line)
        if isinstance(decoded, Rejection):
            return Refusal(number, decoded.reason, decoded.detail)
        return Routed(topic or topics[decoded.event_type], decoded.patient_id.encode(), line)
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        obj = None
    event_type = obj.get("event_type") if isinstance(obj, dict) else None
    patient = obj.get("patient_id") if isinstance(obj, dict) else None
    key = patient.encode() if isinstance(patient, str) and patient else None
    where = topic or (topics.get(event_type) if isinstance(event_type, str) else None)
    if where is None:
        return Refusal(
            number,
            "no_topic",
            "--raw: the line has no known event_type, so no family topic; give --topic",
        )
    return Routed(where, key, line)


def run(args: argparse.Namespace) -> int:
    from claimstream.cli._lines import JsonLines
    from claimstream.cli.exits import CommandError, require_broker
    from claimstream.kafka.topology import TopologyError, load_topology

    if args.timeout <= 0:
        raise CommandError("--timeout must be greater than 0")
    if args.partitions is not None and not args.dry_run:
        raise CommandError("--partitions is for --dry-run; a broker says how many it has")
    try:
        topology = load_topology(args.topics_file, partitions=args.partitions)
    except TopologyError as exc:
        raise CommandError(str(exc)) from None
    topics = family_topics(topology)
    bootstrap = None if args.dry_run else require_broker(args.bootstrap, min(args.timeout, 5.0))
    with JsonLines(args.file) as lines:
        if args.dry_run:
            counts = {
                name: topology.topic(name).partitions
                for name in {*topics.values(), *([args.topic] if args.topic else [])}
                if name in topology.names()
            }
            if args.topic and args.topic not in counts:
                raise CommandError(f"--topic {args.topic} is not declared in {topology.source}")
            tally = asyncio.run(_run(args, lines, topics, counts, None))
        else:
            assert bootstrap is not None
            tally = asyncio.run(_publish(args, lines, topics, bootstrap))
    _report(args, lines.name, tally, bootstrap)
    return 1 if tally.reasons else 0


async def _publish(
    args: argparse.Namespace, lines: Any, topics: Mapping[str, str], bootstrap: str
) -> Tally:
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    from claimstream.cli.exits import CommandError, Unreachable, broker_unreachable
    from claimstream.kafka.security import KafkaSecurity

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        enable_idempotence=False,  # Tansu refuses idempotent producers
        linger_ms=5,
        request_timeout_ms=int(args.timeout * 1000),
        **KafkaSecurity.from_env().client_options(),  # checked by require_broker already
    )
    started = False
    try:
        try:
            async with asyncio.timeout(args.timeout):
                await producer.start()
                started = True
                # all topics' metadata: naming a missing topic would let the broker create it
                cluster = await producer.client.fetch_all_metadata()
        except (KafkaError, OSError) as exc:  # TimeoutError is an OSError
            raise broker_unreachable(exc, args.bootstrap) from None
        wanted = {*topics.values()} if args.topic is None else {args.topic}
        counts: dict[str, int] = {}
        for name in sorted(wanted):
            partitions = cluster.partitions_for_topic(name) if name in cluster.topics() else None
            if not partitions:
                raise CommandError(
                    f"topic {name} does not exist at {bootstrap}: run `claimstream topics apply`"
                )
            counts[name] = len(partitions)
        try:
            return await _run(args, lines, topics, counts, producer)
        except TimeoutError:
            raise Unreachable(
                f"the broker at {bootstrap} acknowledged nothing within {args.timeout:g} s; "
                "records sent before may or may not be published"
            ) from None
        except KafkaError as exc:
            raise Unreachable(f"publishing to {bootstrap} failed: {exc}") from None
    finally:
        if started:
            await producer.stop()
        else:  # a failed start may leave a half-open client behind
            with contextlib.suppress(Exception):
                await producer.stop()


async def _run(
    args: argparse.Namespace,
    lines: Any,
    topics: Mapping[str, str],
    counts: Mapping[str, int],
    producer: Any,
) -> Tally:
    """Route every line; publish it when `producer` is given, else only count it."""
    from claimstream.cli.progress import Progress
    from claimstream.kafka.actions import partition_of

    tally = Tally()
    progress = Progress(lines.total, unit="records")
    pending: list[asyncio.Future[Any]] = []
    quiet = args.json

    async def settle() -> None:
        if pending:
            async with asyncio.timeout(args.timeout):
                await asyncio.gather(*pending)
            pending.clear()

    try:
        async for number, line in _lines(lines, settle):
            tally.lines = number
            routed = route(number, line, topics, raw=args.raw, topic=args.topic)
            if isinstance(routed, Refusal):
                tally.refuse(routed, lines.name, quiet=quiet)
                if args.strict:
                    tally.stopped_at = number
                    break
                continue
            partition = None
            if routed.key is not None:
                partition = partition_of(routed.key, counts[routed.topic])
            if producer is not None:
                pending.append(
                    await producer.send(
                        routed.topic, routed.value, key=routed.key, partition=partition
                    )
                )
                if len(pending) >= WINDOW:
                    await settle()
            tally.publish(routed, partition)
            if tally.lines % 1024 == 0:
                progress.update(lines.consumed, sum(tally.records.values()))
        await settle()
    finally:
        progress.close()
    return tally


async def _lines(lines: Any, idle: Any) -> AsyncIterator[tuple[int, bytes]]:
    """The lines of `lines`. A regular file is read directly; a pipe or terminal on stdin is
    read without blocking the event loop, and `idle()` (acknowledge what was sent) runs
    whenever no line arrives for a moment, so slowly fed input is published as it comes."""
    source = sys.stdin.buffer if lines.path == "-" else None
    if source is None or stat.S_ISREG(os.fstat(source.fileno()).st_mode):
        for number, line in lines:
            yield number, line
            if number % 512 == 0:
                await asyncio.sleep(0)  # let the producer's sender run
        return
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), source
    )
    try:
        number = 0
        rest = b""
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(1 << 20), 0.2)
            except TimeoutError:
                await idle()
                continue
            if not chunk:  # end of input: a last line without its newline still counts
                if rest.strip():
                    lines.consumed += len(rest)
                    yield number + 1, rest.strip()
                return
            *complete, rest = (rest + chunk).split(b"\n")
            for line in complete:
                number += 1
                lines.consumed += len(line) + 1
                stripped = line.strip()
                if stripped:
                    yield number, stripped
    finally:
        transport.close()


def _report(args: argparse.Namespace, name: str, tally: Tally, bootstrap: str | None) -> None:
    import orjson

    published = sum(tally.records.values())
    refused = sum(tally.reasons.values())
    verb = "would publish" if args.dry_run else "published"
    if args.json:
        out = {
            "file": name,
            "dry_run": args.dry_run,
            "bootstrap": bootstrap,
            "published": 0 if args.dry_run else published,
            "records": published,
            "refused": refused,
            "reasons": dict(sorted(tally.reasons.items())),
            "refusals": [
                {"line": r.line, "reason": r.reason, "detail": r.detail} for r in tally.refused
            ],
            "stopped_at_line": tally.stopped_at,
            "topics": {
                topic: {
                    "records": n,
                    "partitions": {str(p): c for p, c in sorted(tally.partitions[topic].items())},
                }
                for topic, n in sorted(tally.records.items())
            },
        }
        print(orjson.dumps(out).decode())
        return
    if refused > len(tally.refused):
        more = refused - len(tally.refused)
        print(f"... and {more:,} more refused lines (`claimstream validate` lists them all)",
              file=sys.stderr)  # fmt: skip
    where = " (dry run: nothing sent)" if args.dry_run else f" to {bootstrap}"
    print(f"{verb} {published:,} records{where}")
    width = max((len(t) for t in tally.records), default=0)
    for topic, n in sorted(tally.records.items()):
        print(f"  {topic:<{width}}  {n:>9,}")
    if refused:
        reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(tally.reasons.items()))
        print(f"refused {refused:,} line(s), not published ({reasons})")
    if tally.stopped_at is not None:
        print(f"--strict: stopped at line {tally.stopped_at}; nothing after it was read")
