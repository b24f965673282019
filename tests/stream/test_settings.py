from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from claimstream.audit.keyfiles import write_key_files
from claimstream.cli.main import main
from claimstream.model.config import ConfigError
from claimstream.stream.settings import Settings, known_variables, unknown_variables


def test_defaults_without_environment() -> None:
    settings = Settings.from_env({})
    assert settings.broker_url == "kafka://127.0.0.1:9092"
    assert settings.redis_url is None
    assert settings.store == "memory://"
    assert settings.processing_guarantee == "at_least_once"
    assert settings.detection.version == 1


def test_values_are_parsed_and_urls_normalised() -> None:
    settings = Settings.from_env(
        {
            "CLAIMSTREAM_BROKER_URL": "10.0.0.5:9093",
            "CLAIMSTREAM_REDIS_URL": "redis://127.0.0.1:6379/1",
            "CLAIMSTREAM_STORE": "rocksdb://",
            "CLAIMSTREAM_PARTITIONS": "4",
            "CLAIMSTREAM_WEB_PORT": "7000",
            "CLAIMSTREAM_BATCH_WITHIN": "0.2",
            "CLAIMSTREAM_WEB_ENABLED": "false",
        }
    )
    assert settings.broker_url == "kafka://10.0.0.5:9093"
    assert settings.redis_url == "redis://127.0.0.1:6379/1"
    assert settings.store == "rocksdb://"
    assert settings.partitions == 4
    assert settings.web_port == 7000
    assert settings.batch_within == 0.2
    assert settings.web_enabled is False


def test_rule_thresholds_and_time_zone_from_environment() -> None:
    settings = Settings.from_env(
        {
            "CLAIMSTREAM_RULE__REPEAT_DISPENSING__EARLY_REFILL_TOLERANCE": "0.25",
            "CLAIMSTREAM_TIMEZONE": "Asia/Urumqi",
        }
    )
    detection = settings.detection
    assert detection.rules["repeat_dispensing"].early_refill_tolerance == 0.25  # type: ignore[attr-defined]
    assert detection.timezone == "Asia/Urumqi"
    assert detection.version == 1  # versions count control-topic snapshots, not env changes


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CLAIMSTREAM_PARTITIONS", "eight"),
        ("CLAIMSTREAM_PROCESSING_GUARANTEE", "maybe_once"),
        ("CLAIMSTREAM_RULE__REPEAT_DISPENSING__EARLY_REFILL_TOLERANCE", "2"),
        ("CLAIMSTREAM_RULE__NO_SUCH_RULE__ENABLED", "false"),
        ("CLAIMSTREAM_RULE__REPEAT_DISPENSING", "x"),
        ("CLAIMSTREAM_BATCH_WITHIN", "-1"),
    ],
)
def test_bad_values_are_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError):
        Settings.from_env({name: value})


