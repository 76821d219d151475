"""should_roll: when the active segment gives way."""

from __future__ import annotations

import dataclasses

from hypothesis import given
from hypothesis import strategies as st

from brook.broker.storage.roll import (
    MAX_RELATIVE_OFFSET,
    ActiveSegmentState,
    RollReason,
    roll_reason,
    should_roll,
)

SEGMENT = ActiveSegmentState(
    base_offset=1_000,
    size_bytes=500,
    created_ms=0,
    first_batch_timestamp_ms=10_000,
    offset_index_full=False,
    time_index_full=False,
)
INCOMING = {
    "incoming_bytes": 100,
    "incoming_max_timestamp_ms": 10_500,
    "incoming_last_offset": 1_010,
    "now_ms": 50_000,
    "segment_bytes": 1_000,
    "segment_ms": 1_000,
}


def reason(segment=SEGMENT, **changes):
    return roll_reason(segment, **(INCOMING | changes))


def test_no_roll_while_everything_fits():
    assert reason() is None
    assert not should_roll(SEGMENT, **INCOMING)


def test_roll_when_the_append_would_pass_segment_bytes():
    assert reason(incoming_bytes=500) is None
    assert reason(incoming_bytes=501) is RollReason.SEGMENT_FULL


def test_roll_by_age_uses_record_timestamps_when_present():
    assert reason(incoming_max_timestamp_ms=11_000) is None
    assert reason(incoming_max_timestamp_ms=11_001) is RollReason.SEGMENT_AGED
    # Wall clock does not matter while timestamps exist.
    assert reason(now_ms=10**12) is None


def test_roll_by_age_falls_back_to_creation_time():
    untimed = dataclasses.replace(SEGMENT, first_batch_timestamp_ms=-1, created_ms=49_000)
    assert reason(untimed) is None
    assert reason(untimed, now_ms=50_001) is RollReason.SEGMENT_AGED


def test_roll_when_an_index_is_full():
    assert reason(dataclasses.replace(SEGMENT, offset_index_full=True)) is (
        RollReason.OFFSET_INDEX_FULL
    )
    assert reason(dataclasses.replace(SEGMENT, time_index_full=True)) is (
        RollReason.TIME_INDEX_FULL
    )


def test_roll_when_offsets_no_longer_fit_in_the_index():
    limit = SEGMENT.base_offset + MAX_RELATIVE_OFFSET
    assert reason(incoming_last_offset=limit) is None
    assert reason(incoming_last_offset=limit + 1) is RollReason.RELATIVE_OFFSET_OVERFLOW


@given(
    incoming_bytes=st.integers(0, 10**10),
    timestamp=st.integers(-1, 10**13),
    now=st.integers(0, 10**13),
)
def test_an_empty_segment_only_rolls_for_offset_overflow(incoming_bytes, timestamp, now):
    empty = dataclasses.replace(SEGMENT, size_bytes=0, first_batch_timestamp_ms=-1)
    assert (
        reason(
            empty, incoming_bytes=incoming_bytes, incoming_max_timestamp_ms=timestamp, now_ms=now
        )
        is None
    )
