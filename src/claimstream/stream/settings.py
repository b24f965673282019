"""Worker settings, read from the environment (12-factor), with the defaults documented in README.

Everything the worker, the demo and the bench need to know about where they run lives here, so
`create_app(settings)` is a pure function of one value and tests build apps with `Settings(...)`
instead of patching the environment. Rule thresholds come from variables named
`CLAIMSTREAM_RULE__<RULE>__<SETTING>`
(e.g. `CLAIMSTREAM_RULE__REPEAT_DISPENSING__EARLY_REFILL_TOLERANCE=0.25`) and engine settings
from `CLAIMSTREAM_ENGINE__<SETTING>`; both go through
`DetectionConfig.with_rule_changes` / `with_engine_changes`, which validate and refuse bad values.

How the worker reaches Kafka and Redis securely (TLS, SASL, Redis ACL user and password file)
comes from `CLAIMSTREAM_KAFKA_*` (`claimstream.kafka.security.KafkaSecurity`) and the
`CLAIMSTREAM_REDIS_*` variables beside the URL (`claimstream.freezes.connection.RedisOptions`):
the same parsers the commands use, so the worker and every command agree on them.

A `CLAIMSTREAM_*` variable that is none of these (`CLAIMSTREAM_REDIS_ULR`) is refused by
`check_variables`, naming it and the closest known name: ignored, it would leave the worker
running with a default nobody chose (a registry nobody reads, a broker nobody meant).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from claimstream.audit.settings import WriterSettings
from claimstream.detection.config import DetectionConfig
from claimstream.freezes import connection as redis_connection
from claimstream.freezes.connection import RedisOptions
from claimstream.kafka import security as kafka_security
from claimstream.kafka.security import KafkaSecurity
from claimstream.kafka.url import DEFAULT_BROKER_URL, broker_url
from claimstream.model.config import ConfigError, env_flag
from claimstream.sanctions.settings import SanctionSettings
from claimstream.stream.collector import DEFAULT as DEFAULT_GC_THRESHOLDS
from claimstream.stream.collector import thresholds

Guarantee = Literal["at_least_once", "exactly_once"]
Flavor = Literal["kafka", "tansu"]
_PREFIX = "CLAIMSTREAM_"
_RULE_PREFIX = "CLAIMSTREAM_RULE__"
_ENGINE_PREFIX = "CLAIMSTREAM_ENGINE__"
_SANCTIONS_PREFIX = "CLAIMSTREAM_SANCTIONS__"
_VARIABLE_PREFIXES = (_RULE_PREFIX, _ENGINE_PREFIX, _SANCTIONS_PREFIX)
#: the variables `claimstream.audit.settings.WriterSettings.from_env` reads
AUDIT_WRITER_VARIABLES = tuple(
    _PREFIX + "AUDIT_" + name
    for name in (
        "HMAC_KEY",
        "HMAC_KEY_FILE",
        "SIGNING_KEY",
        "SIGNING_KEY_FILE",
        "CHECKPOINT_DIR",
        "CHECKPOINT_INTERVAL",
        "UNKEYED",
    )
)
#: `CLAIMSTREAM_*` variables that are no `Settings` field: the detection's time zone shorthand,
#: and those only tools, tests and the deployment files read (`grep -rhoE 'CLAIMSTREAM_[A-Z_]+'
#: src tests deploy Makefile` lists them all; tests/stream/test_settings.py keeps this in step).
OTHER_VARIABLES = frozenset(
    (
        _PREFIX + "TIMEZONE",  # shorthand of CLAIMSTREAM_ENGINE__TIMEZONE (and the sanctions')
        _PREFIX + "REPLICATION_FACTOR",  # deploy/compose.yaml: replicas of the created topics
        _PREFIX + "IMAGE_TAG",  # deploy/compose.yaml: the worker image
        _PREFIX + "REAL_KAFKA",  # tests: a real Kafka to run the broker tests against
        _PREFIX + "TEST_STORE",  # tests: the table store of the workers the integration tests start
        _PREFIX + "BROKER_PID",  # `claimstream broker --detach`: the process that stops it
        _PREFIX + "CLIENT_TOKEN",  # the bearer token the command line presents to a worker's API
        # the audit trail's keys and checkpoints (claimstream.audit.settings reads them)
        *AUDIT_WRITER_VARIABLES,
        _PREFIX + "AUDIT_PUBLIC_KEY_FILE",  # `claimstream audit verify` only
    )
)
#: the transport's variables: Kafka's TLS and SASL, and Redis's password file and TLS files
#: (read by `KafkaSecurity.from_env` and `RedisOptions.from_env`, as `Settings` fields)
TRANSPORT_VARIABLES = frozenset(kafka_security.VARIABLES) | frozenset(redis_connection.VARIABLES)
#: `Settings` fields read from their own families of variables, not from one variable each
NESTED = ("detection", "sanctions", "audit_keys", "kafka_security", "redis_options")


@dataclass(frozen=True, slots=True)
class Settings:
    """How one worker connects, stores state and batches. Immutable; `replace` makes variants."""

    broker_url: str = DEFAULT_BROKER_URL
    redis_url: str | None = None
    #: prefix of every Redis key the freeze registry writes (see claimstream.freezes.base)
    redis_prefix: str = "claimstream"
    #: faust table store: `memory://` (state rebuilt from changelogs on start) or `rocksdb://`.
    store: str = "memory://"
    data_dir: str = "claimstream-data"
    #: partitions of every co-partitioned topic; None: what topics.toml declares.
    partitions: int | None = None
    topics_file: str | None = None
    app_id: str = "claimstream"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    web_enabled: bool = True
    processing_guarantee: Guarantee = "at_least_once"
    #: events handed to the engine at a time, and the longest wait to fill a batch.
    batch_size: int = 4000
    batch_within: float = 0.05
    #: `queue` reads the agent's channel in bulk (faster); `take` uses faust's take_events
    batch_reader: str = "queue"
    #: bytes fetched per partition per request. Small on purpose: the partitions and topics of
    #: a batch then cover about the same span of event time (faust's 4 MB default lets one
    #: topic run hours ahead of another during a catch-up, and rules see that as lateness)
    fetch_bytes: int = 65536
    #: longest a fetch may wait for data (faust hard-codes 1500 ms; see stream.consumer)
    fetch_wait_ms: int = 100
    #: seconds without heartbeat after which the group gives a dead worker's partitions away
    session_timeout: float = 30.0
    #: `kafka` (Apache Kafka, the default) or `tansu` (the local development broker): on Tansu
    #: the last changelog record of each partition in a flush goes in a batch of its own,
    #: because Tansu reports a partition's end offset as its last batch's base offset + 1, and
    #: faust's table recovery stops there.
    broker_flavor: Flavor = "kafka"
    commit_interval: float = 1.0
    #: standby copies of every table partition kept warm by other workers (faust's
    #: `table_standby_replicas`): 1 makes a failover quick but has every worker also consume
    #: the changelogs of partitions it does not own; 0 saves that, and a partition's new owner
    #: replays its changelog before it resumes (docs/operations.md, "Standby replicas")
    standby_replicas: int = 1
    #: the detection states (`state-<kind>` tables) on the memory store held as orjson bytes
    #: (`stream.encoded`): a fraction of the memory, one decode per key and batch
    compact_state: bool = True
    #: how often idle keys are swept (seconds of wall time); each sweep visits a bounded slice.
    sweep_interval: float = 30.0
    sweep_slice: int = 20_000
    log_level: str = "WARNING"
    #: the garbage collector's thresholds `young,middle,old`, or `python` for CPython's own
    #: (`stream.collector`: fewer, shorter collections of a heap of long-lived key state)
    gc_thresholds: str = DEFAULT_GC_THRESHOLDS
    #: seconds between samples of the level gauges (lag, live keys, active freezes)
    gauge_interval: float = 15.0
    #: glibc's heap is trimmed (`malloc_trim`) when the detection agents' work stops, and at
    #: most this often while it goes on (`stream.upkeep`); 0: never
    malloc_trim_interval: float = 60.0
    #: follow the control topic (`claimstream rules set`) and apply configuration changes live
    control_enabled: bool = True
    #: run the sanctions ladder (warnings, freezes, suspensions, grades, points) on the alerts
    sanctions_enabled: bool = True
    #: seconds of wall time between two sanctions ticks (freeze expiry -> UNFREEZE)
    sanctions_tick_interval: float = 10.0
    #: ticks follow the detection watermark less this many seconds of event time, so an alert
    #: still on its way through the sanctions topics is not judged after its day was closed
    sanctions_tick_delay: float = 60.0
    #: newest alerts kept per subject for the API (bounds a subject's state record)
    sanctions_alerts_per_subject: int = 1000
    #: run the casework agents: alerts grouped into cases, case actions, overdue steps
    cases_enabled: bool = True
    #: the holiday calendar of the cases' working days (CSV); None: the shipped default
    cases_calendar_file: str | None = None
    #: working days per step: `15` (each) or `first_review=10,appeal=20` (the others 15)
    cases_step_days: str = "15"
    #: an alert joins its subject's case when within this many days of its first alert
    cases_group_days: int = 30
    #: alerts below this severity open no case
    cases_min_severity: str = "warning"
    #: seconds of wall time between two overdue checks of the cases
    cases_tick_interval: float = 10.0
    #: a report from the public is answered within these hours, decided on (and a real-name
    #: reporter told) within these working days, given feedback within these days
    reports_respond_hours: float = 48.0
    reports_accept_days: int = 5
    reports_feedback_days: float = 7.0
    #: append every alert, command, review and manual action to the audit hash chain
    audit_enabled: bool = True
    #: deprecated: one bearer token with the `reviewer` role (docs/security.md)
    api_token: str | None = None
    #: the API's tokens, `NAME ROLES sha256:HEX` a line, re-read when the file changes
    api_tokens_file: str | None = None
    #: the same lines inline, separated by `;` (read once)
    api_tokens: str | None = None
    #: Ed25519 private key (PEM) the API signs people's actions with
    action_signing_key_file: str | None = None
    #: keyring of the public keys people's actions are accepted from (re-read when it changes)
    action_keys_file: str | None = None
    #: development only: apply unsigned people's actions
    accept_unsigned_actions: bool = False
    detection: DetectionConfig = field(default_factory=DetectionConfig.default)
    #: the ladder, doctor points and credit grades (`CLAIMSTREAM_SANCTIONS__...`)
    sanctions: SanctionSettings = field(default_factory=SanctionSettings)
    #: the audit trail's HMAC key ring, checkpoint signer and store (`CLAIMSTREAM_AUDIT_*`,
    #: see `claimstream.audit.settings`); None writes an unkeyed trail (tests that build
    #: Settings in code). `from_env` requires keys, or `CLAIMSTREAM_AUDIT_UNKEYED=true`.
    audit_keys: WriterSettings | None = None
    #: TLS and SASL of every Kafka connection (`CLAIMSTREAM_KAFKA_*`)
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
    #: Redis's password file and TLS files (`CLAIMSTREAM_REDIS_PASSWORD_FILE`, `_TLS_*`)
    redis_options: RedisOptions = field(default_factory=RedisOptions)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from `CLAIMSTREAM_*` variables; unset ones keep the defaults above.

        Raises `ConfigError` naming the variable when a value cannot be used, or when a
        `CLAIMSTREAM_*` variable is not one we know (`check_variables`).
        """
        env = os.environ if environ is None else environ
        check_variables(env)
        base = cls()
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            if f.name in NESTED:
                continue
            name = _PREFIX + f.name.upper()
            if name in env:
                values[f.name] = _parse(name, env[name], getattr(base, f.name), f.name)
        if "broker_url" in values:
            try:
                values["broker_url"] = broker_url(str(values["broker_url"]))
            except ValueError as exc:
                raise ConfigError(f"{_PREFIX}BROKER_URL: {exc}") from None
        optional_text = (
            "redis_url",
            "api_token",
            "api_tokens_file",
            "api_tokens",
            "action_signing_key_file",
            "action_keys_file",
            "cases_calendar_file",
        )
        for optional in optional_text:
            if values.get(optional) == "":
                values[optional] = None
        guarantee = values.get("processing_guarantee")
        if guarantee is not None and guarantee not in ("at_least_once", "exactly_once"):
            raise ConfigError(
                f"{_PREFIX}PROCESSING_GUARANTEE must be at_least_once or exactly_once"
            )
        severity = values.get("cases_min_severity")
        if severity is not None and severity not in ("info", "warning", "high", "critical"):
            raise ConfigError(
                f"{_PREFIX}CASES_MIN_SEVERITY must be info, warning, high or critical"
            )
        flavor = values.get("broker_flavor")
        if flavor is not None and flavor not in ("kafka", "tansu"):
            raise ConfigError(f"{_PREFIX}BROKER_FLAVOR must be kafka or tansu")
        if "gc_thresholds" in values:
            try:
                thresholds(str(values["gc_thresholds"]))
            except ConfigError as exc:
                raise ConfigError(f"{_PREFIX}GC_THRESHOLDS: {exc}") from None
        values["detection"] = detection_from_env(env)
        values["sanctions"] = sanctions_from_env(env)
        values["kafka_security"] = KafkaSecurity.from_env(env)
        redis_url = values.get("redis_url", base.redis_url)
        values["redis_options"] = RedisOptions.for_url(redis_url, env)  # type: ignore[arg-type]
        if values.get("audit_enabled", base.audit_enabled) and any(
            env.get(name) for name in AUDIT_WRITER_VARIABLES
        ):
            values["audit_keys"] = WriterSettings.from_env(env)
        return dataclasses.replace(base, **values)  # type: ignore[arg-type]

    def audit_problem(self) -> str | None:
        """Why a worker with these settings must not start its audit trail (None: it may).

        A production worker chains with keys; without them it would write a trail anyone
        who can reach the audit topic could rewrite, so it refuses unless told otherwise."""
        if not self.audit_enabled or self.audit_keys is not None:
            return None
        return (
            "the audit trail needs its keys: set CLAIMSTREAM_AUDIT_HMAC_KEY_FILE, "
            "CLAIMSTREAM_AUDIT_SIGNING_KEY_FILE and CLAIMSTREAM_AUDIT_CHECKPOINT_DIR "
            "(`claimstream audit keygen --dir DIR` makes the keys; docs/audit.md), or "
            "CLAIMSTREAM_AUDIT_UNKEYED=true for development only"
        )

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def known_variables() -> frozenset[str]:
    """Every exact `CLAIMSTREAM_*` name we read (besides the `RULE__`, `ENGINE__` and
    `SANCTIONS__` families, whose members `from_env` checks one by one)."""
    fields = dataclasses.fields(Settings)
    names = {_PREFIX + f.name.upper() for f in fields if f.name not in NESTED}
    return frozenset(names) | OTHER_VARIABLES | TRANSPORT_VARIABLES