@pytest.mark.parametrize(
    "name", ["CLAIMSTREAM_WEB_ENABLED", "CLAIMSTREAM_SANCTIONS__GRADE__SUSPEND_ON_D"]
)
def test_a_flag_that_is_not_true_or_false_is_refused_naming_it_and_the_value(name: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{name} must be true or false, got 'sometimes'$"):
        Settings.from_env({name: "sometimes"})


def test_a_blank_flag_is_false() -> None:
    assert Settings.from_env({"CLAIMSTREAM_WEB_ENABLED": " "}).web_enabled is False


# --- CLAIMSTREAM_* variables that are not settings ---------------------------------------------

REPO = Path(__file__).resolve().parents[2]
#: misspellings the docs show on purpose (what the refusal looks like)
EXAMPLES = {"CLAIMSTREAM_REDIS_ULR", "CLAIMSTREAM_RULES__X__Y", "CLAIMSTREAM_ENGINE_TIMEZONE"}


@pytest.mark.parametrize(
    ("name", "closest"),
    [
        ("CLAIMSTREAM_REDIS_ULR", "CLAIMSTREAM_REDIS_URL"),
        ("CLAIMSTREAM_BROKER", "CLAIMSTREAM_BROKER_URL"),
        ("CLAIMSTREAM_PARTITION", "CLAIMSTREAM_PARTITIONS"),
        ("CLAIMSTREAM_TIMEZOME", "CLAIMSTREAM_TIMEZONE"),
        ("CLAIMSTREAM_RULES__READMISSION_24H__MAX_GAP_HOURS",
         "CLAIMSTREAM_RULE__READMISSION_24H__MAX_GAP_HOURS"),
        ("CLAIMSTREAM_ENGINE_TIMEZONE", "CLAIMSTREAM_ENGINE__TIMEZONE"),
        ("CLAIMSTREAM_SANCTION__LADDER__LOOKBACK_DAYS",
         "CLAIMSTREAM_SANCTIONS__LADDER__LOOKBACK_DAYS"),
    ],
)  # fmt: skip
def test_a_misspelt_variable_is_refused_naming_it_and_the_closest_name(
    name: str, closest: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({name: "1"})
    assert str(refused.value).startswith(f"{name} (did you mean {closest}?) is not a claimstream")


def test_an_unknown_variable_without_a_near_name_is_refused_without_a_guess() -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({"CLAIMSTREAM_FOO": "1"})
    assert str(refused.value).startswith("CLAIMSTREAM_FOO is not a claimstream variable")


def test_every_unknown_variable_is_named() -> None:
    assert [name for name, _ in unknown_variables(
        {"CLAIMSTREAM_REDIS_ULR": "x", "CLAIMSTREAM_WEBPORT": "1", "CLAIMSTREAM_STORE": "x"}
    )] == ["CLAIMSTREAM_REDIS_ULR", "CLAIMSTREAM_WEBPORT"]  # fmt: skip


def test_other_programs_variables_are_left_alone() -> None:
    assert Settings.from_env({"CLAIMSTREAMX": "1", "KAFKA_URL": "x", "claimstream_x": "1"})


def test_every_settings_field_is_a_known_variable() -> None:
    env = {
        "CLAIMSTREAM_BROKER_URL": "kafka://h:1",
        "CLAIMSTREAM_SANCTIONS_ALERTS_PER_SUBJECT": "10",
        "CLAIMSTREAM_FETCH_WAIT_MS": "50",
        "CLAIMSTREAM_API_TOKEN": "t",
    }
    assert unknown_variables(env) == []
    assert {"CLAIMSTREAM_REDIS_URL", "CLAIMSTREAM_WEB_PORT", "CLAIMSTREAM_TIMEZONE"} <= (
        known_variables()
    )


def test_every_variable_the_repository_names_is_known() -> None:
    """A new CLAIMSTREAM_* variable must be a Settings field, a RULE__/ENGINE__/SANCTIONS__
    one, or listed in `stream.settings.OTHER_VARIABLES`: else every command refuses it."""
    names: set[str] = set()
    for where in ("src", "deploy", "docs", "scripts", "Makefile", "README.md"):
        path = REPO / where
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            if "egg-info" in file.parts:
                continue
            text = file.read_text(encoding="utf-8", errors="replace")
            for match in re.finditer(r"CLAIMSTREAM_[A-Z0-9_]*", text):
                if match.group().endswith("_"):
                    continue  # a prefix or a family: "CLAIMSTREAM_AUDIT_", RULE__<RULE>__...
                names.add(match.group())
    names -= EXAMPLES
    assert [n for n, _ in unknown_variables(dict.fromkeys(names, ""))] == []


def test_the_audit_keys_variables_are_known() -> None:
    from claimstream.audit import settings as audit

    names = {value for name, value in vars(audit).items() if name.isupper()}
    names = {n for n in names if isinstance(n, str) and n.startswith("CLAIMSTREAM_AUDIT_")}
    assert names - {audit.PREFIX} <= known_variables()
    assert len(names) > 5


def test_the_audit_keys_are_read_when_given(tmp_path: Path) -> None:
    keys = write_key_files(tmp_path / "keys")
    settings = Settings.from_env(keys.environment(tmp_path / "checkpoints"))
    assert settings.audit_keys is not None and settings.audit_keys.hmac is not None
    assert settings.audit_keys.hmac.current.key_id == keys.hmac_key_id
    assert settings.audit_problem() is None


def test_a_worker_without_audit_keys_is_told_which_to_set() -> None:
    problem = Settings.from_env({}).audit_problem()
    assert problem is not None
    assert "CLAIMSTREAM_AUDIT_HMAC_KEY_FILE" in problem and "claimstream audit keygen" in problem


def test_the_unkeyed_development_trail_must_be_asked_for() -> None:
    settings = Settings.from_env({"CLAIMSTREAM_AUDIT_UNKEYED": "true"})
    assert settings.audit_keys is not None and settings.audit_keys.unkeyed
    assert settings.audit_problem() is None


def test_no_audit_no_keys_needed() -> None:
    assert Settings.from_env({"CLAIMSTREAM_AUDIT_ENABLED": "false"}).audit_problem() is None


def test_the_worker_command_refuses_to_start_without_audit_keys(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in os.environ if n.startswith("CLAIMSTREAM_")]:
        monkeypatch.delenv(name)
    assert main(["worker"]) == 2
    assert "the audit trail needs its keys" in capsys.readouterr().err


def test_standby_replicas_default_to_fausts_one_and_refuse_a_negative_count() -> None:
    assert Settings.from_env({}).standby_replicas == 1
    assert Settings.from_env({"CLAIMSTREAM_STANDBY_REPLICAS": "0"}).standby_replicas == 0
    with pytest.raises(ConfigError, match="CLAIMSTREAM_STANDBY_REPLICAS"):
        Settings.from_env({"CLAIMSTREAM_STANDBY_REPLICAS": "-1"})


def test_a_malloc_trim_interval_of_zero_turns_trimming_off_and_a_negative_one_is_refused() -> None:
    off = Settings.from_env({"CLAIMSTREAM_MALLOC_TRIM_INTERVAL": "0"})
    assert off.malloc_trim_interval == 0
    with pytest.raises(ConfigError, match=r"^CLAIMSTREAM_MALLOC_TRIM_INTERVAL must be 0 or more"):
        Settings.from_env({"CLAIMSTREAM_MALLOC_TRIM_INTERVAL": "-1"})
