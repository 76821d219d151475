"""Record batch v2: validation, offset assignment and the record codec."""

from __future__ import annotations

import struct

import cramjam
import pytest
from crc32c import crc32c
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from brook.broker import records
from brook.broker.records import (
    BATCH_HEADER_SIZE,
    CORRUPT_MESSAGE,
    INVALID_RECORD,
    MESSAGE_TOO_LARGE,
    InvalidRecordError,
    Record,
    assign_offsets,
    decode_records,
    encode_batch,
    parse_batches,
    scan_valid_batches,
)

CODECS = [
    records.COMPRESSION_NONE,
    records.COMPRESSION_GZIP,
    records.COMPRESSION_SNAPPY,
    records.COMPRESSION_LZ4,
    records.COMPRESSION_ZSTD,
]


def simple_batch(count: int = 3, base_offset: int = 0, compression: int = 0, **kwargs) -> bytes:
    return encode_batch(
        [Record(base_offset + i, 1_000 + i, f"k{i}".encode(), b"v" * 20, []) for i in range(count)],
        base_offset=base_offset,
        compression=compression,
        **kwargs,
    )


def with_fixed_crc(batch: bytes | bytearray) -> bytes:
    """The batch with its CRC recomputed, so a test can change covered fields on purpose."""
    fixed = bytearray(batch)
    struct.pack_into(">I", fixed, 17, crc32c(bytes(fixed[21:])))
    return bytes(fixed)


def patched(batch: bytes, fmt: str, position: int, value: int) -> bytes:
    changed = bytearray(batch)
    struct.pack_into(fmt, changed, position, value)
    return with_fixed_crc(changed)


record_lists = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=3),  # offset gap before this record
        st.integers(min_value=-(2**40), max_value=2**41),
        st.none() | st.binary(max_size=40),
        st.none() | st.binary(max_size=200),
        st.lists(st.tuples(st.text(max_size=8), st.none() | st.binary(max_size=8)), max_size=3),
    ),
    min_size=1,
    max_size=20,
)


def build_records(spec, base_offset: int) -> list[Record]:
    result = []
    offset = base_offset - 1
    for gap, timestamp, key, value, headers in spec:
        offset += gap + 1
        result.append(Record(offset, timestamp, key, value, list(headers)))
    return result


# ------------------------------------------------------------------ layout


def test_header_is_61_bytes_and_fields_sit_where_kafka_puts_them():
    batch = simple_batch(
        count=4,
        base_offset=7,
        producer_id=42,
        producer_epoch=3,
        base_sequence=9,
        partition_leader_epoch=5,
        is_transactional=True,
    )
    (header,) = parse_batches(batch)
    assert BATCH_HEADER_SIZE == 61
    assert header.base_offset == 7
    assert header.size == len(batch) == header.batch_length + 12
    assert header.partition_leader_epoch == 5
    assert header.magic == 2
    assert header.last_offset_delta == 3 and header.last_offset == 10
    assert header.records_count == 4
    assert (header.base_timestamp, header.max_timestamp) == (1_000, 1_003)
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (42, 3, 9)
    assert header.is_transactional and not header.is_control
    assert header.compression == 0 and header.timestamp_type == 0
    assert struct.unpack_from(">q", batch, 0)[0] == 7
    assert struct.unpack_from(">i", batch, 57)[0] == 4


def test_attribute_bits():
    (header,) = parse_batches(
        simple_batch(compression=records.COMPRESSION_ZSTD, is_control=True, timestamp_type=1)
    )
    assert header.compression == 4
    assert header.is_control
    assert header.timestamp_type == 1
    assert header.attributes == 4 | 8 | 32


# ------------------------------------------------------------------ codec


