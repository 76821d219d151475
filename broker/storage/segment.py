"""One log segment: a `.log` file of whole batches plus its two sparse indexes."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

from brook.broker.records import (
    BATCH_HEADER_SIZE,
    LENGTH_FIELD_END,
    NO_TIMESTAMP,
    BatchHeader,
    decode_records,
    read_header,
    scan_valid_batches,
)
from brook.broker.storage.index import OFFSET_ENTRY, TIME_ENTRY, OffsetIndex, TimeIndex
from brook.broker.storage.log_config import LogConfig
from brook.broker.storage.roll import MAX_RELATIVE_OFFSET, ActiveSegmentState

log = logging.getLogger(__name__)

LOG_SUFFIX = ".log"
INDEX_SUFFIX = ".index"
TIME_INDEX_SUFFIX = ".timeindex"
SEGMENT_SUFFIXES = (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX)
_SEGMENT_FILE = re.compile(r"^(\d{20})(\.log|\.index|\.timeindex)$")

# Recovery reads (and CRC-checks) the log in chunks this large.
RECOVERY_CHUNK_BYTES = 8 * 1024 * 1024
# Header scans start small (usually they cover one index interval) and grow.
_FIRST_SCAN_CHUNK_BYTES = 8 * 1024
_MAX_SCAN_CHUNK_BYTES = 1024 * 1024


def segment_file_name(base_offset: int, suffix: str) -> str:
    return f"{base_offset:020d}{suffix}"


def parse_segment_file_name(name: str) -> tuple[int, str] | None:
    """`00000000000000000042.log` -> (42, ".log"); None for other names."""
    match = _SEGMENT_FILE.match(name)
    if match is None:
        return None
    return int(match.group(1)), match.group(2)


class CorruptSegmentError(Exception):
    """Bytes that passed validation earlier no longer parse: the disk changed under us."""


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    with memoryview(data) as view:
        while view:
            view = view[os.write(fd, view) :]


def _iter_trusted_headers(fd: int, start: int, end: int) -> Iterator[tuple[int, BatchHeader]]:
    """(position, header) of consecutive batches in [start, end), reading only headers."""
    position = start
    chunk_bytes = _FIRST_SCAN_CHUNK_BYTES
    buffer = b""
    buffer_start = start
    while position + BATCH_HEADER_SIZE <= end:
        offset_in_buffer = position - buffer_start
        if offset_in_buffer + BATCH_HEADER_SIZE > len(buffer):
            buffer = os.pread(fd, min(chunk_bytes, end - position), position)
            buffer_start = position
            offset_in_buffer = 0
            chunk_bytes = min(chunk_bytes * 2, _MAX_SCAN_CHUNK_BYTES)
            if len(buffer) < BATCH_HEADER_SIZE:
                return
        header = read_header(buffer, offset_in_buffer)
        if header.size < BATCH_HEADER_SIZE:
            raise CorruptSegmentError(f"batch at byte {position} declares {header.size} bytes")
        yield position, header
        position += header.size


def _iter_verified_batches(fd: int, file_size: int) -> Iterator[tuple[int, BatchHeader]]:
    """(position, header) of each whole, CRC-valid batch from the start of the file.

    Stops at the first batch that is torn or invalid. A batch cut by the end of a
    read chunk is re-read from its start rather than mistaken for a torn one.
    """
    position = 0
    while position < file_size:
        buffer = os.pread(fd, min(RECOVERY_CHUNK_BYTES, file_size - position), position)
        if len(buffer) >= LENGTH_FIELD_END:
            batch_size = int.from_bytes(buffer[8:12], "big", signed=True) + LENGTH_FIELD_END
            if len(buffer) < batch_size <= file_size - position:
                buffer = os.pread(fd, batch_size, position)
        scanned_to = position
        for offset_in_buffer, header in scan_valid_batches(buffer):
            yield position + offset_in_buffer, header
            scanned_to = position + offset_in_buffer + header.size
        if scanned_to == position:
            return
        position = scanned_to


class LogSegment:
    """Batches from `base_offset` on, appended with os.write to an O_APPEND descriptor.

    Nothing is buffered in user space, so a batch is in the kernel's page cache
    (and survives the process being killed) as soon as append() returns.
    Open with `create()` or `load()`.
    """

    def __init__(self, directory: Path, base_offset: int, config: LogConfig, created_ms: int):
        self.directory = directory
        self.base_offset = base_offset
        self.config = config
        self.created_ms = created_ms
        self.log_path = directory / segment_file_name(base_offset, LOG_SUFFIX)
        self._fd = os.open(self.log_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self.offset_index = OffsetIndex(
            directory / segment_file_name(base_offset, INDEX_SUFFIX),
            base_offset,
            max(1, config.segment_index_bytes // OFFSET_ENTRY.size),
        )
        self.time_index = TimeIndex(
            directory / segment_file_name(base_offset, TIME_INDEX_SUFFIX),
            base_offset,
            max(1, config.segment_index_bytes // TIME_ENTRY.size),
        )
        self.size = 0
        self.next_offset = base_offset
        self.max_timestamp = NO_TIMESTAMP
        # Last offset of the first batch that carries max_timestamp.
        self.offset_of_max_timestamp = -1
        self._first_batch_timestamp: int | None = None
        self._bytes_since_index_entry = 0

    # ------------------------------------------------------------ opening

    @classmethod
    def create(
        cls, directory: Path, base_offset: int, config: LogConfig, now_ms: int
    ) -> LogSegment:
        """A new, empty segment (replacing leftovers with the same name)."""
        for suffix in SEGMENT_SUFFIXES:
            (directory / segment_file_name(base_offset, suffix)).unlink(missing_ok=True)
        return cls(directory, base_offset, config, now_ms)

    @classmethod
    def load(
        cls,
        directory: Path,
        base_offset: int,
        config: LogConfig,
        now_ms: int,
        *,
        recover: bool,
    ) -> tuple[LogSegment, int]:
        """Open an existing segment; returns it and the number of bytes truncated.

        With `recover` every batch is CRC-checked and a torn tail cut off. Without
        it the log is trusted but its indexes are checked, and rebuilt (which
        recovers the segment) if anything about them is off.
        """
        segment = cls(directory, base_offset, config, now_ms)
        try:
            if recover:
                return segment, segment.recover()
            problem = segment._load_trusted()
            if problem is None:
                return segment, 0
            log.warning("rebuilding indexes of %s: %s", segment.log_path, problem)
            return segment, segment.recover()
        except BaseException:
            segment.close()
            raise

    def _load_trusted(self) -> str | None:
        """Restore in-memory state from the indexes plus the unindexed tail, or say why not."""
        file_size = os.fstat(self._fd).st_size
        problem = self.offset_index.problem(file_size)
        if problem:
            return problem
        last_entry = self.offset_index.last_entry()
        tail_start = 0
        if last_entry is not None:
            offset, tail_start = last_entry
            header_bytes = os.pread(self._fd, BATCH_HEADER_SIZE, tail_start)
            if len(header_bytes) < BATCH_HEADER_SIZE:
                return "last entry points at a torn batch"
            header = read_header(header_bytes)
            if header.base_offset != offset:
                return f"last entry points at offset {header.base_offset}, not {offset}"
        tail_end = tail_start
        tail_max = (NO_TIMESTAMP, -1)
        try:
            for position, header in _iter_trusted_headers(self._fd, tail_start, file_size):
                if position + header.size > file_size:
                    break
                tail_end = position + header.size
                self.next_offset = header.next_offset
                if header.max_timestamp > tail_max[0]:
                    tail_max = (header.max_timestamp, header.last_offset)
        except CorruptSegmentError as error:
            return str(error)
        if tail_end != file_size:
            return "log does not end on a batch boundary"
        problem = self.time_index.problem(self.next_offset)
        if problem:
            return problem
        self.size = file_size
        self._bytes_since_index_entry = file_size - tail_start
        newest = self.time_index.last_entry()
        if newest is not None:
            self.max_timestamp, self.offset_of_max_timestamp = newest
        if tail_max[0] > self.max_timestamp:
            self.max_timestamp, self.offset_of_max_timestamp = tail_max
        return None

    def recover(self) -> int:
        """CRC-check every batch, cut the log after the last valid one, rebuild indexes.

        Returns the number of bytes cut off.
        """
        file_size = os.fstat(self._fd).st_size
        self._reset_state()
        valid_end = 0
        for position, header in _iter_verified_batches(self._fd, file_size):
            if (
                header.base_offset < self.next_offset
                or header.last_offset - self.base_offset > MAX_RELATIVE_OFFSET
            ):
                break
            self._account_batch(header, position)
            valid_end = position + header.size
        if valid_end < file_size:
            log.warning(
                "truncating %s from %d to %d bytes: torn or invalid batch",
                self.log_path,
                file_size,
                valid_end,
            )
            os.ftruncate(self._fd, valid_end)
        self.size = valid_end
        self.seal()
        return file_size - valid_end

    def _reset_state(self) -> None:
        self.offset_index.replace_all([])
        self.time_index.replace_all([])
        self.size = 0
        self.next_offset = self.base_offset
        self.max_timestamp = NO_TIMESTAMP
        self.offset_of_max_timestamp = -1
        self._first_batch_timestamp = None
        self._bytes_since_index_entry = 0

    # ------------------------------------------------------------ writing

    def append(self, data: bytes | bytearray, headers: list[BatchHeader]) -> None:
        """Append whole batches whose offsets are final; `headers` describe `data` in order."""
        position = self.size
        try:
            _write_all(self._fd, data)
        except BaseException:
            # Never leave half a batch behind: the next append would follow garbage.
            os.ftruncate(self._fd, position)
            raise
        for header in headers:
            self._account_batch(header, position)
            position += header.size
        self.size = position

    def _account_batch(self, header: BatchHeader, position: int) -> None:
        if header.max_timestamp > self.max_timestamp:
            self.max_timestamp = header.max_timestamp
            self.offset_of_max_timestamp = header.last_offset
        if position == 0:
            self._first_batch_timestamp = header.max_timestamp
        if self._bytes_since_index_entry > self.config.index_interval_bytes:
            self.offset_index.append(header.base_offset, position)
            if self.max_timestamp >= 0:
                self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)
            self._bytes_since_index_entry = 0
        self._bytes_since_index_entry += header.size
        self.next_offset = header.next_offset

    def seal(self) -> None:
        """Record the largest timestamp in the time index (when the segment stops growing).

        Lets a later clean load learn the segment's max timestamp from the index alone.
        """
        if self.max_timestamp >= 0:
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp)

    def truncate_to(self, offset: int) -> None:
        """Drop every batch that holds `offset` or anything later.

        A batch is atomic: when `offset` falls inside one, the whole batch goes and
        the segment then ends at that batch's base offset.
        """
        found = self.find_batch(offset)
        if found is None:
            self.next_offset = min(self.next_offset, max(offset, self.base_offset))
            return
        position, header = found
        os.ftruncate(self._fd, position)
        self.size = position
        self.next_offset = max(self.base_offset, min(offset, header.base_offset))
        self.offset_index.truncate_to_position(position)
        self.time_index.truncate_to_offset(self.next_offset)
        if position == 0:
            self._first_batch_timestamp = None
        last_index_entry = self.offset_index.last_entry()
        self._bytes_since_index_entry = position - (last_index_entry[1] if last_index_entry else 0)
        self._recompute_max_timestamp()

    def _recompute_max_timestamp(self) -> None:
        # The newest time-index entry bounds everything up to its batch; scan the rest.
        newest = self.time_index.last_entry()
        start = 0
        self.max_timestamp, self.offset_of_max_timestamp = NO_TIMESTAMP, -1
        if newest is not None:
            self.max_timestamp, self.offset_of_max_timestamp = newest
            found = self.find_batch(newest[1])
            start = found[0] if found else 0
        for _, header in _iter_trusted_headers(self._fd, start, self.size):
            if header.max_timestamp > self.max_timestamp:
                self.max_timestamp = header.max_timestamp
                self.offset_of_max_timestamp = header.last_offset

    # ------------------------------------------------------------ reading

    @property
    def fd(self) -> int:
        return self._fd

    @property
    def is_empty(self) -> bool:
        return self.size == 0

    @property
    def first_batch_timestamp(self) -> int:
        if self._first_batch_timestamp is None:
            if self.size == 0:
                return NO_TIMESTAMP
            self._first_batch_timestamp = read_header(
                os.pread(self._fd, BATCH_HEADER_SIZE, 0)
            ).max_timestamp
        return self._first_batch_timestamp

    def roll_state(self) -> ActiveSegmentState:
        return ActiveSegmentState(
            base_offset=self.base_offset,
            size_bytes=self.size,
            created_ms=self.created_ms,
            first_batch_timestamp_ms=self.first_batch_timestamp,
            offset_index_full=self.offset_index.is_full,
            time_index_full=self.time_index.is_full,
        )

    def last_modified_ms(self) -> int:
        return os.fstat(self._fd).st_mtime_ns // 1_000_000

    def read(self, position: int, length: int) -> bytes:
        return os.pread(self._fd, length, position)

    def iter_headers(self, start: int = 0) -> Iterator[tuple[int, BatchHeader]]:
        """(position, header) of each batch from byte `start` (a batch boundary) on."""
        return _iter_trusted_headers(self._fd, start, self.size)

    def find_batch(self, offset: int) -> tuple[int, BatchHeader] | None:
        """The first batch whose last offset is >= `offset`, with its position."""
        if offset >= self.next_offset:
            return None
        _, position = self.offset_index.lookup(offset)
        for batch_position, header in self.iter_headers(position):
            if header.last_offset >= offset:
                return batch_position, header
        return None

    def last_boundary_within(self, start: int, limit: int) -> int:
        """The largest batch boundary b with start <= b <= limit (`start` is a boundary)."""
        position = max(start, self.offset_index.floor_position(limit))
        boundary = position
        for batch_position, header in self.iter_headers(position):
            batch_end = batch_position + header.size
            if batch_end > limit:
                break
            boundary = batch_end
        return boundary

    def find_offset_for_timestamp(self, timestamp: int, min_offset: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record at or after `min_offset` with a
        timestamp >= `timestamp`."""
        if self.max_timestamp < timestamp or min_offset >= self.next_offset:
            return None
        start = 0
        before = self.time_index.lookup_before(timestamp)
        if before is not None:
            found = self.find_batch(before[1])
            start = found[0] if found else 0
        if min_offset > self.base_offset:
            found = self.find_batch(min_offset)
            if found is None:
                return None
            start = max(start, found[0])
        for position, header in self.iter_headers(start):
            if header.max_timestamp < timestamp or header.last_offset < min_offset:
                continue
            for record in decode_records(self.read(position, header.size)):
                if record.timestamp >= timestamp and record.offset >= min_offset:
                    return record.offset, record.timestamp
        return None

    def max_timestamp_record(self) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record carrying the segment's largest timestamp."""
        if self.max_timestamp < 0:
            return None
        found = self.find_batch(self.offset_of_max_timestamp)
        if found is None:
            return None
        position, header = found
        for record in decode_records(self.read(position, header.size)):
            if record.timestamp == self.max_timestamp:
                return record.offset, record.timestamp
        # The batch's max_timestamp field disagrees with its records: trust the field.
        return header.last_offset, self.max_timestamp

    # ------------------------------------------------------------ lifecycle

    def file_descriptors(self) -> list[int]:
        return [self._fd, self.offset_index.fd, self.time_index.fd]

    def flush(self) -> None:
        for fd in self.file_descriptors():
            os.fsync(fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self.offset_index.close()
        self.time_index.close()

    def delete_files(self) -> None:
        """Unlink the files; open descriptors stay readable until close()."""
        for path in (self.log_path, self.offset_index.path, self.time_index.path):
            path.unlink(missing_ok=True)
