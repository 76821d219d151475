"""A partition's log: a directory of segments with offsets, reads, retention and recovery.

Not thread-safe: one event loop owns a PartitionLog. The only work handed to
threads is fsync (`begin_flush` / `FlushJob.run` / `finish_flush`), which touches
nothing but file descriptors.
"""

from __future__ import annotations

import logging
import os
import time
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from brook.broker.records import (
    MESSAGE_TOO_LARGE,
    RECORD_LIST_TOO_LARGE,
    BatchHeader,
    InvalidRecordError,
    assign_offsets,
    read_header,
)
from brook.broker.storage.checkpoint import (
    TEMP_SUFFIX,
    fsync_directory,
    read_offset,
    write_atomically,
    write_offset,
)
from brook.broker.storage.log_config import LogConfig
from brook.broker.storage.roll import roll_reason
from brook.broker.storage.segment import (
    INDEX_SUFFIX,
    LOG_SUFFIX,
    TIME_INDEX_SUFFIX,
    LogSegment,
    parse_segment_file_name,
    segment_file_name,
)

log = logging.getLogger(__name__)

CLEAN_SHUTDOWN_FILE = ".brook-clean-shutdown"
RECOVERY_POINT_FILE = "recovery-point"
LOG_START_OFFSET_FILE = "log-start-offset"
DELETED_SUFFIX = ".deleted"

OFFSET_OUT_OF_RANGE = 1
# Flushes persist the recovery point at most this often (a checkpoint costs two fsyncs
# on the event loop); a stale, lower one on disk only means more recovery after a crash.
# Truncation (which lowers it) and close() always write it.
RECOVERY_POINT_CHECKPOINT_INTERVAL_MS = 60_000


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class OffsetOutOfRangeError(Exception):
    """A requested offset lies outside [log_start_offset, log_end_offset]."""

    error_code = OFFSET_OUT_OF_RANGE

    def __init__(self, offset: int, log_start_offset: int, log_end_offset: int) -> None:
        super().__init__(
            f"offset {offset} is outside the log's range [{log_start_offset}, {log_end_offset}]"
        )
        self.offset = offset
        self.log_start_offset = log_start_offset
        self.log_end_offset = log_end_offset


class UnexpectedAppendOffsetError(Exception):
    """A follower append whose offsets do not continue the log."""


class FileSlice(NamedTuple):
    """Bytes [position, position + length) of an open segment file: whole batches."""

    fd: int
    position: int
    length: int


@dataclass(frozen=True, slots=True)
class AppendResult:
    base_offset: int
    last_offset: int
    log_append_time_ms: int  # -1 unless the topic uses LogAppendTime
    log_start_offset: int


@dataclass(frozen=True, slots=True)
class FlushJob:
    """fsyncs that may run in a worker thread; finish with PartitionLog.finish_flush."""

    file_descriptors: tuple[int, ...]
    directory: Path | None  # also fsync the directory (segments were created)
    target_offset: int  # everything below this offset is durable once run() returns
    generation: int
    segments_created: int
    messages: int

    def run(self) -> None:
        for fd in self.file_descriptors:
            os.fsync(fd)
        if self.directory is not None:
            fsync_directory(self.directory)


def read_slices(slices: Iterable[FileSlice]) -> bytes:
    return b"".join(os.pread(fd, length, position) for fd, position, length in slices)