@pytest.mark.parametrize("compression", CODECS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=record_lists, base_offset=st.integers(min_value=0, max_value=2**40))
def test_encode_decode_round_trip(compression, spec, base_offset):
    original = build_records(spec, base_offset)
    batch = encode_batch(original, base_offset=base_offset, compression=compression)
    ((_, header),) = list(scan_valid_batches(batch))
    assert header.records_count == len(original)
    assert header.last_offset == original[-1].offset
    assert header.max_timestamp == max(r.timestamp for r in original)
    assert decode_records(batch) == original


def test_large_payload_round_trips_through_every_codec():
    # Bigger than one lz4 block (64 KiB) and several xerial snappy blocks (32 KiB).
    value = bytes(range(256)) * 1200
    original = [Record(0, 5, None, value, []), Record(1, 6, b"k", value[::-1], [])]
    for compression in CODECS:
        batch = encode_batch(original, compression=compression)
        parse_batches(batch)
        assert decode_records(batch) == original


def test_snappy_is_written_in_the_java_clients_xerial_framing():
    batch = simple_batch(compression=records.COMPRESSION_SNAPPY)
    assert batch[BATCH_HEADER_SIZE:].startswith(records.XERIAL_SNAPPY_MAGIC)


def test_raw_snappy_from_librdkafka_decodes():
    body = encode_batch([Record(0, 1, b"k", b"value", [("h", None)])])[BATCH_HEADER_SIZE:]
    batch = bytearray(encode_batch([Record(0, 1, b"k", b"value", [("h", None)])]))
    raw = bytes(cramjam.snappy.compress_raw(body))
    batch = batch[:BATCH_HEADER_SIZE] + raw
    struct.pack_into(">i", batch, 8, len(batch) - 12)
    struct.pack_into(">h", batch, 21, records.COMPRESSION_SNAPPY)
    batch = with_fixed_crc(batch)
    parse_batches(batch)
    assert decode_records(batch) == [Record(0, 1, b"k", b"value", [("h", None)])]


def test_log_append_time_batches_report_max_timestamp_for_every_record():
    batch = bytearray(simple_batch(count=3))
    headers = parse_batches(batch)
    assign_offsets(batch, headers, 100, log_append_time_ms=55_555)
    decoded = decode_records(batch)
    assert [r.timestamp for r in decoded] == [55_555] * 3
    assert [r.offset for r in decoded] == [100, 101, 102]


def test_encode_keeps_an_explicit_offset_range_for_compacted_batches():
    batch = encode_batch([Record(3, 10, b"k", None, [])], last_offset_delta=9)
    ((_, header),) = list(scan_valid_batches(batch))
    assert (header.base_offset, header.last_offset, header.records_count) == (0, 9, 1)
    with pytest.raises(InvalidRecordError):  # produce would refuse it: count != range
        parse_batches(batch)
    empty = encode_batch([], base_offset=5, last_offset_delta=2)
    ((_, header),) = list(scan_valid_batches(empty))
    assert header.records_count == 0 and header.max_timestamp == -1
    assert decode_records(empty) == []


def test_encode_refuses_decreasing_offsets():
    with pytest.raises(ValueError):
        encode_batch([Record(1, 0, None, None, []), Record(1, 0, None, None, [])])


# ------------------------------------------------------------------ interop


KAFKA_PYTHON_CODECS = {
    records.COMPRESSION_NONE: DefaultRecordBatch.CODEC_NONE,
    records.COMPRESSION_GZIP: DefaultRecordBatch.CODEC_GZIP,
    records.COMPRESSION_LZ4: DefaultRecordBatch.CODEC_LZ4,
    records.COMPRESSION_ZSTD: DefaultRecordBatch.CODEC_ZSTD,
}


@pytest.mark.parametrize("compression", sorted(KAFKA_PYTHON_CODECS))
def test_batches_built_by_kafka_python_parse_and_decode(compression):
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=KAFKA_PYTHON_CODECS[compression],
        is_transactional=False,
        producer_id=7,
        producer_epoch=1,
        base_sequence=0,
        batch_size=1 << 20,
    )
    for i in range(5):
        builder.append(
            i,
            timestamp=2_000 + i,
            key=b"key%d" % i,
            value=b"value" * i,
            headers=[("trace", b"t%d" % i)],
        )
    batch = bytes(builder.build())
    (header,) = parse_batches(batch)
    assert header.records_count == 5 and header.producer_id == 7
    assert decode_records(batch) == [
        Record(i, 2_000 + i, b"key%d" % i, b"value" * i, [("trace", b"t%d" % i)]) for i in range(5)
    ]