def unknown_variables(env: Mapping[str, str]) -> list[tuple[str, str | None]]:
    """(name, closest known spelling or None) of each `CLAIMSTREAM_*` variable we do not read."""
    known = known_variables()
    found: list[tuple[str, str | None]] = []
    for name in sorted(env):
        if not name.startswith(_PREFIX) or name in known or name.startswith(_VARIABLE_PREFIXES):
            continue
        found.append((name, _closest(name, known)))
    return found


def check_variables(env: Mapping[str, str]) -> None:
    """`ConfigError` naming every `CLAIMSTREAM_*` variable in `env` that is not a setting."""
    unknown = unknown_variables(env)
    if not unknown:
        return
    named = ", ".join(
        name + (f" (did you mean {guess}?)" if guess else "") for name, guess in unknown
    )
    what = "is not a claimstream variable" if len(unknown) == 1 else "are not claimstream variables"
    raise ConfigError(
        f"{named} {what}: correct or unset it, since a misspelt setting would be ignored "
        "(docs/cli.md lists the variables)"
    )


def _closest(name: str, known: frozenset[str]) -> str | None:
    """The known spelling `name` most likely meant, compared after the common prefix."""
    tail = name[len(_PREFIX) :]
    tails = sorted(k[len(_PREFIX) :] for k in known)
    families = [f[len(_PREFIX) : -2] for f in _VARIABLE_PREFIXES]  # RULE, ENGINE, SANCTIONS
    close = difflib.get_close_matches(tail, tails, n=1, cutoff=0.8)
    if close:
        return _PREFIX + close[0]
    # a family member with a misspelt family or a single underscore: CLAIMSTREAM_RULES__X__Y,
    # CLAIMSTREAM_ENGINE_TIMEZONE -> CLAIMSTREAM_RULE__X__Y, CLAIMSTREAM_ENGINE__TIMEZONE
    for separator in ("__", "_"):
        head, _, rest = tail.partition(separator)
        family = difflib.get_close_matches(head, families, n=1, cutoff=0.85)
        if family and rest.strip("_"):
            return f"{_PREFIX}{family[0]}__{rest.lstrip('_')}"
    close = difflib.get_close_matches(tail, tails, n=1, cutoff=0.6)
    return _PREFIX + close[0] if close else None


