"""deploy/ is well-formed and hangs together (no Docker here: structure, not a running stack).

What is checked: every YAML/JSON file parses; compose has the services the issue asks for with
pinned images, KRaft Kafka, Redis with AOF, a topics-init job before two workers of one
consumer group, configuration by environment only; the workers read deploy/claimstream.env
(`env_file:`) and compose fixes nothing but the stack's wiring; deploy/claimstream.env.example
lists every variable the worker reads, each at its default, and nothing else; health checks
probe /ready (compose) and /health (the image); every file compose mounts exists; the
Prometheus targets, Grafana datasource and dashboard paths match the compose services; every
dashboard panel and query uses the `$datasource` variable; every alert's runbook_url and every
docs/ file a deploy file cites exist; the Dockerfile runs as a non-root user on a pinned base;
Prometheus and Alertmanager accept their configs (promtool / amtool) and Alertmanager routes
each team to its receiver.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ops.support import (
    DASHBOARD,
    DEPLOY,
    DOCS_BY_OTHERS,
    REPO,
    RULES_FILE,
    anchors,
    load_yaml,
    require_binary,
)

COMPOSE = DEPLOY / "compose.yaml"
PROMETHEUS = DEPLOY / "prometheus" / "prometheus.yml"
ALERTMANAGER = DEPLOY / "alertmanager" / "alertmanager.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
ENV_EXAMPLE = DEPLOY / "claimstream.env.example"
WORKERS = ("worker-1", "worker-2")
PINNED_TAG = re.compile(r"^[\w./-]+:v?\d+(\.\d+)+[\w.-]*(@sha256:[0-9a-f]{64})?$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = load_yaml(COMPOSE)
    assert isinstance(doc, dict)
    return doc


def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]  # type: ignore[no-any-return]


def env(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment", {})
    if isinstance(raw, list):
        return dict(item.split("=", 1) for item in raw)
    return {k: str(v) for k, v in raw.items()}


def test_every_deploy_file_parses() -> None:
    files = [*DEPLOY.rglob("*.yml"), *DEPLOY.rglob("*.yaml")]
    assert len(files) >= 6
    for path in files:
        assert load_yaml(path) is not None, path
    for path in DEPLOY.rglob("*.json"):
        json.loads(path.read_text(encoding="utf-8"))


def test_compose_has_the_stack(compose: dict[str, Any]) -> None:
    expected = {"kafka", "redis", "topics-init", *WORKERS, "prometheus", "alertmanager", "grafana"}
    assert expected <= set(services(compose))


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, svc in services(compose).items():
        image = svc["image"]
        image = re.sub(r"\$\{[A-Z_]+:-([^}]+)\}", r"\1", image)  # the default of ${VAR:-default}
        assert PINNED_TAG.match(image), f"{name}: image {svc['image']!r} is not pinned"
        assert ":latest" not in image, name


def test_kafka_runs_in_kraft_mode(compose: dict[str, Any]) -> None:
    kafka = env(services(compose)["kafka"])
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert "KAFKA_CONTROLLER_QUORUM_VOTERS" in kafka
    assert not any("ZOOKEEPER" in key for key in kafka)
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert "three-node" in COMPOSE.read_text(encoding="utf-8")


def test_redis_persists_with_aof(compose: dict[str, Any]) -> None:
    command = services(compose)["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in services(compose)["redis"]["volumes"])


def test_topics_init_runs_before_the_workers(compose: dict[str, Any]) -> None:
    init = services(compose)["topics-init"]
    assert init["command"][:2] == ["topics", "apply"]
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in WORKERS:
        worker = services(compose)[name]
        assert worker["depends_on"]["topics-init"]["condition"] == "service_completed_successfully"


def test_two_workers_one_consumer_group_env_only(compose: dict[str, Any]) -> None:
    envs = [env(services(compose)[name]) for name in WORKERS]
    for name, worker_env in zip(WORKERS, envs, strict=True):
        worker = services(compose)[name]
        assert worker["command"] == ["worker"]
        assert all(key.startswith("CLAIMSTREAM_") for key in worker_env), name
        assert worker_env["CLAIMSTREAM_BROKER_URL"].startswith("kafka://kafka:")
        # TLS, as an ACL user (docs/security.md; tests/ops/test_deploy_transport.py)
        assert worker_env["CLAIMSTREAM_REDIS_URL"].startswith("rediss://claimstream-worker@redis:")
        # configuration by environment only: nothing is mounted into a worker but its data dir
        for volume in worker.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert not source.startswith((".", "/")), f"{name} mounts a file: {volume}"
    # one consumer group: the same app id (faust's group id) on both, default or explicit
    assert len({e.get("CLAIMSTREAM_APP_ID", "claimstream") for e in envs}) == 1


def test_compose_variables_all_have_defaults() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    variables = re.findall(r"\$\{([^}]*)\}", text)
    assert variables
    for var in variables:
        assert ":-" in var, f"${{{var}}} has no default: `docker compose up` would warn"


def test_mounted_files_and_build_context_exist(compose: dict[str, Any]) -> None:
    for name, svc in services(compose).items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} missing"
        if "build" in svc:
            context = (DEPLOY / svc["build"]["context"]).resolve()
            assert context == REPO
            assert (context / svc["build"]["dockerfile"]).is_file()


def test_prometheus_scrapes_the_compose_services(compose: dict[str, Any]) -> None:
    doc = load_yaml(PROMETHEUS)
    jobs = {job["job_name"]: job for job in doc["scrape_configs"]}
    targets = {t for sc in jobs["claimstream"]["static_configs"] for t in sc["targets"]}
    expected = {
        f"{name}:{env(services(compose)[name])['CLAIMSTREAM_WEB_PORT']}" for name in WORKERS
    }
    assert targets == expected
    assert jobs["claimstream"].get("metrics_path", "/metrics") == "/metrics"
    am = doc["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == ["alertmanager:9093"]
    prom = services(compose)["prometheus"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in prom["volumes"]}
    assert mounts["/etc/prometheus/rules"] == "./prometheus/rules"
    assert doc["rule_files"] == ["/etc/prometheus/rules/*.yml"]


def test_grafana_provisioning_matches_the_dashboard(compose: dict[str, Any]) -> None:
    grafana = services(compose)["grafana"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in grafana["volumes"]}
    provisioning = DEPLOY / mounts["/etc/grafana/provisioning"]
    sources = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    assert sources[0]["url"] == "http://prometheus:9090"
    # the dashboard's $datasource variable starts on the default datasource of its type
    assert sources[0]["isDefault"] is True
    assert sources[0]["type"] == "prometheus"
    providers = load_yaml(provisioning / "dashboards" / "claimstream.yml")["providers"]
    dash_dir = providers[0]["options"]["path"]
    assert (DEPLOY / mounts[dash_dir] / DASHBOARD.name).is_file()

    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
    text = DASHBOARD.read_text(encoding="utf-8")
    for metric in (
        "claimstream_events_consumed_total",  # throughput
        "claimstream_consumer_lag",  # lag
        "claimstream_processing_latency_seconds_bucket",  # latency percentiles
        "claimstream_detection_latency_seconds_bucket",
        "claimstream_alerts_total",  # alerts by rule and severity
        "claimstream_commands_total",  # commands
        "claimstream_active_freezes",  # active freezes
        "claimstream_dead_letters_total",  # dead letters by reason
        "claimstream_reviewed_alerts",  # per-rule precision
    ):
        assert metric in text, f"no panel shows {metric}"


def test_dockerfile_non_root_pinned_base() -> None:
    lines = [ln.strip() for ln in DOCKERFILE.read_text(encoding="utf-8").splitlines()]
    args = dict(
        ln.removeprefix("ARG ").split("=", 1) for ln in lines if ln.startswith("ARG ") and "=" in ln
    )
    bases = [ln.split()[1] for ln in lines if ln.startswith("FROM ")]
    assert bases
    for base in bases:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], base)
        assert PINNED_TAG.match(image) and "slim" in image, image
    users = [ln.split()[1] for ln in lines if ln.startswith("USER ")]
    assert users, "no USER: the image would run as root"
    assert users[-1].split(":")[0] not in ("0", "root")
    assert any(ln.startswith("ENTRYPOINT") and "claimstream" in ln for ln in lines)
    assert (DEPLOY / "Dockerfile.dockerignore").is_file()


def test_promtool_accepts_the_prometheus_config() -> None:
    promtool = require_binary("promtool")
    done = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(PROMETHEUS)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _amtool() -> str:
    return require_binary("amtool", package="prometheus-alertmanager")


def test_amtool_accepts_the_alertmanager_config() -> None:
    done = subprocess.run(
        [_amtool(), "check-config", str(ALERTMANAGER)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["team=ops", "severity=critical", "alertname=ClaimstreamWorkerDown"], "ops-pager"),
        (["team=ops", "severity=warning", "alertname=ClaimstreamConsumerLagHigh"], "ops-channel"),
        (
            ["team=fund-supervision", "severity=warning", "alertname=ClaimstreamAlertSurge"],
            "fund-supervisors",
        ),
        (
            ["team=fund-supervision", "severity=critical", "alertname=ClaimstreamSuspendIssued"],
            "fund-supervisors-duty",
        ),
    ],
)
def test_alertmanager_routes_each_team(labels: list[str], receiver: str) -> None:
    done = subprocess.run(
        [
            _amtool(),
            "config",
            "routes",
            "test",
            f"--config.file={ALERTMANAGER}",
            f"--verify.receivers={receiver}",
            *labels,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_rule_team_has_a_route() -> None:
    rules = load_yaml(DEPLOY / "prometheus" / "rules" / "claimstream.rules.yml")
    teams = {r["labels"]["team"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    text = ALERTMANAGER.read_text(encoding="utf-8")
    for team in teams:
        assert f'team="{team}"' in text, team


def _settings_variables() -> set[str]:
    settings = pytest.importorskip(
        "claimstream.stream.settings", reason="worker settings not built yet"
    )
    return set(settings.known_variables())


def test_compose_and_dockerfile_set_only_real_settings(compose: dict[str, Any]) -> None:
    """A misspelt CLAIMSTREAM_* variable would be ignored silently by the worker."""
    known = _settings_variables()
    given: set[str] = set()
    for svc in services(compose).values():
        given |= {k for k in env(svc) if k.startswith("CLAIMSTREAM_")}
    given |= set(re.findall(r"\b(CLAIMSTREAM_[A-Z_]+)=", DOCKERFILE.read_text(encoding="utf-8")))
    assert given
    unknown = {
        name
        for name in given - known
        if not name.startswith(("CLAIMSTREAM_RULE__", "CLAIMSTREAM_ENGINE__"))
    }
    assert not unknown, f"not worker settings: {sorted(unknown)}"


# --- the workers' settings: compose's env_file and deploy/claimstream.env.example ----------------

#: what compose fixes for its own stack under `environment:` (which wins over `env_file:`)
STACK_WIRING = frozenset(
    {
        "CLAIMSTREAM_BROKER_URL",
        "CLAIMSTREAM_REDIS_URL",
        "CLAIMSTREAM_WEB_HOST",
        "CLAIMSTREAM_WEB_PORT",
        # the audit's keys (Docker secrets) and checkpoint volume, mounted by compose
        "CLAIMSTREAM_AUDIT_HMAC_KEY_FILE",
        "CLAIMSTREAM_AUDIT_SIGNING_KEY_FILE",
        "CLAIMSTREAM_AUDIT_CHECKPOINT_DIR",
        # the API's token file, signing key and action keyring (Docker secrets)
        "CLAIMSTREAM_API_TOKENS_FILE",
        "CLAIMSTREAM_ACTION_SIGNING_KEY_FILE",
        "CLAIMSTREAM_ACTION_KEYS_FILE",
        # each service's Kafka and Redis login and the CA (Docker secrets, docs/security.md)
        "CLAIMSTREAM_KAFKA_SECURITY_PROTOCOL",
        "CLAIMSTREAM_KAFKA_SASL_MECHANISM",
        "CLAIMSTREAM_KAFKA_SASL_USERNAME",
        "CLAIMSTREAM_KAFKA_SASL_PASSWORD_FILE",
        "CLAIMSTREAM_KAFKA_SSL_CA_FILE",
        "CLAIMSTREAM_REDIS_PASSWORD_FILE",
        "CLAIMSTREAM_REDIS_TLS_CA_FILE",
    }
)
ENV_FILE = "./claimstream.env"
#: a variable line of the example: `#NAME=default` (prose comments start with `# `)
_EXAMPLE_LINE = re.compile(r"^#(CLAIMSTREAM_[A-Z0-9_]+)=(.*)$")


def example_variables() -> dict[str, str]:
    """`{name: value}` of every `#NAME=value` line of deploy/claimstream.env.example."""
    found: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = _EXAMPLE_LINE.match(line)
        if match:
            assert match.group(1) not in found, f"{match.group(1)} is listed twice"
            found[match.group(1)] = match.group(2)
    return found


def worker_defaults() -> dict[str, object]:
    """Every variable the worker reads, with its default: one per `Settings` field, the detection
    engine's (`CLAIMSTREAM_ENGINE__*`, with `CLAIMSTREAM_TIMEZONE` for its time zone), every rule
    setting (`CLAIMSTREAM_RULE__<RULE>__<SETTING>`) and every sanction setting
    (`CLAIMSTREAM_SANCTIONS__...`), all derived from the defaults, not from a list."""
    from claimstream.stream.settings import Settings

    base = Settings()
    out: dict[str, object] = {}
    for f in dataclasses.fields(Settings):
        if f.name not in (
            "detection",
            "sanctions",
            "audit_keys",
            "kafka_security",
            "redis_options",
        ):
            out[f"CLAIMSTREAM_{f.name.upper()}"] = getattr(base, f.name)
    engine = base.detection.to_dict()
    out["CLAIMSTREAM_TIMEZONE"] = engine["timezone"]
    for key, value in engine.items():
        if key not in ("version", "rules", "timezone"):
            out[f"CLAIMSTREAM_ENGINE__{key.upper()}"] = value
    for rule, settings in engine["rules"].items():
        for key, value in settings.items():
            out[f"CLAIMSTREAM_RULE__{rule.upper()}__{key.upper()}"] = value
    out.update(audit_defaults())
    out.update(transport_defaults())
    for f in dataclasses.fields(base.sanctions):
        if f.name.startswith("_"):
            continue  # derived, not a setting
        value = getattr(base.sanctions, f.name)
        if dataclasses.is_dataclass(value):
            for g in dataclasses.fields(value):
                name = f"CLAIMSTREAM_SANCTIONS__{f.name.upper()}__{g.name.upper()}"
                out[name] = getattr(value, g.name)
        else:
            out[f"CLAIMSTREAM_SANCTIONS__{f.name.upper()}"] = value
    return out


def transport_defaults() -> dict[str, object]:
    """Kafka's TLS and SASL (`CLAIMSTREAM_KAFKA_*`) and Redis's password and TLS files, read
    by `claimstream.kafka.security` and `claimstream.freezes.connection` (an empty default:
    unset)."""
    from claimstream.freezes import connection
    from claimstream.kafka import security

    variables = {**security.VARIABLES, **connection.VARIABLES}
    return {name: value or None for name, value in variables.items()}


def audit_defaults() -> dict[str, object]:
    """The audit trail's `CLAIMSTREAM_AUDIT_*` key and checkpoint variables (every name
    `claimstream.audit.settings` declares), read outside `Settings`."""
    from claimstream.audit import settings as audit

    names = {
        value
        for key, value in vars(audit).items()
        if key.isupper() and isinstance(value, str) and value.startswith(audit.PREFIX)
    } - {audit.PREFIX}
    defaults: dict[str, object] = dict.fromkeys(names)
    defaults[audit.CHECKPOINT_INTERVAL] = audit.DEFAULT_INTERVAL
    defaults[audit.UNKEYED] = False
    return defaults


def test_every_variable_the_worker_reads_is_in_the_env_example() -> None:
    missing = sorted(set(worker_defaults()) - set(example_variables()))
    lines = "\n".join(f"#{name}={worker_defaults()[name]}" for name in missing)
    assert not missing, f"add to {ENV_EXAMPLE.name}, with a comment:\n{lines}"


def test_every_variable_in_the_env_example_is_one_the_worker_reads() -> None:
    unknown = sorted(set(example_variables()) - set(worker_defaults()))
    assert not unknown, f"{ENV_EXAMPLE.name} lists what no worker reads: {unknown}"


def test_the_env_example_shows_each_default() -> None:
    """Uncommenting a line as it stands changes nothing; an empty value means unset (None)."""
    from claimstream.stream.settings import Settings

    defaults = worker_defaults()
    audit = audit_defaults()
    for name, value in example_variables().items():
        if value == "":
            assert defaults.get(name) is None, f"{name}: the default is {defaults.get(name)!r}"
        elif name in audit:  # not Settings: compared as the audit's settings parse them
            default = audit[name]
            parsed = value.lower() == "true" if isinstance(default, bool) else float(value)
            assert parsed == default, f"{name}={value} is no default"
        else:
            assert Settings.from_env({name: value}) == Settings(), f"{name}={value} is no default"


def test_compose_passes_the_env_file_to_the_workers_and_topics_init(
    compose: dict[str, Any],
) -> None:
    for name in (*WORKERS, "topics-init"):
        entries = services(compose)[name].get("env_file")
        assert entries, f"{name} has no env_file"
        paths = {e["path"] if isinstance(e, dict) else e: e for e in entries}
        assert ENV_FILE in paths, f"{name} does not read {ENV_FILE}"
        entry = paths[ENV_FILE]
        # optional, so `docker compose up` works before anyone copies the example
        assert isinstance(entry, dict) and entry.get("required") is False, name


def test_compose_fixes_only_the_stack_wiring(compose: dict[str, Any]) -> None:
    """Anything else under `environment:` would silently override the same line of the env file."""
    for name in (*WORKERS, "topics-init"):
        assert set(env(services(compose)[name])) <= STACK_WIRING, name


def test_compose_interpolates_no_worker_setting() -> None:
    """A worker setting in compose's own `${...}` would be read from .env, not claimstream.env."""
    text = COMPOSE.read_text(encoding="utf-8")
    interpolated = {var.split(":-", 1)[0] for var in re.findall(r"\$\{([^}]*)\}", text)}
    assert not interpolated & set(worker_defaults())


