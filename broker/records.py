"""Kafka record batches, format v2 (magic 2): validation, offset assignment, codecs.

The broker keeps batches as opaque bytes. Only the 61-byte batch header is read on
the produce path (`parse_batches`, `assign_offsets`); whole records are decoded
only where a record's own offset or timestamp matters (`decode_records`).

Batch layout (big-endian), offsets in bytes:

    0  base_offset int64          27 base_timestamp int64
    8  batch_length int32         35 max_timestamp int64
   12  partition_leader_epoch     43 producer_id int64
   16  magic int8                 51 producer_epoch int16
   17  crc uint32                 53 base_sequence int32
   21  attributes int16           57 records_count int32
   23  last_offset_delta int32    61 records...

The CRC32C covers bytes 21..end, so base_offset and partition_leader_epoch can be
rewritten without recomputing it.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import cramjam
from crc32c import crc32c

# Kafka error codes raised through InvalidRecordError.
CORRUPT_MESSAGE = 2
MESSAGE_TOO_LARGE = 10
RECORD_LIST_TOO_LARGE = 18
INVALID_RECORD = 87

BATCH_HEADER_SIZE = 61
# batch_length counts the bytes after itself: the whole batch is batch_length + 12.
LENGTH_FIELD_END = 12
CRC_COVERAGE_START = 21
MAGIC_V2 = 2

COMPRESSION_NONE = 0
COMPRESSION_GZIP = 1
COMPRESSION_SNAPPY = 2
COMPRESSION_LZ4 = 3
COMPRESSION_ZSTD = 4
COMPRESSION_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}

TIMESTAMP_TYPE_CREATE_TIME = 0
TIMESTAMP_TYPE_LOG_APPEND_TIME = 1
NO_TIMESTAMP = -1

_COMPRESSION_MASK = 0x07
_TIMESTAMP_TYPE_BIT = 0x08
_TRANSACTIONAL_BIT = 0x10
_CONTROL_BIT = 0x20

_HEADER = struct.Struct(">qiibIhiqqqhii")
_OFFSET_AND_LENGTH = struct.Struct(">qi")
_BASE_OFFSET = struct.Struct(">q")
_INT32 = struct.Struct(">i")
_UINT32 = struct.Struct(">I")
_ATTRIBUTES = struct.Struct(">h")
_INT64 = struct.Struct(">q")
_BASE_OFFSET_POS = 0
_EPOCH_POS = 12
_MAGIC_POS = 16
_CRC_POS = 17
_ATTRIBUTES_POS = 21
_MAX_TIMESTAMP_POS = 35

# The xerial framing snappy-java (and so the Java client) writes around raw blocks.
XERIAL_SNAPPY_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = struct.Struct(">8sii")
_XERIAL_VERSION = 1
_XERIAL_BLOCK_SIZE = 32 * 1024


class InvalidRecordError(Exception):
    """A batch the broker must refuse; `error_code` is the Kafka error to return."""

    def __init__(self, error_code: int, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


@dataclass(frozen=True, slots=True)
class BatchHeader:
    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        """Bytes the whole batch occupies, header included."""
        return self.batch_length + LENGTH_FIELD_END

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def next_offset(self) -> int:
        return self.base_offset + self.last_offset_delta + 1

    @property
    def compression(self) -> int:
        return self.attributes & _COMPRESSION_MASK

    @property
    def timestamp_type(self) -> int:
        return 1 if self.attributes & _TIMESTAMP_TYPE_BIT else 0

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & _TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & _CONTROL_BIT)

    @property
    def has_producer_id(self) -> bool:
        return self.producer_id >= 0


@dataclass(frozen=True, slots=True)
class Record:
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]] = field(default_factory=list)


def read_header(buf: bytes | bytearray | memoryview, position: int = 0) -> BatchHeader:
    """Unpack the header at `position` without validating anything.

    For bytes that were validated earlier (the log's own segments).
    """
    return BatchHeader(*_HEADER.unpack_from(buf, position))


def _check_batch(view: memoryview, position: int, end: int, *, strict: bool) -> BatchHeader:
    """Validate the batch at `position` and return its header.

    `strict` adds the checks Kafka applies to produced data; recovery is lenient
    about record counts because compaction legitimately leaves gaps and empty
    batches.
    """
    available = end - position
    if available < LENGTH_FIELD_END:
        raise InvalidRecordError(
            CORRUPT_MESSAGE, f"truncated batch at byte {position}: {available} bytes left"
        )
    _, batch_length = _OFFSET_AND_LENGTH.unpack_from(view, position)
    size = batch_length + LENGTH_FIELD_END
    if size < BATCH_HEADER_SIZE:
        raise InvalidRecordError(
            CORRUPT_MESSAGE,
            f"batch at byte {position} declares {size} bytes, less than a batch header",
        )
    if size > available:
        raise InvalidRecordError(
            CORRUPT_MESSAGE,
            f"batch at byte {position} declares {size} bytes but only {available} remain",
        )
    magic = view[position + _MAGIC_POS]
    if magic != MAGIC_V2:
        raise InvalidRecordError(
            INVALID_RECORD, f"batch at byte {position} has magic {magic}, only 2 is supported"
        )
    header = BatchHeader(*_HEADER.unpack_from(view, position))
    actual_crc = crc32c(view[position + CRC_COVERAGE_START : position + size])
    if actual_crc != header.crc:
        raise InvalidRecordError(
            CORRUPT_MESSAGE,
            f"batch at byte {position} has CRC {header.crc:#010x}, computed {actual_crc:#010x}",
        )
    if header.records_count < 0 or header.last_offset_delta < 0:
        raise InvalidRecordError(
            INVALID_RECORD,
            f"batch at byte {position} has negative count {header.records_count} "
            f"or last offset delta {header.last_offset_delta}",
        )
    if header.compression > COMPRESSION_ZSTD:
        raise InvalidRecordError(
            INVALID_RECORD,
            f"batch at byte {position} uses unknown compression {header.compression}",
        )
    if strict:
        if header.records_count == 0:
            raise InvalidRecordError(INVALID_RECORD, f"batch at byte {position} has no records")
        if header.records_count != header.last_offset_delta + 1:
            raise InvalidRecordError(
                INVALID_RECORD,
                f"batch at byte {position} has {header.records_count} records but "
                f"last offset delta {header.last_offset_delta}",
            )
        if header.producer_id >= 0 and header.base_sequence < 0:
            raise InvalidRecordError(
                INVALID_RECORD,
                f"batch at byte {position} has producer id {header.producer_id} "
                f"but no base sequence",
            )
    return header


def parse_batches(
    data: bytes | bytearray | memoryview, max_batch_bytes: int | None = None
) -> list[BatchHeader]:
    """Validate a produce payload: one or more whole v2 batches, nothing trailing.

    `max_batch_bytes` (the topic's max.message.bytes) refuses any larger batch with
    MESSAGE_TOO_LARGE.
    """
    with memoryview(data) as view:
        end = len(view)
        if end == 0:
            raise InvalidRecordError(CORRUPT_MESSAGE, "no record batches")
        headers = []
        position = 0
        while position < end:
            header = _check_batch(view, position, end, strict=True)
            if max_batch_bytes is not None and header.size > max_batch_bytes:
                raise InvalidRecordError(
                    MESSAGE_TOO_LARGE,
                    f"batch of {header.size} bytes exceeds the limit of {max_batch_bytes}",
                )
            headers.append(header)
            position += header.size
        return headers


def scan_valid_batches(
    buf: bytes | bytearray | memoryview, start: int = 0
) -> Iterator[tuple[int, BatchHeader]]:
    """Yield (position, header) for each whole, valid batch from `start` on.

    Stops silently at the first torn or invalid batch: recovery truncates there.
    """
    with memoryview(buf) as view:
        end = len(view)
        position = start
        while position < end:
            try:
                header = _check_batch(view, position, end, strict=False)
            except InvalidRecordError:
                return
            yield position, header
            position += header.size


def assign_offsets(
    buf: bytearray,
    headers: Iterable[BatchHeader],
    first_offset: int,
    partition_leader_epoch: int = 0,
    log_append_time_ms: int | None = None,
) -> int:
    """Rewrite the batches in `buf` (contiguous from byte 0) in place; return the last offset.

    base_offset and partition_leader_epoch are outside the CRC. With
    `log_append_time_ms` the batch becomes LogAppendTime: Kafka sets the timestamp
    type bit and max_timestamp (base_timestamp is left alone) and recomputes the CRC.
    """
    next_offset = first_offset
    position = 0
    with memoryview(buf) as view:
        for header in headers:
            _BASE_OFFSET.pack_into(view, position + _BASE_OFFSET_POS, next_offset)
            _INT32.pack_into(view, position + _EPOCH_POS, partition_leader_epoch)
            if log_append_time_ms is not None:
                _ATTRIBUTES.pack_into(
                    view, position + _ATTRIBUTES_POS, header.attributes | _TIMESTAMP_TYPE_BIT
                )
                _INT64.pack_into(view, position + _MAX_TIMESTAMP_POS, log_append_time_ms)
                size = header.size
                crc = crc32c(view[position + CRC_COVERAGE_START : position + size])
                _UINT32.pack_into(view, position + _CRC_POS, crc)
            next_offset += header.last_offset_delta + 1
            position += header.size
    return next_offset - 1


# ---------------------------------------------------------------- record codec


def _read_varint(buf: bytes, position: int) -> tuple[int, int]:
    """Zigzag varint (int32 or int64) -> (value, next position)."""
    result = 0
    shift = 0
    while True:
        byte = buf[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), position
        shift += 7
        if shift > 63:
            raise InvalidRecordError(CORRUPT_MESSAGE, "varint longer than 10 bytes")


def _write_varint(out: bytearray, value: int) -> None:
    zigzag = (value << 1) ^ (value >> 63)
    while zigzag > 0x7F:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)


def _read_bytes(buf: bytes, position: int) -> tuple[bytes | None, int]:
    length, position = _read_varint(buf, position)
    if length < 0:
        return None, position
    end = position + length
    if end > len(buf):
        raise InvalidRecordError(CORRUPT_MESSAGE, "record field runs past the batch")
    return buf[position:end], end


def _write_bytes(out: bytearray, value: bytes | None) -> None:
    if value is None:
        _write_varint(out, -1)
    else:
        _write_varint(out, len(value))
        out += value


def _snappy_decompress(data: bytes) -> bytes:
    if not data.startswith(XERIAL_SNAPPY_MAGIC):
        return bytes(cramjam.snappy.decompress_raw(data))
    out = bytearray()
    position = _XERIAL_HEADER.size
    while position < len(data):
        if position + 4 > len(data):
            raise InvalidRecordError(CORRUPT_MESSAGE, "truncated xerial snappy block length")
        (block_length,) = _INT32.unpack_from(data, position)
        position += 4
        if block_length < 0 or position + block_length > len(data):
            raise InvalidRecordError(CORRUPT_MESSAGE, "truncated xerial snappy block")
        out += bytes(cramjam.snappy.decompress_raw(data[position : position + block_length]))
        position += block_length
    return bytes(out)


def _snappy_compress(data: bytes) -> bytes:
    # The Java client's framing: every client can read it, not every client reads raw.
    out = bytearray(_XERIAL_HEADER.pack(XERIAL_SNAPPY_MAGIC, _XERIAL_VERSION, _XERIAL_VERSION))
    for start in range(0, len(data), _XERIAL_BLOCK_SIZE):
        block = bytes(cramjam.snappy.compress_raw(data[start : start + _XERIAL_BLOCK_SIZE]))
        out += _INT32.pack(len(block))
        out += block
    return bytes(out)


def _lz4_compress(data: bytes) -> bytes:
    # Independent blocks, no content checksum: what Kafka's own LZ4 stream reader expects.
    compressor = cramjam.lz4.Compressor(content_checksum=False, block_linked=False)
    compressor.compress(data)
    return bytes(compressor.finish())


def decompress(compression: int, data: bytes) -> bytes:
    try:
        if compression == COMPRESSION_NONE:
            return data
        if compression == COMPRESSION_GZIP:
            return bytes(cramjam.gzip.decompress(data))
        if compression == COMPRESSION_SNAPPY:
            return _snappy_decompress(data)
        if compression == COMPRESSION_LZ4:
            return bytes(cramjam.lz4.decompress(data))
        if compression == COMPRESSION_ZSTD:
            return bytes(cramjam.zstd.decompress(data))
    except cramjam.DecompressionError as error:
        raise InvalidRecordError(
            CORRUPT_MESSAGE, f"cannot decompress {COMPRESSION_NAMES[compression]}: {error}"
        ) from error
    raise InvalidRecordError(INVALID_RECORD, f"unknown compression {compression}")


def compress(compression: int, data: bytes) -> bytes:
    if compression == COMPRESSION_NONE:
        return data
    if compression == COMPRESSION_GZIP:
        return bytes(cramjam.gzip.compress(data))
    if compression == COMPRESSION_SNAPPY:
        return _snappy_compress(data)
    if compression == COMPRESSION_LZ4:
        return _lz4_compress(data)
    if compression == COMPRESSION_ZSTD:
        return bytes(cramjam.zstd.compress(data, level=3))
    raise ValueError(f"unknown compression {compression}")


def decode_records(batch: bytes | bytearray | memoryview) -> list[Record]:
    """Decode every record of one whole batch (the header is trusted, the body is not)."""
    batch = bytes(batch)
    if len(batch) < BATCH_HEADER_SIZE:
        raise InvalidRecordError(CORRUPT_MESSAGE, "batch shorter than its header")
    header = read_header(batch)
    if header.magic != MAGIC_V2:
        raise InvalidRecordError(INVALID_RECORD, f"magic {header.magic} is not supported")
    if header.size > len(batch):
        raise InvalidRecordError(CORRUPT_MESSAGE, "batch shorter than its length field")
    body = decompress(header.compression, batch[BATCH_HEADER_SIZE : header.size])
    # LogAppendTime batches carry the broker's time only in max_timestamp.
    log_append_time = (
        header.max_timestamp if header.timestamp_type == TIMESTAMP_TYPE_LOG_APPEND_TIME else None
    )
    records = []
    position = 0
    try:
        for _ in range(header.records_count):
            length, position = _read_varint(body, position)
            end = position + length
            if length < 0 or end > len(body):
                raise InvalidRecordError(CORRUPT_MESSAGE, "record runs past the batch")
            position += 1  # record attributes: unused
            timestamp_delta, position = _read_varint(body, position)
            offset_delta, position = _read_varint(body, position)
            key, position = _read_bytes(body, position)
            value, position = _read_bytes(body, position)
            header_count, position = _read_varint(body, position)
            if header_count < 0:
                raise InvalidRecordError(CORRUPT_MESSAGE, "negative record header count")
            record_headers = []
            for _ in range(header_count):
                header_key, position = _read_bytes(body, position)
                if header_key is None:
                    raise InvalidRecordError(CORRUPT_MESSAGE, "record header without a key")
                header_value, position = _read_bytes(body, position)
                record_headers.append((header_key.decode("utf-8"), header_value))
            if position != end:
                raise InvalidRecordError(CORRUPT_MESSAGE, "record length does not match fields")
            timestamp = (
                log_append_time
                if log_append_time is not None
                else header.base_timestamp + timestamp_delta
            )
            records.append(
                Record(header.base_offset + offset_delta, timestamp, key, value, record_headers)
            )
    except IndexError as error:
        raise InvalidRecordError(CORRUPT_MESSAGE, "record truncated") from error
    except UnicodeDecodeError as error:
        raise InvalidRecordError(CORRUPT_MESSAGE, "record header key is not UTF-8") from error
    return records


def encode_batch(
    records: Iterable[Record],
    base_offset: int = 0,
    compression: int = COMPRESSION_NONE,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    timestamp_type: int = TIMESTAMP_TYPE_CREATE_TIME,
    is_control: bool = False,
    is_transactional: bool = False,
    partition_leader_epoch: int = -1,
    last_offset_delta: int | None = None,
) -> bytes:
    """Build one v2 batch. Offset deltas come from each record's offset - base_offset.

    `last_offset_delta` may be larger than the records imply: compaction keeps a
    batch's original offset range after dropping records.
    """
    records = list(records)
    body = bytearray()
    base_timestamp = records[0].timestamp if records else NO_TIMESTAMP
    max_timestamp = max((record.timestamp for record in records), default=NO_TIMESTAMP)
    highest_delta = -1
    for record in records:
        offset_delta = record.offset - base_offset
        if offset_delta < 0 or offset_delta <= highest_delta:
            raise ValueError("record offsets must increase from base_offset")
        highest_delta = offset_delta
        encoded = bytearray(b"\x00")  # record attributes
        _write_varint(encoded, record.timestamp - base_timestamp)
        _write_varint(encoded, offset_delta)
        _write_bytes(encoded, record.key)
        _write_bytes(encoded, record.value)
        _write_varint(encoded, len(record.headers))
        for header_key, header_value in record.headers:
            _write_bytes(encoded, header_key.encode("utf-8"))
            _write_bytes(encoded, header_value)
        _write_varint(body, len(encoded))
        body += encoded
    if last_offset_delta is None:
        last_offset_delta = max(highest_delta, 0)
    elif last_offset_delta < highest_delta:
        raise ValueError("last_offset_delta is below the last record's offset")
    payload = compress(compression, bytes(body))
    attributes = compression
    if timestamp_type == TIMESTAMP_TYPE_LOG_APPEND_TIME:
        attributes |= _TIMESTAMP_TYPE_BIT
    if is_transactional:
        attributes |= _TRANSACTIONAL_BIT
    if is_control:
        attributes |= _CONTROL_BIT
    batch = bytearray(BATCH_HEADER_SIZE)
    _HEADER.pack_into(
        batch,
        0,
        base_offset,
        BATCH_HEADER_SIZE - LENGTH_FIELD_END + len(payload),
        partition_leader_epoch,
        MAGIC_V2,
        0,
        attributes,
        last_offset_delta,
        base_timestamp,
        max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        len(records),
    )
    batch += payload
    _UINT32.pack_into(batch, _CRC_POS, crc32c(memoryview(batch)[CRC_COVERAGE_START:]))
    return bytes(batch)
