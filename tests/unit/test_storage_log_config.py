"""LogConfig: Kafka's defaults and names."""

from __future__ import annotations

import pytest

from brook.broker.storage.log_config import KAFKA_NEVER, LogConfig


def test_defaults_match_kafka():
    config = LogConfig()
    assert config.segment_bytes == 1073741824
    assert config.segment_ms == config.retention_ms == 604800000
    assert config.retention_bytes == -1
    assert (config.index_interval_bytes, config.segment_index_bytes) == (4096, 10485760)
    assert config.flush_messages is None and config.flush_ms is None
    assert config.message_timestamp_type == "CreateTime"
    assert config.file_delete_delay_ms == 60000
    assert config.cleanup_policy == "delete" and config.deletes_by_retention
    assert config.max_message_bytes == 1048588


def test_kafka_named_configs_overlay_a_base():
    config = LogConfig.from_kafka_configs(
        {
            "retention.ms": "-1",
            "segment.bytes": "1048576",
            "cleanup.policy": "compact,delete",
            "message.timestamp.type": "LogAppendTime",
            "flush.messages": str(KAFKA_NEVER),
            "min.insync.replicas": "2",  # not a log setting: ignored
        },
        base=LogConfig(flush_messages=5, max_message_bytes=99),
    )
    assert config.retention_ms == -1 and config.segment_bytes == 1048576
    assert config.cleanup_policies == ("compact", "delete") and config.deletes_by_retention
    assert config.uses_log_append_time
    assert config.flush_messages is None
    assert config.max_message_bytes == 99
    reset = LogConfig.from_kafka_configs({"max.message.bytes": None}, base=config)
    assert reset.max_message_bytes == 1048588


def test_round_trip_through_kafka_names():
    config = LogConfig(retention_bytes=123, flush_ms=1000)
    described = config.to_kafka_configs()
    assert described["retention.bytes"] == "123"
    assert described["flush.messages"] == str(KAFKA_NEVER)
    assert LogConfig.from_kafka_configs(described) == config


@pytest.mark.parametrize(
    "configs",
    [
        {"segment.bytes": "abc"},
        {"segment.bytes": "1"},
        {"cleanup.policy": "sometimes"},
        {"message.timestamp.type": "Now"},
        {"retention.ms": "-2"},
        {"flush.messages": "0"},
    ],
)
def test_invalid_values_name_the_setting(configs):
    with pytest.raises(ValueError) as raised:
        LogConfig.from_kafka_configs(configs)
    name = next(iter(configs)).split(".")[0]
    assert name in str(raised.value)
