"""Per-topic configuration: Kafka's topic config names, validation and defaults.

Pure. A topic stores only its overrides (strings, as on the wire); the effective
value of every other key comes from the broker property it is a synonym of.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import BrokerConfig
from .storage.log_config import LogConfig

LONG_MAX = 9_223_372_036_854_775_807
INT_MAX = 2_147_483_647

# DescribeConfigs config_type codes.
BOOLEAN, STRING, INT, SHORT, LONG, DOUBLE, LIST = 1, 2, 3, 4, 5, 6, 7

COMPRESSION_TYPES = ("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer")
CLEANUP_POLICIES = ("delete", "compact")
TIMESTAMP_TYPES = ("CreateTime", "LogAppendTime")


class InvalidConfigError(ValueError):
    """Maps to Kafka's INVALID_CONFIG (40); the message is what the client shows."""


@dataclass(frozen=True)
class TopicConfigKey:
    name: str
    kind: int
    broker_synonym: str | None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    documentation: str = ""


def _key(name, kind, synonym, minimum=None, maximum=None, choices=(), doc=""):
    return TopicConfigKey(name, kind, synonym, minimum, maximum, choices, doc)


TOPIC_CONFIG_KEYS: dict[str, TopicConfigKey] = {
    k.name: k
    for k in (
        _key("cleanup.policy", LIST, "log.cleanup.policy", choices=CLEANUP_POLICIES,
             doc="delete and/or compact"),
        _key("compression.type", STRING, "compression.type", choices=COMPRESSION_TYPES),
        _key("compression.gzip.level", INT, "compression.gzip.level", -1, 9),
        _key("compression.lz4.level", INT, "compression.lz4.level", 1, 17),
        _key("compression.zstd.level", INT, "compression.zstd.level", -131072, 22),
        _key("delete.retention.ms", LONG, "log.cleaner.delete.retention.ms", 0),
        _key("file.delete.delay.ms", LONG, "log.segment.delete.delay.ms", 0),
        _key("flush.messages", LONG, "log.flush.interval.messages", 1),
        _key("flush.ms", LONG, "log.flush.interval.ms", 0),
        _key("index.interval.bytes", INT, "log.index.interval.bytes", 0),
        _key("max.compaction.lag.ms", LONG, "log.cleaner.max.compaction.lag.ms", 1),
        _key("max.message.bytes", INT, "message.max.bytes", 0),
        _key("message.timestamp.type", STRING, "log.message.timestamp.type",
             choices=TIMESTAMP_TYPES),
        _key("message.timestamp.before.max.ms", LONG, "log.message.timestamp.before.max.ms", 0),
        _key("message.timestamp.after.max.ms", LONG, "log.message.timestamp.after.max.ms", 0),
        _key("min.cleanable.dirty.ratio", DOUBLE, "log.cleaner.min.cleanable.ratio", 0, 1),
        _key("min.compaction.lag.ms", LONG, "log.cleaner.min.compaction.lag.ms", 0),
        _key("min.insync.replicas", INT, "min.insync.replicas", 1),
        _key("preallocate", BOOLEAN, None),
        _key("retention.bytes", LONG, "log.retention.bytes", -1),
        _key("retention.ms", LONG, "log.retention.ms", -1),
        _key("segment.bytes", INT, "log.segment.bytes", 14),
        _key("segment.index.bytes", INT, "log.index.size.max.bytes", 4),
        _key("segment.jitter.ms", LONG, None, 0),
        _key("segment.ms", LONG, "log.roll.ms", 1),
        _key("unclean.leader.election.enable", BOOLEAN, "unclean.leader.election.enable"),
        _key("leader.replication.throttled.replicas", LIST, None),
        _key("follower.replication.throttled.replicas", LIST, None),
    )
}

# Keys whose default is not a plain broker property.
_FIXED_DEFAULTS = {
    "preallocate": "false",
    "segment.jitter.ms": "0",
    "leader.replication.throttled.replicas": "",
    "follower.replication.throttled.replicas": "",
}


