from __future__ import annotations

import pytest

from claimstream.model.config import ConfigError
from claimstream.stream.settings import Settings


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
