"""When the active segment gives way to a new one (pure)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

# Index entries store offsets relative to the segment's base offset as int32.
MAX_RELATIVE_OFFSET = 2**31 - 1


class RollReason(enum.Enum):
    SEGMENT_FULL = "segment.bytes reached"
    SEGMENT_AGED = "segment.ms elapsed"
    OFFSET_INDEX_FULL = "offset index full"
    TIME_INDEX_FULL = "time index full"
    RELATIVE_OFFSET_OVERFLOW = "offset too far from the segment's base offset"


@dataclass(frozen=True, slots=True)
class ActiveSegmentState:
    base_offset: int
    size_bytes: int
    created_ms: int
    # max_timestamp of the segment's first batch; negative when it has none.
    first_batch_timestamp_ms: int
    offset_index_full: bool
    time_index_full: bool


def roll_reason(
    segment: ActiveSegmentState,
    *,
    incoming_bytes: int,
    incoming_max_timestamp_ms: int,
    incoming_last_offset: int,
    now_ms: int,
    segment_bytes: int,
    segment_ms: int,
) -> RollReason | None:
    """Why the incoming append must go to a new segment, or None if it fits.

    Follows Kafka: the age of a segment is measured from its first batch's
    timestamp to the incoming batch's when both exist (so replayed old data does
    not roll constantly), else by wall clock since the segment was created. An
    empty segment is never rolled for size or age: a batch larger than
    segment.bytes still has to live somewhere.
    """
    if incoming_last_offset - segment.base_offset > MAX_RELATIVE_OFFSET:
        return RollReason.RELATIVE_OFFSET_OVERFLOW
    if segment.size_bytes == 0:
        return None
    if segment.size_bytes > segment_bytes - incoming_bytes:
        return RollReason.SEGMENT_FULL
    if segment.first_batch_timestamp_ms >= 0:
        waited_ms = incoming_max_timestamp_ms - segment.first_batch_timestamp_ms
    else:
        waited_ms = now_ms - segment.created_ms
    if waited_ms > segment_ms:
        return RollReason.SEGMENT_AGED
    if segment.offset_index_full:
        return RollReason.OFFSET_INDEX_FULL
    if segment.time_index_full:
        return RollReason.TIME_INDEX_FULL
    return None


def should_roll(
    segment: ActiveSegmentState,
    *,
    incoming_bytes: int,
    incoming_max_timestamp_ms: int,
    incoming_last_offset: int,
    now_ms: int,
    segment_bytes: int,
    segment_ms: int,
) -> bool:
    return (
        roll_reason(
            segment,
            incoming_bytes=incoming_bytes,
            incoming_max_timestamp_ms=incoming_max_timestamp_ms,
            incoming_last_offset=incoming_last_offset,
            now_ms=now_ms,
            segment_bytes=segment_bytes,
            segment_ms=segment_ms,
        )
        is not None
    )