def detection_from_env(env: Mapping[str, str]) -> DetectionConfig:
    """The default detection config with every `CLAIMSTREAM_RULE__*` / `ENGINE__*` applied.

    `CLAIMSTREAM_TIMEZONE` is a shorthand for `CLAIMSTREAM_ENGINE__TIMEZONE`. Changes are applied
    in sorted order; the result is version 1 (versions count control-topic snapshots).
    """
    config = DetectionConfig.default()
    engine: dict[str, str] = {}
    if env.get(_PREFIX + "TIMEZONE"):
        engine["timezone"] = env[_PREFIX + "TIMEZONE"]
    rules: dict[str, dict[str, str]] = {}
    for name in sorted(env):
        if name.startswith(_RULE_PREFIX):
            rule, sep, setting = name[len(_RULE_PREFIX) :].partition("__")
            if not sep or not setting:
                raise ConfigError(f"{name}: expected {_RULE_PREFIX}<RULE>__<SETTING>")
            rules.setdefault(rule.lower(), {})[setting.lower()] = env[name]
        elif name.startswith(_ENGINE_PREFIX):
            engine[name[len(_ENGINE_PREFIX) :].lower()] = env[name]
    if engine.get("timezone") == config.timezone:
        del engine["timezone"]
    try:
        for rule, changes in sorted(rules.items()):
            config = config.with_rule_changes(rule, changes)
        if engine:
            config = config.with_engine_changes(engine)
    except ConfigError as exc:
        raise ConfigError(f"environment: {exc}") from None
    # The configuration a worker starts with is version 1, whatever the environment changed;
    # versions count the snapshots published on the control topic (`claimstream rules set`).
    return dataclasses.replace(config, version=1)