def default_value(name: str, broker: BrokerConfig) -> str:
    """The value a topic gets when it sets no override (a string, as Kafka reports it)."""
    if name in _FIXED_DEFAULTS:
        return _FIXED_DEFAULTS[name]
    if name == "retention.ms":
        return str(broker.retention_ms)
    if name == "segment.ms":
        return str(broker.roll_ms)
    if name in ("flush.messages", "flush.ms"):
        value = broker.get(TOPIC_CONFIG_KEYS[name].broker_synonym or "")
        return str(LONG_MAX if value is None else value)
    value = broker.get(TOPIC_CONFIG_KEYS[name].broker_synonym or "")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def validate_value(name: str, value: str | None) -> str:
    """Return the normalised value or raise InvalidConfigError naming the key."""
    key = TOPIC_CONFIG_KEYS.get(name)
    if key is None:
        raise InvalidConfigError(f"Unknown topic config name: {name}")
    if value is None:
        raise InvalidConfigError(f"Null value not supported for topic configs: {name}")
    text = value.strip()
    if key.kind == BOOLEAN:
        if text.lower() not in ("true", "false"):
            raise InvalidConfigError(f"Invalid value {value} for configuration {name}: "
                                     "Expected value to be either true or false")
        return text.lower()
    if key.kind in (INT, LONG, SHORT, DOUBLE):
        try:
            number = float(text) if key.kind == DOUBLE else int(text)
        except ValueError:
            kind = {INT: "an int", LONG: "a long", SHORT: "a short", DOUBLE: "a double"}[key.kind]
            raise InvalidConfigError(
                f"Invalid value {value} for configuration {name}: Not a number of type "
                f"{kind.split()[-1].upper()}") from None
        limit = INT_MAX if key.kind == INT else LONG_MAX
        if key.kind != DOUBLE and not -limit - 1 <= number <= limit:
            raise InvalidConfigError(f"Invalid value {value} for configuration {name}: "
                                     "Not a number of type " + ("INT" if key.kind == INT else "LONG"))
        if name == "compression.gzip.level" and number == 0:
            raise InvalidConfigError(f"Invalid value {value} for configuration {name}: "
                                     "Value must be -1 or between 1 and 9")
        if key.minimum is not None and number < key.minimum:
            raise InvalidConfigError(f"Invalid value {value} for configuration {name}: "
                                     f"Value must be at least {_num(key.minimum)}")
        if key.maximum is not None and number > key.maximum:
            raise InvalidConfigError(f"Invalid value {value} for configuration {name}: "
                                     f"Value must be no more than {_num(key.maximum)}")
        return text
    if key.kind == LIST:
        items = [item.strip() for item in text.split(",") if item.strip()]
        if key.choices:
            bad = [item for item in items if item not in key.choices]
            if bad or not items:
                raise InvalidConfigError(
                    f"Invalid value {value} for configuration {name}: String must be one of: "
                    + ", ".join(key.choices))
        return ",".join(items)
    if key.choices and text not in key.choices:
        raise InvalidConfigError(f"Invalid value {value} for configuration {name}: "
                                 "String must be one of: " + ", ".join(key.choices))
    return text


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def validate_overrides(overrides: dict[str, str | None]) -> dict[str, str]:
    return {name: validate_value(name, value) for name, value in overrides.items()}


def effective_configs(overrides: dict[str, str], broker: BrokerConfig) -> dict[str, str]:
    return {name: overrides.get(name, default_value(name, broker)) for name in TOPIC_CONFIG_KEYS}


def log_config_for(overrides: dict[str, str], broker: BrokerConfig) -> LogConfig:
    """The storage layer's view of a topic's effective configuration."""
    eff = effective_configs(overrides, broker)

    def optional_long(name: str) -> int | None:
        value = int(eff[name])
        return None if value >= LONG_MAX else value

    return LogConfig(
        segment_bytes=int(eff["segment.bytes"]),
        segment_ms=int(eff["segment.ms"]),
        retention_ms=int(eff["retention.ms"]),
        retention_bytes=int(eff["retention.bytes"]),
        index_interval_bytes=int(eff["index.interval.bytes"]),
        segment_index_bytes=int(eff["segment.index.bytes"]),
        flush_messages=optional_long("flush.messages"),
        flush_ms=optional_long("flush.ms"),
        message_timestamp_type=eff["message.timestamp.type"],
        file_delete_delay_ms=int(eff["file.delete.delay.ms"]),
        cleanup_policy=eff["cleanup.policy"],
        max_message_bytes=int(eff["max.message.bytes"]),
    )