@pytest.mark.parametrize("compression", sorted(KAFKA_PYTHON_CODECS))
def test_batches_we_build_read_back_in_kafka_python(compression):
    original = [Record(10 + i, 3_000 - i, None, b"v%d" % i, [("h", None)]) for i in range(4)]
    batch = DefaultRecordBatch(bytearray(encode_batch(original, 10, compression)))
    assert batch.validate_crc()
    assert [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in batch] == [
        (r.offset, r.timestamp, r.key, r.value, [("h", None)]) for r in original
    ]


# ------------------------------------------------------------------ validation


def test_parse_accepts_several_batches_back_to_back():
    data = simple_batch(2) + simple_batch(3, compression=1) + simple_batch(1)
    headers = parse_batches(data)
    assert [h.records_count for h in headers] == [2, 3, 1]
    assert sum(h.size for h in headers) == len(data)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", CORRUPT_MESSAGE),
        (simple_batch()[:-1], CORRUPT_MESSAGE),  # truncated
        (simple_batch()[:30], CORRUPT_MESSAGE),
        (simple_batch() + b"\x00" * 5, CORRUPT_MESSAGE),  # trailing bytes
        (simple_batch() + simple_batch()[:70], CORRUPT_MESSAGE),
        (patched(simple_batch(), ">i", 8, 20), CORRUPT_MESSAGE),  # undersized length
        (patched(simple_batch(), ">i", 8, 10**9), CORRUPT_MESSAGE),  # oversized length
        (patched(simple_batch(), ">i", 8, -5), CORRUPT_MESSAGE),
        (patched(simple_batch(), ">b", 16, 1), INVALID_RECORD),  # magic 1
        (patched(simple_batch(), ">i", 57, 2), INVALID_RECORD),  # count != delta + 1
        (patched(simple_batch(), ">i", 57, -1), INVALID_RECORD),
        (patched(simple_batch(), ">i", 23, -1), INVALID_RECORD),
        (patched(simple_batch(), ">h", 21, 6), INVALID_RECORD),  # unknown codec
        (patched(simple_batch(producer_id=5), ">i", 53, -1), INVALID_RECORD),
    ],
)
def test_parse_rejects_with_the_kafka_error_code(data, code):
    with pytest.raises(InvalidRecordError) as raised:
        parse_batches(data)
    assert raised.value.error_code == code
    assert raised.value.message


def test_crc_mismatch_is_corrupt_message():
    batch = bytearray(simple_batch())
    batch[-1] ^= 0xFF
    with pytest.raises(InvalidRecordError) as raised:
        parse_batches(batch)
    assert raised.value.error_code == CORRUPT_MESSAGE
    assert "CRC" in str(raised.value)


def test_batches_above_max_batch_bytes_are_too_large():
    batch = simple_batch(10)
    parse_batches(batch, max_batch_bytes=len(batch))
    with pytest.raises(InvalidRecordError) as raised:
        parse_batches(batch, max_batch_bytes=len(batch) - 1)
    assert raised.value.error_code == MESSAGE_TOO_LARGE


def test_offset_and_epoch_are_outside_the_crc():
    batch = patched(simple_batch(), ">q", 0, 123)
    unchanged_crc = bytearray(simple_batch())
    struct.pack_into(">q", unchanged_crc, 0, 99)
    struct.pack_into(">i", unchanged_crc, 12, 77)
    assert parse_batches(unchanged_crc)[0].base_offset == 99
    assert parse_batches(batch)[0].base_offset == 123


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_parse_of_arbitrary_bytes_only_ever_raises_invalid_record(data):
    try:
        parse_batches(data)
    except InvalidRecordError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=61, max_size=300))
