"""Whether a log needs cleaning, which part, and how cleaned segments are grouped (pure).

Kafka's rules: the active segment and anything younger than
`min.compaction.lag.ms` are uncleanable; the log is cleaned when the dirty part
(from the first dirty offset to the first uncleanable one) is at least
`min.cleanable.dirty.ratio` of the cleanable log, or when a dirty record is older
than `max.compaction.lag.ms`. Brook also cleans when a tombstone's
`delete.retention.ms` has passed, so deletes finish without waiting for new data.
"""

from __future__ import annotations

from dataclasses import dataclass

from .settings import CompactionSettings
from .state import CleanerState

MAX_RELATIVE_OFFSET = 2**31 - 1


@dataclass(frozen=True)
class SegmentInfo:
    base_offset: int
    next_offset: int
    size: int
    max_timestamp: int  # -1 when the segment has no timestamps
    first_timestamp: int  # of its first batch; -1 when unknown


@dataclass(frozen=True)
class CleanPlan:
    first_dirty: int
    first_uncleanable: int
    dirty_ratio: float
    reason: str


def first_uncleanable_offset(segments: list[SegmentInfo], settings: CompactionSettings,
                             now_ms: int) -> int:
    """Base offset of the active segment, or of the first segment too young to clean."""
    limit = segments[-1].base_offset
    if settings.min_compaction_lag_ms > 0:
        for segment in segments[:-1]:
            if segment.max_timestamp > now_ms - settings.min_compaction_lag_ms:
                return min(limit, segment.base_offset)
    return limit


def usable_state(segments: list[SegmentInfo], state: CleanerState) -> CleanerState:
    """The stored state, or a fresh one if the log was truncated below what was cleaned."""
    if segments and state.clean_offset > segments[-1].next_offset:
        return CleanerState()
    return state


def plan_cleaning(segments: list[SegmentInfo], state: CleanerState,
                  settings: CompactionSettings, now_ms: int) -> CleanPlan | None:
    """`segments` are all of the log's segments in order, the active one last."""
    if not settings.compact or len(segments) < 2:
        return None
    state = usable_state(segments, state)
    uncleanable = first_uncleanable_offset(segments, settings, now_ms)
    first_dirty = min(max(state.clean_offset, segments[0].base_offset), uncleanable)
    cleanable = [s for s in segments[:-1] if s.base_offset < uncleanable]
    clean_bytes = sum(s.size for s in cleanable if s.next_offset <= first_dirty)
    dirty = [s for s in cleanable if s.next_offset > first_dirty]
    dirty_bytes = sum(s.size for s in dirty)
    total = clean_bytes + dirty_bytes
    ratio = dirty_bytes / total if total else 0.0
    if dirty and dirty_bytes > 0 and ratio >= settings.min_cleanable_ratio:
        return CleanPlan(first_dirty, uncleanable, ratio, "dirty ratio")
    if dirty and settings.max_compaction_lag_ms < now_ms:
        oldest = min((s.first_timestamp for s in dirty if s.first_timestamp >= 0), default=None)
        if oldest is not None and now_ms - oldest > settings.max_compaction_lag_ms:
            return CleanPlan(first_dirty, uncleanable, ratio, "max.compaction.lag.ms")
    tombstones = state.oldest_tombstone_cleaned_ms
    if (tombstones is not None and clean_bytes > 0
            and now_ms - tombstones >= settings.delete_retention_ms):
        return CleanPlan(first_dirty, uncleanable, ratio, "tombstones past delete.retention.ms")
    return None


def group_segments(segments: list[SegmentInfo], max_bytes: int) -> list[list[SegmentInfo]]:
    """Consecutive segments merged into one cleaned segment while they fit.

    A group stays within `max_bytes` (segment.bytes) before cleaning and within the
    int32 offset range an index can address from its base offset.
    """
    groups: list[list[SegmentInfo]] = []
    for segment in segments:
        if groups:
            current = groups[-1]
            size = sum(s.size for s in current) + segment.size
            span = segment.next_offset - 1 - current[0].base_offset
            if size <= max_bytes and span <= MAX_RELATIVE_OFFSET:
                current.append(segment)
                continue
        groups.append([segment])
    return groups
