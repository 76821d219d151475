"""The coordinator's and the cleaner's settings are known broker properties: typed,
with Kafka's defaults, never reported as unknown."""

from __future__ import annotations

from brook.broker.config import BrokerConfig

READ_BY_GROUPS_AND_CLEANER = {
    "offsets.retention.check.interval.ms": ("1000", 1000, 600_000),
    "offset.metadata.max.bytes": ("10", 10, 4096),
    "group.max.size": ("3", 3, 2_147_483_647),
    "offsets.topic.segment.bytes": ("1048576", 1_048_576, 104_857_600),
    "log.cleaner.enable": ("false", False, True),
    "log.cleaner.dedupe.buffer.size": ("1048576", 1_048_576, 134_217_728),
    "log.cleaner.io.buffer.load.factor": ("0.5", 0.5, 0.9),
}


def test_defaults_are_kafkas():
    config = BrokerConfig.from_dict({})
    for key, (_, _, default) in READ_BY_GROUPS_AND_CLEANER.items():
        assert config.get(key) == default, key


def test_overrides_are_typed_and_not_unknown():
    config = BrokerConfig.from_dict({k: raw for k, (raw, _, _) in
                                     READ_BY_GROUPS_AND_CLEANER.items()})
    assert config.unknown == ()
    for key, (_, value, _) in READ_BY_GROUPS_AND_CLEANER.items():
        assert config.get(key) == value, key
