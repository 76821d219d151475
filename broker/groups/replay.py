"""Replaying one `__consumer_offsets` partition into groups and offsets (pure).

A coordinator serves a partition only while it leads it: it loads what the partition
holds when it gains it and drops the same groups when it loses it. Both need to know
which groups a partition holds, and that is what this module answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .log_format import (
    FormatError,
    GroupKey,
    GroupValue,
    OffsetKey,
    OffsetValue,
    decode_group_value,
    decode_key,
    decode_offset_value,
)
from .placement import partition_for


@dataclass
class Replayed:
    """The latest state per key: group values, and offsets by (group, topic, partition)."""

    groups: dict[str, GroupValue] = field(default_factory=dict)
    offsets: dict[tuple[str, str, int], OffsetValue] = field(default_factory=dict)
    records: int = 0
    unreadable: list[tuple[int, str]] = field(default_factory=list)  # (offset, why)

    def group_ids(self) -> set[str]:
        """Every group with a record left: metadata, offsets or both."""
        return set(self.groups) | {group for group, _, _ in self.offsets}


def replay(records: Iterable[tuple[int, bytes, bytes | None]]) -> Replayed:
    """(offset, key, value) in log order -> the latest record per key wins, a tombstone
    (value None) deletes; records that do not decode are listed, not fatal."""
    out = Replayed()
    for offset, key_bytes, value in records:
        out.records += 1
        try:
            key = decode_key(key_bytes)
            if isinstance(key, OffsetKey):
                where = (key.group, key.topic, key.partition)
                if value is None:
                    out.offsets.pop(where, None)
                else:
                    out.offsets[where] = decode_offset_value(value)
            elif isinstance(key, GroupKey):
                if value is None:
                    out.groups.pop(key.group, None)
                else:
                    out.groups[key.group] = decode_group_value(value)
        except FormatError as exc:
            out.unreadable.append((offset, str(exc)))
    return out


def groups_on_partition(group_ids: Iterable[str], index: int, partitions: int) -> set[str]:
    """The groups among `group_ids` that `__consumer_offsets` partition `index` holds."""
    return {g for g in group_ids if partition_for(g, partitions) == index}
