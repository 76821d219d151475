"""Committed offsets of every group, and Kafka's rules for when they expire (pure)."""

from __future__ import annotations

from collections.abc import Iterator

from .group import ClassicGroup, GroupState
from .log_format import OffsetValue
from .subscription import CONSUMER_PROTOCOL_TYPE

TopicPartition = tuple[str, int]


class OffsetStore:
    """group -> (topic, partition) -> OffsetValue.

    `flat` mirrors the committed offsets keyed by (group, topic, partition) so the
    metrics thread can take a consistent copy with one C-level `list(dict.items())`.
    """

    def __init__(self) -> None:
        self.by_group: dict[str, dict[TopicPartition, OffsetValue]] = {}
        self.flat: dict[tuple[str, str, int], int] = {}

    def get(self, group: str, topic: str, partition: int) -> OffsetValue | None:
        return self.by_group.get(group, {}).get((topic, partition))

    def put(self, group: str, topic: str, partition: int, value: OffsetValue) -> None:
        self.by_group.setdefault(group, {})[(topic, partition)] = value
        self.flat[(group, topic, partition)] = value.offset

    def delete(self, group: str, topic: str, partition: int) -> bool:
        offsets = self.by_group.get(group)
        if not offsets or offsets.pop((topic, partition), None) is None:
            return False
        self.flat.pop((group, topic, partition), None)
        if not offsets:
            del self.by_group[group]
        return True

    def of_group(self, group: str) -> dict[TopicPartition, OffsetValue]:
        return self.by_group.get(group, {})

    def has_offsets(self, group: str) -> bool:
        return bool(self.by_group.get(group))

    def groups(self) -> list[str]:
        return list(self.by_group)

    def partitions_of_topic(self, topic: str) -> Iterator[tuple[str, int]]:
        """(group, partition) of every committed offset on `topic`."""
        for group, offsets in self.by_group.items():
            for (name, partition) in offsets:
                if name == topic:
                    yield group, partition

    def snapshot(self) -> list[tuple[tuple[str, str, int], int]]:
        return list(self.flat.items())


def expired_offsets(group: ClassicGroup, offsets: dict[TopicPartition, OffsetValue],
                    now_ms: int, retention_ms: int) -> tuple[list[TopicPartition], bool]:
    """Kafka's offset expiration: (partitions whose offsets expire, all offsets expired?).

    - a simple group (offsets only, no protocol type): each offset expires
      `offsets.retention.minutes` after its commit;
    - an Empty group: every offset expires that long after the group became empty;
    - a Stable consumer group that knows its subscriptions: only offsets of topics it
      no longer subscribes to expire, counted from their commit;
    - otherwise nothing expires. An explicit expire timestamp (OffsetCommit v2-4
      retention) always wins.
    """
    if not group.is_simple:
        if group.state == GroupState.EMPTY:
            def base(value: OffsetValue) -> int:
                return group.state_timestamp_ms
        elif (group.protocol_type == CONSUMER_PROTOCOL_TYPE and group.subscribed is not None
              and group.state == GroupState.STABLE):
            def base(value: OffsetValue) -> int:
                return value.commit_timestamp
        else:
            return [], not offsets
    else:
        def base(value: OffsetValue) -> int:
            return value.commit_timestamp
    expired = []
    everything = True
    for (topic, partition), value in offsets.items():
        if group.is_subscribed_to(topic):
            everything = False
            continue
        if value.expire_timestamp >= 0:
            gone = now_ms >= value.expire_timestamp
        else:
            gone = now_ms - base(value) >= retention_ms
        if gone:
            expired.append((topic, partition))
        else:
            everything = False
    return expired, everything