class PartitionLog:
    """The segments of one partition in `directory`, recovered on open.

    Offsets below `log_start_offset` are logically gone; `log_end_offset` is the
    next offset to assign. Readers get FileSlice descriptors that stay valid for at
    least `file_delete_delay_ms` after retention or truncation removes their segment,
    and until close().
    """

    def __init__(
        self,
        directory: Path,
        config: LogConfig,
        *,
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.directory = Path(directory)
        self.config = config
        self._clock = clock
        self._segments: list[LogSegment] = []
        self._base_offsets: list[int] = []
        self._retired: list[tuple[int, LogSegment]] = []  # (close after ms, segment)
        self._log_start_offset = 0
        self._recovery_point = 0
        self._recovery_point_checkpointed_ms = clock()
        self._unflushed_messages = 0
        self._last_flush_ms = clock()
        # Bumped by truncation so that a flush racing it does not advance the recovery point.
        self._generation = 0
        self._segments_created = 0
        self._segments_created_synced = 0
        self._closed = False
        self.directory.mkdir(parents=True, exist_ok=True)
        self._open()

    # ------------------------------------------------------------ opening

    def _open(self) -> None:
        now = self._clock()
        self._remove_leftovers()
        marker = self.directory / CLEAN_SHUTDOWN_FILE
        clean = marker.exists()
        if clean:
            # The marker must be gone for good before anything new is written.
            marker.unlink()
            fsync_directory(self.directory)
        recovery_point = read_offset(self.directory / RECOVERY_POINT_FILE) or 0
        checkpointed_start = read_offset(self.directory / LOG_START_OFFSET_FILE) or 0
        base_offsets = sorted(
            parsed[0]
            for path in self.directory.iterdir()
            if (parsed := parse_segment_file_name(path.name)) and parsed[1] == LOG_SUFFIX
        )
        try:
            self._load_segments(base_offsets, clean, recovery_point, now)
        except BaseException:
            for segment in self._segments:
                segment.close()
            raise
        if not self._segments:
            self._segments.append(
                LogSegment.create(self.directory, checkpointed_start, self.config, now)
            )
            self._segments_created += 1
        self._reindex()
        self._log_start_offset = max(checkpointed_start, self._segments[0].base_offset)
        if self._log_start_offset > self.log_end_offset:
            # Records up to the checkpoint were deleted on purpose but the data
            # beyond them did not survive: start empty where the log started.
            self.truncate_fully_and_start_at(self._log_start_offset)
        self._recovery_point = (
            self.log_end_offset if clean else min(recovery_point, self.log_end_offset)
        )

    def _load_segments(
        self, base_offsets: list[int], clean: bool, recovery_point: int, now: int
    ) -> None:
        for i, base_offset in enumerate(base_offsets):
            next_base = base_offsets[i + 1] if i + 1 < len(base_offsets) else None
            # Like Kafka: after an unclean shutdown every segment holding offsets at
            # or after the recovery point may be torn.
            needs_recovery = not clean and (next_base is None or next_base > recovery_point)
            segment, truncated = LogSegment.load(
                self.directory, base_offset, self.config, now, recover=needs_recovery
            )
            self._segments.append(segment)
            if truncated and next_base is not None:
                later = base_offsets[i + 1 :]
                log.warning(
                    "%s: corruption inside segment %d; deleting the %d segments after it",
                    self.directory,
                    base_offset,
                    len(later),
                )
                for later_base in later:
                    for suffix in (LOG_SUFFIX, INDEX_SUFFIX, TIME_INDEX_SUFFIX):
                        path = self.directory / segment_file_name(later_base, suffix)
                        path.unlink(missing_ok=True)
                return

    def _remove_leftovers(self) -> None:
        """Temp files, deleted segments and indexes whose log is gone."""
        names = {path.name for path in self.directory.iterdir()}
        for name in names:
            parsed = parse_segment_file_name(name)
            orphan_index = (
                parsed is not None
                and parsed[1] != LOG_SUFFIX
                and segment_file_name(parsed[0], LOG_SUFFIX) not in names
            )
            if orphan_index or name.endswith((TEMP_SUFFIX, DELETED_SUFFIX)):
                (self.directory / name).unlink(missing_ok=True)

    def _reindex(self) -> None:
        self._base_offsets = [segment.base_offset for segment in self._segments]

    # ------------------------------------------------------------ state

    @property
    def log_start_offset(self) -> int:
        return self._log_start_offset

    @property
    def log_end_offset(self) -> int:
        return self._segments[-1].next_offset

    @property
    def recovery_point(self) -> int:
        return self._recovery_point

    @property
    def size_bytes(self) -> int:
        return sum(segment.size for segment in self._segments)

    @property
    def segments(self) -> int:
        """How many segments the log has."""
        return len(self._segments)

    @property
    def segment_base_offsets(self) -> list[int]:
        return list(self._base_offsets)

    def update_config(self, config: LogConfig) -> None:
        self.config = config
        for segment in self._segments:
            segment.config = config

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"log {self.directory} is closed")

    def _segment_slot(self, offset: int) -> int:
        """Index of the segment whose range holds `offset` (the first one if below all)."""
        return max(0, bisect_right(self._base_offsets, offset) - 1)

    # ------------------------------------------------------------ appending

    def append(
        self,
        buf: bytearray,
        headers: list[BatchHeader],
        partition_leader_epoch: int = 0,
        now_ms: int | None = None,
    ) -> AppendResult:
        """Assign offsets to validated batches (records.parse_batches) and append them.

        `buf` is rewritten in place (base offsets, leader epoch, LogAppendTime).
        """
        self._check_open()
        if not headers:
            raise ValueError("nothing to append")
        now = self._clock() if now_ms is None else now_ms
        for header in headers:
            if header.size > self.config.max_message_bytes:
                raise InvalidRecordError(
                    MESSAGE_TOO_LARGE,
                    f"batch of {header.size} bytes exceeds max.message.bytes "
                    f"{self.config.max_message_bytes}",
                )
        if len(buf) > self.config.segment_bytes:
            raise InvalidRecordError(
                RECORD_LIST_TOO_LARGE,
                f"{len(buf)} bytes exceed segment.bytes {self.config.segment_bytes}",
            )
        log_append_time = now if self.config.uses_log_append_time else None
        first_offset = self.log_end_offset
        last_offset = assign_offsets(
            buf, headers, first_offset, partition_leader_epoch, log_append_time
        )
        self._append_batches(buf, _headers_in(buf, len(headers)), now)
        return AppendResult(
            base_offset=first_offset,
            last_offset=last_offset,
            log_append_time_ms=-1 if log_append_time is None else log_append_time,
            log_start_offset=self._log_start_offset,
        )

    def append_as_follower(
        self, buf: bytes | bytearray, headers: list[BatchHeader], now_ms: int | None = None
    ) -> AppendResult:
        """Append batches that already carry the leader's offsets, unchanged."""
        self._check_open()
        if not headers:
            raise ValueError("nothing to append")
        expected = self.log_end_offset
        for header in headers:
            if header.base_offset < expected:
                raise UnexpectedAppendOffsetError(
                    f"batch at offset {header.base_offset} does not follow {expected}"
                )
            expected = header.next_offset
        self._append_batches(buf, headers, self._clock() if now_ms is None else now_ms)
        return AppendResult(
            base_offset=headers[0].base_offset,
            last_offset=headers[-1].last_offset,
            log_append_time_ms=-1,
            log_start_offset=self._log_start_offset,
        )

    def _append_batches(
        self, data: bytes | bytearray, headers: list[BatchHeader], now: int
    ) -> None:
        reason = roll_reason(
            self._segments[-1].roll_state(),
            incoming_bytes=len(data),
            incoming_max_timestamp_ms=max(header.max_timestamp for header in headers),
            incoming_last_offset=headers[-1].last_offset,
            now_ms=now,
            segment_bytes=self.config.segment_bytes,
            segment_ms=self.config.segment_ms,
        )
        if reason is not None:
            log.debug(
                "%s: rolling at offset %d: %s", self.directory, headers[0].base_offset, reason.value
            )
            self._roll(headers[0].base_offset, now)
        self._segments[-1].append(data, headers)
        self._unflushed_messages += sum(header.records_count for header in headers)
        flush_messages = self.config.flush_messages
        if flush_messages is not None and self._unflushed_messages >= flush_messages:
            self.flush()

    def _roll(self, base_offset: int, now: int) -> None:
        active = self._segments[-1]
        if active.is_empty:
            if active.base_offset == base_offset:
                return
            self._segments.pop()
            active.close()
            active.delete_files()
        else:
            active.seal()
        self._segments.append(LogSegment.create(self.directory, base_offset, self.config, now))
        self._segments_created += 1
        self._reindex()

    # ------------------------------------------------------------ reading

    def read(
        self,
        fetch_offset: int,
        max_bytes: int,
        max_offset: int | None = None,
        min_one_batch: bool = True,
    ) -> list[FileSlice]:
        """Whole batches from the one holding `fetch_offset`, as file slices.

        Stops before any batch reaching `max_offset` (exclusive; the high watermark,
        default the log end) and before exceeding `max_bytes`, except that with
        `min_one_batch` the first batch is returned whatever its size (KIP-74).
        """
        self._check_open()
        end_offset = self.log_end_offset
        if fetch_offset < self._log_start_offset or fetch_offset > end_offset:
            raise OffsetOutOfRangeError(fetch_offset, self._log_start_offset, end_offset)
        max_offset = end_offset if max_offset is None else min(max_offset, end_offset)
        slices: list[FileSlice] = []
        remaining = max_bytes
        offset = fetch_offset
        slot = self._segment_slot(offset)
        while offset < max_offset and slot < len(self._segments):
            segment = self._segments[slot]
            found = segment.find_batch(offset)
            if found is None:  # nothing at or after `offset` here: try the next segment
                slot += 1
                if slot < len(self._segments):
                    offset = max(offset, self._segments[slot].base_offset)
                continue
            start, first_header = found
            if first_header.last_offset >= max_offset:
                break
            end = segment.size
            if max_offset < segment.next_offset:
                beyond = segment.find_batch(max_offset)
                if beyond is not None:
                    end = beyond[0]
            if end - start > remaining:
                end = segment.last_boundary_within(start, start + max(remaining, 0))
                if end == start:
                    if min_one_batch and not slices:
                        end = start + first_header.size
                    else:
                        break
            slices.append(FileSlice(segment.fd, start, end - start))
            remaining -= end - start
            if end < segment.size:
                break
            slot += 1
            if slot < len(self._segments):
                offset = self._segments[slot].base_offset
        return slices

    def read_bytes(self, slices: Iterable[FileSlice]) -> bytes:
        return read_slices(slices)

    def iter_batch_headers(self, from_offset: int = 0) -> Iterator[BatchHeader]:
        """Headers of every batch from the one holding `from_offset` to the log end."""
        for segment in list(self._segments):
            if segment.next_offset <= from_offset:
                continue
            start = 0
            if from_offset > segment.base_offset:
                found = segment.find_batch(from_offset)
                if found is None:
                    continue
                start = found[0]
            for _, header in segment.iter_headers(start):
                yield header

    def offset_for_timestamp(self, timestamp_ms: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the earliest record with a timestamp >= `timestamp_ms`."""
        self._check_open()
        for segment in self._segments:
            if segment.next_offset <= self._log_start_offset:
                continue
            found = segment.find_offset_for_timestamp(timestamp_ms, self._log_start_offset)
            if found is not None:
                return found
        return None

    def max_timestamp_offset(self) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record with the largest timestamp (KIP-734)."""
        self._check_open()
        best: LogSegment | None = None
        for segment in self._segments:
            if segment.next_offset <= self._log_start_offset or segment.max_timestamp < 0:
                continue
            if best is None or segment.max_timestamp > best.max_timestamp:
                best = segment
        return best.max_timestamp_record() if best is not None else None

    # ------------------------------------------------------------ deleting

    def delete_records_before(self, offset: int) -> int:
        """DeleteRecords: make `offset` the log start; returns the (new) log start offset."""
        self._check_open()
        if offset > self.log_end_offset or offset < 0:
            raise OffsetOutOfRangeError(offset, self._log_start_offset, self.log_end_offset)
        if offset > self._log_start_offset:
            # Checkpoint first: a crash must not bring back records that were acknowledged
            # as deleted.
            write_offset(self.directory / LOG_START_OFFSET_FILE, offset)
            self._log_start_offset = offset
            self._delete_front_segments(
                lambda segment: segment.next_offset <= offset, self.log_end_offset, self._clock()
            )
        return self._log_start_offset

    def apply_retention(self, now_ms: int | None = None, high_watermark: int | None = None) -> int:
        """Delete whole non-active segments past retention.ms or beyond retention.bytes.

        Only segments entirely below `high_watermark` (default: the log end) go.
        Returns how many segments were deleted.
        """
        self._check_open()
        now = self._clock() if now_ms is None else now_ms
        self._close_retired(now)
        if not self.config.deletes_by_retention:
            return 0
        limit = self.log_end_offset if high_watermark is None else high_watermark
        deleted = 0
        retention_ms = self.config.retention_ms
        if retention_ms >= 0:
            deleted += self._delete_front_segments(
                lambda segment: now - _largest_timestamp_ms(segment) > retention_ms, limit, now
            )
        retention_bytes = self.config.retention_bytes
        if retention_bytes >= 0:
            excess = self.size_bytes - retention_bytes

            def over_size(segment: LogSegment) -> bool:
                nonlocal excess
                if excess - segment.size < 0:
                    return False
                excess -= segment.size
                return True

            deleted += self._delete_front_segments(over_size, limit, now)
        if deleted:
            write_offset(self.directory / LOG_START_OFFSET_FILE, self._log_start_offset)
        return deleted

    def _delete_front_segments(
        self, should_delete: Callable[[LogSegment], bool], limit_offset: int, now: int
    ) -> int:
        """Delete oldest segments while `should_delete` holds; never the active one."""
        deleted = 0
        while (
            len(self._segments) > 1
            and self._segments[1].base_offset <= limit_offset
            and should_delete(self._segments[0])
        ):
            self._retire(self._segments.pop(0), now)
            deleted += 1
        if deleted:
            self._reindex()
            self._log_start_offset = max(self._log_start_offset, self._segments[0].base_offset)
        return deleted

    def _retire(self, segment: LogSegment, now: int) -> None:
        """Unlink a segment's files now; close its descriptors once readers are done."""
        segment.delete_files()
        self._retired.append((now + self.config.file_delete_delay_ms, segment))

    def _close_retired(self, now: int) -> None:
        keep = []
        for deadline, segment in self._retired:
            if deadline <= now:
                segment.close()
            else:
                keep.append((deadline, segment))
        self._retired = keep

    def truncate_to(self, offset: int) -> None:
        """Drop every batch holding `offset` or later (for replication).

        The log then ends at `offset`, or earlier if `offset` fell inside a batch.
        """
        self._check_open()
        if offset >= self.log_end_offset:
            return
        if offset < self._log_start_offset:
            self.truncate_fully_and_start_at(offset)
            return
        self._generation += 1
        now = self._clock()
        while len(self._segments) > 1 and self._segments[-1].base_offset > offset:
            self._retire(self._segments.pop(), now)
        self._reindex()
        self._segments[-1].truncate_to(offset)
        self._after_truncation()

    def truncate_fully_and_start_at(self, offset: int) -> None:
        """Drop every segment; the log restarts empty at `offset`."""
        self._check_open()
        self._generation += 1
        now = self._clock()
        for segment in self._segments:
            self._retire(segment, now)
        self._segments = [LogSegment.create(self.directory, offset, self.config, now)]
        self._segments_created += 1
        self._reindex()
        self._log_start_offset = offset
        write_offset(self.directory / LOG_START_OFFSET_FILE, offset)
        self._recovery_point = offset
        self._after_truncation()

    def _after_truncation(self) -> None:
        # A stale recovery point above new, unflushed data would skip its recovery.
        self._recovery_point = min(self._recovery_point, self.log_end_offset)
        self._checkpoint_recovery_point(self._clock())
        self._unflushed_messages = 0

    # ------------------------------------------------------------ flushing

    def begin_flush(self, now_ms: int | None = None) -> FlushJob | None:
        """The fsyncs now due, if any: flush.ms elapsed, or segments rolled since the last flush.

        Run the job (in a thread if you like), then call finish_flush(job).
        """
        self._check_open()
        now = self._clock() if now_ms is None else now_ms
        self._close_retired(now)
        flush_ms = self.config.flush_ms
        end_offset = self.log_end_offset
        if (
            flush_ms is not None
            and now - self._last_flush_ms >= flush_ms
            and (self._recovery_point < end_offset or self._unflushed_messages)
        ):
            return self._flush_job(end_offset)
        # As in Kafka, segments that stopped growing are flushed soon after the roll,
        # so that recovery after a crash is limited to the active segment.
        active_base = self._segments[-1].base_offset
        if self._recovery_point < active_base:
            return self._flush_job(active_base)
        return None

    def _flush_job(self, target_offset: int) -> FlushJob:
        descriptors: list[int] = []
        for segment in self._segments:
            if segment.next_offset > self._recovery_point and segment.base_offset < target_offset:
                descriptors.extend(segment.file_descriptors())
        directory_dirty = self._segments_created > self._segments_created_synced
        return FlushJob(
            file_descriptors=tuple(descriptors),
            directory=self.directory if directory_dirty else None,
            target_offset=target_offset,
            generation=self._generation,
            segments_created=self._segments_created,
            messages=self._unflushed_messages if target_offset >= self.log_end_offset else 0,
        )

    def finish_flush(self, job: FlushJob, now_ms: int | None = None) -> None:
        """Advance the recovery point to what `job` made durable."""
        if self._closed or job.generation != self._generation:
            return
        self._segments_created_synced = max(self._segments_created_synced, job.segments_created)
        if job.messages:
            self._unflushed_messages = max(0, self._unflushed_messages - job.messages)
            self._last_flush_ms = self._clock() if now_ms is None else now_ms
        now = self._clock() if now_ms is None else now_ms
        target = min(job.target_offset, self.log_end_offset)
        if target > self._recovery_point:
            self._recovery_point = target
            if now - self._recovery_point_checkpointed_ms >= RECOVERY_POINT_CHECKPOINT_INTERVAL_MS:
                self._checkpoint_recovery_point(now)

    def _checkpoint_recovery_point(self, now: int) -> None:
        write_offset(self.directory / RECOVERY_POINT_FILE, self._recovery_point)
        self._recovery_point_checkpointed_ms = now

    def flush(self) -> None:
        """fsync everything appended so far and advance the recovery point to the log end."""
        self._check_open()
        job = self._flush_job(self.log_end_offset)
        job.run()
        self.finish_flush(job)
        self._unflushed_messages = 0
        self._last_flush_ms = self._clock()

    def maybe_flush(self, now_ms: int | None = None) -> bool:
        """Run the flush due now (flush.ms or a roll) in this thread; True if one ran."""
        job = self.begin_flush(now_ms)
        if job is None:
            return False
        job.run()
        self.finish_flush(job, now_ms)
        return True

    # ------------------------------------------------------------ closing

    def close(self) -> None:
        """Flush everything and mark the shutdown clean, so the next open skips recovery."""
        if self._closed:
            return
        self._segments[-1].seal()
        self.flush()
        self._checkpoint_recovery_point(self._clock())
        self._close_files()
        write_atomically(self.directory / CLEAN_SHUTDOWN_FILE, b"")

    def close_without_flush(self) -> None:
        """Close descriptors only: for a log about to be deleted."""
        if not self._closed:
            self._close_files()

    def _close_files(self) -> None:
        self._closed = True
        for _, segment in self._retired:
            segment.close()
        self._retired = []
        for segment in self._segments:
            segment.close()


def _largest_timestamp_ms(segment: LogSegment) -> int:
    # Kafka falls back to the file's mtime for segments without timestamps.
    if segment.max_timestamp > 0:
        return segment.max_timestamp
    return segment.last_modified_ms()


def _headers_in(buf: bytes | bytearray, count: int) -> list[BatchHeader]:
    """Re-read headers after assign_offsets rewrote them."""
    headers = []
    position = 0
    for _ in range(count):
        header = read_header(buf, position)
        headers.append(header)
        position += header.size
    return headers
