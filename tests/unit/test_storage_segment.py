"""LogSegment against real files: appends, lookups, recovery and truncation."""

from __future__ import annotations

import os

import pytest

from brook.broker.records import Record, assign_offsets, encode_batch, parse_batches
from brook.broker.storage import segment as segment_module
from brook.broker.storage.log_config import LogConfig
from brook.broker.storage.segment import LogSegment, parse_segment_file_name, segment_file_name

CONFIG = LogConfig(index_interval_bytes=200)


def batches(first_offset: int, sizes: list[int], timestamps: list[int] | None = None):
    """Offset-assigned batches with the given record counts, as (bytes, headers)."""
    timestamps = timestamps or [1_000 + i for i in range(len(sizes))]
    data = bytearray()
    for count, timestamp in zip(sizes, timestamps, strict=True):
        data += encode_batch([Record(i, timestamp + i, None, b"x" * 40, []) for i in range(count)])
    assign_offsets(data, parse_batches(data), first_offset)
    return data, parse_batches(data)


@pytest.fixture
def segment(tmp_path):
    opened = LogSegment.create(tmp_path, 100, CONFIG, now_ms=0)
    yield opened
    opened.close()


def test_file_names_are_twenty_digit_base_offsets():
    assert segment_file_name(42, ".log") == "00000000000000000042.log"
    assert parse_segment_file_name("00000000000000000042.timeindex") == (42, ".timeindex")
    assert parse_segment_file_name("42.log") is None
    assert parse_segment_file_name("00000000000000000042.log.deleted") is None


def test_append_then_find_batches_through_the_index(segment):
    data, headers = batches(100, [2] * 30)
    segment.append(data, headers)
    assert segment.next_offset == 160 and segment.size == len(data)
    assert len(segment.offset_index) > 5
    positions = {}
    position = 0
    for header in headers:
        positions[header.base_offset] = position
        position += header.size
    for offset in range(100, 160):
        found_position, header = segment.find_batch(offset)
        assert header.base_offset == offset - offset % 2
        assert found_position == positions[header.base_offset]
    assert segment.find_batch(160) is None
    size = headers[0].size
    assert segment.last_boundary_within(0, 5 * size + 3) == 5 * size
    assert segment.last_boundary_within(2 * size, 2 * size + 10) == 2 * size


def test_recover_cuts_a_torn_tail_and_rebuilds_the_same_indexes(tmp_path, segment):
    data, headers = batches(100, [1, 3, 2] * 10)
    segment.append(data, headers)
    segment.seal()
    index_bytes = segment.offset_index.path.read_bytes()
    time_index_bytes = segment.time_index.path.read_bytes()
    os.write(segment.fd, b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00 torn")
    assert segment.recover() == 17
    assert segment.size == len(data) == segment.log_path.stat().st_size
    assert segment.offset_index.path.read_bytes() == index_bytes
    assert segment.time_index.path.read_bytes() == time_index_bytes
    assert segment.next_offset == headers[-1].next_offset


def test_recovery_reads_across_chunk_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr(segment_module, "RECOVERY_CHUNK_BYTES", 150)
    segment = LogSegment.create(tmp_path, 0, CONFIG, now_ms=0)
    data, headers = batches(0, [1, 5, 2, 7, 1, 1, 3])  # some larger than a chunk
    segment.append(data, headers)
    assert segment.recover() == 0
    assert segment.next_offset == 20 and segment.size == len(data)
    segment.close()


def test_recovery_stops_where_offsets_go_backwards(tmp_path):
    segment = LogSegment.create(tmp_path, 0, CONFIG, now_ms=0)
    first, first_headers = batches(0, [2, 2])
    segment.append(first, first_headers)
    stale, stale_headers = batches(1, [1])
    segment.append(stale, stale_headers)
    assert segment.recover() == len(stale)
    assert segment.next_offset == 4
    segment.close()


def test_clean_load_trusts_indexes_and_reads_only_the_tail(tmp_path):
    segment = LogSegment.create(tmp_path, 0, CONFIG, now_ms=0)
    data, headers = batches(0, [2] * 20, timestamps=[5_000 - i for i in range(20)])
    segment.append(data, headers)
    segment.close()
    loaded, truncated = LogSegment.load(tmp_path, 0, CONFIG, now_ms=0, recover=False)
    assert truncated == 0
    assert (loaded.next_offset, loaded.size) == (40, len(data))
    assert (loaded.max_timestamp, loaded.offset_of_max_timestamp) == (5_001, 1)
    assert loaded.max_timestamp_record() == (1, 5_001)
    assert loaded.first_batch_timestamp == 5_001
    loaded.close()


def test_find_offset_for_timestamp_honours_min_offset(segment):
    data, headers = batches(100, [3] * 10, timestamps=[i * 100 for i in range(10)])
    segment.append(data, headers)
    assert segment.find_offset_for_timestamp(250, min_offset=100) == (109, 300)
    assert segment.find_offset_for_timestamp(0, min_offset=104) == (104, 101)
    assert segment.find_offset_for_timestamp(10_000, min_offset=100) is None


def test_truncate_to_keeps_indexes_consistent(segment):
    data, headers = batches(100, [2] * 30, timestamps=[i * 10 for i in range(30)])
    segment.append(data, headers)
    segment.truncate_to(131)  # inside the batch 130-131
    assert segment.next_offset == 130
    assert segment.size == sum(h.size for h in headers[:15])
    assert segment.max_timestamp == 141 and segment.offset_of_max_timestamp == 129
    last_offset, last_position = segment.offset_index.last_entry()
    assert last_offset < 130 and last_position < segment.size
    assert segment.time_index.last_entry()[1] < 130
    more, more_headers = batches(130, [2])
    segment.append(more, more_headers)
    assert segment.find_batch(130)[1].base_offset == 130