def sanctions_from_env(env: Mapping[str, str]) -> SanctionSettings:
    """The default sanction settings with every `CLAIMSTREAM_SANCTIONS__*` applied.

    `CLAIMSTREAM_SANCTIONS__<PART>__<SETTING>` sets a setting of the ladder, points or grade
    (e.g. `CLAIMSTREAM_SANCTIONS__LADDER__REPEAT_WINDOW_DAYS=14`,
    `CLAIMSTREAM_SANCTIONS__POINTS__SUSPEND_AT=10`, `CLAIMSTREAM_SANCTIONS__GRADE__A_MIN=92`);
    `CLAIMSTREAM_SANCTIONS__TIMEZONE` / `__MANUAL_RETENTION_DAYS` the top-level ones. A list
    (`LADDER__KINDS`, `LADDER__IMMEDIATE_RULES`, `LADDER__AMOUNT_FIELDS`) is comma-separated.
    The time zone defaults to `CLAIMSTREAM_TIMEZONE` (the detection's local day).
    """
    defaults = SanctionSettings()
    data: dict[str, object] = {}
    names: dict[tuple[str, ...], str] = {}
    if env.get(_PREFIX + "TIMEZONE"):
        data["timezone"] = env[_PREFIX + "TIMEZONE"]
        names[("timezone",)] = _PREFIX + "TIMEZONE"
    for name in sorted(env):
        if not name.startswith(_SANCTIONS_PREFIX):
            continue
        parts = name[len(_SANCTIONS_PREFIX) :].lower().split("__")
        raw = env[name]
        if len(parts) == 1 and parts[0] in ("timezone", "manual_retention_days"):
            default = getattr(defaults, parts[0])
            data[parts[0]] = _typed(name, raw, default)
            names[(parts[0],)] = name
        elif len(parts) == 2 and parts[0] in ("ladder", "points", "grade") and parts[1]:
            part = getattr(defaults, parts[0])
            known = {f.name for f in dataclasses.fields(part)}
            if parts[1] not in known:
                raise ConfigError(
                    f"{name}: {parts[0]} has no setting {parts[1]!r}; "
                    f"settings: {', '.join(sorted(known))}"
                )
            table = data.setdefault(parts[0], {})
            assert isinstance(table, dict)
            table[parts[1]] = _typed(name, raw, getattr(part, parts[1]))
            names[(parts[0], parts[1])] = name
        else:
            raise ConfigError(
                f"{name}: expected {_SANCTIONS_PREFIX}<LADDER|POINTS|GRADE>__<SETTING>, "
                f"{_SANCTIONS_PREFIX}TIMEZONE or {_SANCTIONS_PREFIX}MANUAL_RETENTION_DAYS"
            )
    try:
        return SanctionSettings.from_dict(data)
    except ConfigError as exc:
        # name the variable: the first one that is refused on its own (else all of them)
        culprits = []
        for path, name in names.items():
            alone: dict[str, object] = {path[0]: data[path[0]]}
            if len(path) == 2:
                table = data[path[0]]
                assert isinstance(table, dict)
                alone = {path[0]: {path[1]: table[path[1]]}}
            try:
                SanctionSettings.from_dict(alone)
            except ConfigError:
                culprits.append(name)
        which = ", ".join(culprits[:1] or sorted(names.values()))
        raise ConfigError(f"{which}: {exc}") from None