def test_the_env_file_stays_out_of_version_control() -> None:
    ignored = (DEPLOY / ".gitignore").read_text(encoding="utf-8").split()
    assert "claimstream.env" in ignored
    assert ".env" in ignored


# --- health checks ----------------------------------------------------------------------------


def test_compose_probes_the_workers_readiness(compose: dict[str, Any]) -> None:
    for name in WORKERS:
        probe = " ".join(services(compose)[name]["healthcheck"]["test"])
        assert "/ready'" in probe, f"{name}: {probe}"


def test_the_image_probes_liveness() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    healthcheck = text[text.index("HEALTHCHECK") :].split("\nENTRYPOINT", 1)[0]
    assert "/health'" in healthcheck
    assert "/metrics" not in healthcheck


# --- Grafana: one datasource variable, no hard-coded uid ---------------------------------------


def _with_datasource(node: Any, where: str = "dashboard") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (place, datasource) of the dashboard's panels and queries, rows and nested included."""
    if isinstance(node, dict):
        here = f"{where} / {node.get('title') or node.get('refId') or ''}".rstrip(" /")
        if isinstance(node.get("datasource"), dict):
            yield here, node["datasource"]
        for key, value in node.items():
            if key != "datasource":
                yield from _with_datasource(value, here)
    elif isinstance(node, list):
        for item in node:
            yield from _with_datasource(item, where)


