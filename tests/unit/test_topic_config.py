import pytest

from brook.broker.config import BrokerConfig
from brook.broker.topic_config import (
    InvalidConfigError,
    effective_configs,
    log_config_for,
    validate_value,
)


def test_defaults_follow_broker_synonyms():
    broker = BrokerConfig.from_sources(None, ["log.segment.bytes=2048", "log.retention.hours=2"])
    eff = effective_configs({}, broker)
    assert eff["segment.bytes"] == "2048"
    assert eff["retention.ms"] == str(2 * 3_600_000)
    assert eff["cleanup.policy"] == "delete"
    assert eff["flush.messages"] == str(2**63 - 1)


def test_overrides_win_and_reach_the_log_config():
    broker = BrokerConfig.from_sources()
    config = log_config_for({"retention.ms": "1000", "cleanup.policy": "compact,delete"}, broker)
    assert config.retention_ms == 1000
    assert config.flush_messages is None
    assert "compact" in config.cleanup_policy


@pytest.mark.parametrize("name, value, message", [
    ("no.such.config", "1", "Unknown topic config name: no.such.config"),
    ("retention.ms", "soon", "Not a number"),
    ("retention.ms", "-2", "at least -1"),
    ("min.cleanable.dirty.ratio", "1.5", "no more than 1"),
    ("cleanup.policy", "shred", "String must be one of"),
    ("compression.type", "brotli", "String must be one of"),
    ("preallocate", "yes", "true or false"),
    ("segment.bytes", "3", "at least 14"),
    ("max.message.bytes", "99999999999", "INT"),
])
def test_invalid_values_are_refused_with_kafka_messages(name, value, message):
    with pytest.raises(InvalidConfigError, match=message):
        validate_value(name, value)


def test_list_values_are_normalised():
    assert validate_value("cleanup.policy", " compact , delete ") == "compact,delete"