def test_scanning_or_decoding_arbitrary_bytes_never_raises_anything_else(data):
    assert all(header.size >= BATCH_HEADER_SIZE for _, header in scan_valid_batches(data))
    try:
        decode_records(data)
    except InvalidRecordError:
        pass


@settings(max_examples=300, deadline=None)
@given(
    compression=st.sampled_from(CODECS),
    flips=st.lists(
        st.tuples(st.integers(min_value=0), st.integers(min_value=1, max_value=255)),
        max_size=4,
    ),
    cut=st.none() | st.integers(min_value=0),
)
def test_parse_of_damaged_batches_only_ever_raises_invalid_record(compression, flips, cut):
    data = bytearray(simple_batch(3, compression=compression) + simple_batch(2))
    for position, mask in flips:
        data[position % len(data)] ^= mask
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    try:
        headers = parse_batches(data)
    except InvalidRecordError:
        return
    # Whatever survived validation must be usable without surprises.
    for header in headers:
        assert header.magic == 2 and header.records_count == header.last_offset_delta + 1


@settings(max_examples=200, deadline=None)
@given(
    compression=st.sampled_from(CODECS),
    position=st.integers(min_value=0),
    mask=st.integers(min_value=1, max_value=255),
)
def test_decoding_a_damaged_body_only_ever_raises_invalid_record(compression, position, mask):
    batch = bytearray(simple_batch(4, compression=compression))
    body_position = BATCH_HEADER_SIZE + position % (len(batch) - BATCH_HEADER_SIZE)
    batch[body_position] ^= mask
    try:
        decode_records(with_fixed_crc(batch))
    except InvalidRecordError:
        pass


# ------------------------------------------------------------------ recovery scan


def test_scan_stops_at_a_torn_tail():
    first, second = simple_batch(2), simple_batch(3)
    data = first + second + simple_batch(4)[:50]
    found = list(scan_valid_batches(data))
    assert [position for position, _ in found] == [0, len(first)]


def test_scan_stops_at_an_invalid_batch_even_when_valid_ones_follow():
    first = simple_batch(2)
    broken = bytearray(simple_batch(2))
    broken[-1] ^= 1
    found = list(scan_valid_batches(first + broken + simple_batch(2)))
    assert len(found) == 1


def test_scan_starts_where_asked():
    first = simple_batch(1)
    data = first + simple_batch(2)
    assert [h.records_count for _, h in scan_valid_batches(data, len(first))] == [2]


# ------------------------------------------------------------------ offsets


def test_assign_offsets_rewrites_each_batch_in_place_and_keeps_crcs_valid():
    data = bytearray(simple_batch(2) + simple_batch(3, compression=2) + simple_batch(1))
    headers = parse_batches(data)
    last = assign_offsets(data, headers, 1_000, partition_leader_epoch=9)
    assert last == 1_005
    rewritten = parse_batches(data)
    assert [(h.base_offset, h.last_offset) for h in rewritten] == [
        (1_000, 1_001),
        (1_002, 1_004),
        (1_005, 1_005),
    ]
    assert all(h.partition_leader_epoch == 9 for h in rewritten)
    assert [h.crc for h in rewritten] == [h.crc for h in headers]
    assert [r.offset for r in decode_records(data[headers[0].size :])] == [1_002, 1_003, 1_004]


def test_log_append_time_sets_the_type_bit_and_max_timestamp_and_a_new_crc():
    data = bytearray(simple_batch(2, compression=1))
    headers = parse_batches(data)
    assign_offsets(data, headers, 0, log_append_time_ms=9_999)
    (header,) = parse_batches(data)  # CRC checked again
    assert header.timestamp_type == 1
    assert header.max_timestamp == 9_999
    assert header.base_timestamp == headers[0].base_timestamp
    assert header.compression == 1
    assert header.crc != headers[0].crc