def test_the_dashboard_declares_a_prometheus_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_every_panel_and_query_uses_the_datasource_variable() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    places = list(_with_datasource(dashboard["panels"]))
    assert len(places) > len(dashboard["panels"])  # panels and their targets
    for place, source in places:
        assert source == {"type": "prometheus", "uid": "${datasource}"}, place
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert "datasource" in panel, panel["title"]
            assert all("datasource" in t for t in panel["targets"]), panel["title"]


# --- what deploy/ cites exists ------------------------------------------------------------------


def test_every_runbook_url_points_at_a_heading_of_the_docs() -> None:
    rules = load_yaml(RULES_FILE)
    alerts = [r for g in rules["groups"] for r in g["rules"] if "alert" in r]
    assert alerts
    for rule in alerts:
        path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert (REPO / path).is_file(), rule["alert"]
        assert anchor in anchors(REPO / path), f"{rule['alert']}: no heading #{anchor} in {path}"


_CITED_DOC = re.compile(r"\b(docs/[\w./-]+?\.md)(?:#([\w-]+))?")


def test_deploy_files_cite_only_docs_that_exist() -> None:
    texts = [p for p in DEPLOY.rglob("*") if p.is_file() and p.suffix != ".json"]
    cited = 0
    for path in texts:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"README[^.\n]*\bsection|see README", text), f"{path}: cites README"
        for doc, anchor in _CITED_DOC.findall(text):
            target = REPO / doc
            if Path(doc).name in DOCS_BY_OTHERS and not target.exists():
                continue  # written on another branch; checked once it is here
            cited += 1
            assert target.is_file(), f"{path.name} cites {doc}, which does not exist"
            if anchor:
                assert anchor in anchors(target), (
                    f"{path.name} cites {doc}#{anchor}: no such heading"
                )
    assert cited
