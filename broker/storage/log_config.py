"""Per-topic log settings, with Apache Kafka's topic-config names and defaults."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

# Kafka spells "never" for flush.messages / flush.ms as Long.MAX_VALUE.
KAFKA_NEVER = 2**63 - 1

TIMESTAMP_TYPES = ("CreateTime", "LogAppendTime")

# Kafka topic-config name -> LogConfig field.
KAFKA_CONFIG_NAMES = {
    "segment.bytes": "segment_bytes",
    "segment.ms": "segment_ms",
    "retention.ms": "retention_ms",
    "retention.bytes": "retention_bytes",
    "index.interval.bytes": "index_interval_bytes",
    "segment.index.bytes": "segment_index_bytes",
    "flush.messages": "flush_messages",
    "flush.ms": "flush_ms",
    "message.timestamp.type": "message_timestamp_type",
    "file.delete.delay.ms": "file_delete_delay_ms",
    "cleanup.policy": "cleanup_policy",
    "max.message.bytes": "max_message_bytes",
}
_STRING_FIELDS = {"message_timestamp_type", "cleanup_policy"}
_NEVER_WHEN_UNSET = {"flush_messages", "flush_ms"}


@dataclass(frozen=True)
class LogConfig:
    segment_bytes: int = 1073741824
    segment_ms: int = 604800000
    retention_ms: int = 604800000  # -1: keep forever
    retention_bytes: int = -1  # -1: no size limit
    index_interval_bytes: int = 4096
    segment_index_bytes: int = 10485760
    flush_messages: int | None = None  # None: never flush because of a message count
    flush_ms: int | None = None  # None: never flush because of time
    message_timestamp_type: str = "CreateTime"
    file_delete_delay_ms: int = 60000
    cleanup_policy: str = "delete"
    max_message_bytes: int = 1048588

    def __post_init__(self) -> None:
        if self.segment_bytes < 14:
            raise ValueError("segment.bytes must be at least 14")
        if self.segment_ms < 1:
            raise ValueError("segment.ms must be at least 1")
        if self.index_interval_bytes < 0:
            raise ValueError("index.interval.bytes must not be negative")
        if self.segment_index_bytes < 12:
            raise ValueError("segment.index.bytes must hold at least one entry")
        if self.retention_ms < -1:
            raise ValueError("retention.ms must be -1 or more")
        if self.flush_messages is not None and self.flush_messages < 1:
            raise ValueError("flush.messages must be at least 1")
        if self.flush_ms is not None and self.flush_ms < 0:
            raise ValueError("flush.ms must not be negative")
        if self.message_timestamp_type not in TIMESTAMP_TYPES:
            raise ValueError(f"message.timestamp.type must be one of {TIMESTAMP_TYPES}")
        if not set(self.cleanup_policies) <= {"delete", "compact"}:
            raise ValueError("cleanup.policy must be delete, compact or both")

    @property
    def cleanup_policies(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.cleanup_policy.split(",") if p.strip())

    @property
    def deletes_by_retention(self) -> bool:
        return "delete" in self.cleanup_policies

    @property
    def uses_log_append_time(self) -> bool:
        return self.message_timestamp_type == "LogAppendTime"

    @classmethod
    def from_kafka_configs(
        cls, configs: Mapping[str, str | None], base: LogConfig | None = None
    ) -> LogConfig:
        """Overlay Kafka-named settings (strings, as the Admin API sends them) on `base`.

        Unknown names are ignored (they belong to other layers); None restores the
        default. Raises ValueError naming the setting when a value is invalid.
        """
        base = base or cls()
        defaults = cls()
        changes: dict[str, object] = {}
        for name, raw in configs.items():
            attribute = KAFKA_CONFIG_NAMES.get(name)
            if attribute is None:
                continue
            if raw is None:
                changes[attribute] = getattr(defaults, attribute)
            elif attribute in _STRING_FIELDS:
                changes[attribute] = raw.strip()
            else:
                try:
                    value = int(raw)
                except ValueError:
                    raise ValueError(f"{name} must be an integer, got {raw!r}") from None
                if attribute in _NEVER_WHEN_UNSET and value >= KAFKA_NEVER:
                    changes[attribute] = None
                else:
                    changes[attribute] = value
        return dataclasses.replace(base, **changes)

    def to_kafka_configs(self) -> dict[str, str]:
        """Every setting under its Kafka name, as DescribeConfigs reports it."""
        result = {}
        for name, attribute in KAFKA_CONFIG_NAMES.items():
            value = getattr(self, attribute)
            if value is None:
                value = KAFKA_NEVER
            result[name] = str(value)
        return result
