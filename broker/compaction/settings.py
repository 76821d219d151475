"""A topic's compaction settings, from its effective configs (pure)."""

from __future__ import annotations

from dataclasses import dataclass

LONG_MAX = 9_223_372_036_854_775_807


@dataclass(frozen=True)
class CompactionSettings:
    compact: bool
    delete_retention_ms: int = 86_400_000
    min_cleanable_ratio: float = 0.5
    min_compaction_lag_ms: int = 0
    max_compaction_lag_ms: int = LONG_MAX
    segment_bytes: int = 1_073_741_824

    @classmethod
    def from_topic_configs(cls, effective: dict[str, str]) -> CompactionSettings:
        policies = {p.strip() for p in effective.get("cleanup.policy", "delete").split(",")}
        return cls(
            compact="compact" in policies,
            delete_retention_ms=int(effective.get("delete.retention.ms", 86_400_000)),
            min_cleanable_ratio=float(effective.get("min.cleanable.dirty.ratio", 0.5)),
            min_compaction_lag_ms=int(effective.get("min.compaction.lag.ms", 0)),
            max_compaction_lag_ms=int(effective.get("max.compaction.lag.ms", LONG_MAX)),
            segment_bytes=int(effective.get("segment.bytes", 1_073_741_824)),
        )