def _bool(name: str, raw: str) -> bool:
    """`raw` of the variable `name` as true or false (`model.config.env_flag`); blank is
    false, as it always was here (a flag set to nothing is not set to true)."""
    return env_flag({name: raw}, name, default=False)


def _typed(name: str, raw: str, default: object) -> object:
    """`raw` as the type of `default` (tuples stay comma-separated text for the overlay)."""
    text = raw.strip()
    if isinstance(default, bool):
        return _bool(name, raw)
    if isinstance(default, int | float):
        try:
            return int(text) if isinstance(default, int) else float(text)
        except ValueError:
            kind = "a whole number" if isinstance(default, int) else "a number"
            raise ConfigError(f"{name} must be {kind}, got {raw!r}") from None
    return text


#: settings for which 0 means something (an ephemeral port, no standby, no trimming)
_MAY_BE_ZERO = frozenset({"web_port", "standby_replicas", "malloc_trim_interval"})


def _parse(name: str, raw: str, default: object, attr: str) -> object:
    text = raw.strip()
    if isinstance(default, bool):
        return _bool(name, raw)
    if isinstance(default, int) or attr == "partitions":
        if attr == "partitions" and text == "":
            return None
        try:
            number = int(text)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
        if number < (0 if attr in _MAY_BE_ZERO else 1):
            raise ConfigError(
                f"{name} must be {'0 or more' if attr in _MAY_BE_ZERO else 'positive'}, got {raw!r}"
            )
        return number
    if isinstance(default, float):
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {raw!r}") from None
        if value < 0 or (value == 0 and attr not in _MAY_BE_ZERO):
            raise ConfigError(
                f"{name} must be {'0 or more' if attr in _MAY_BE_ZERO else 'greater than 0'}, "
                f"got {raw!r}"
            )
        return value
    return text
