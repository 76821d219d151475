"""One partition on this broker: validation of produced batches, the idempotence
check, the append, and waking fetches that wait for data."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from kio.schema.errors import ErrorCode

from . import records
from .durable_file import read_json, write_json
from .producer_state import BatchMetadata, ProducerStateTable, last_seq_of
from .storage.leader_epochs import LeaderEpochCache
from .storage.log import PartitionLog
from .storage.log_config import LogConfig

PRODUCER_SNAPSHOT = "brook-producer-state.json"


@dataclass(frozen=True, slots=True)
class AppendOutcome:
    error: ErrorCode = ErrorCode.none
    base_offset: int = -1
    log_append_time_ms: int = -1
    log_start_offset: int = -1
    message: str | None = None
    record_errors: tuple[tuple[int, str], ...] = ()
    records_appended: int = 0
    bytes_appended: int = 0
    last_offset: int = -1


class Partition:
    def __init__(self, topic: str, index: int, log: PartitionLog, config: LogConfig,
                 min_insync_replicas: int = 1) -> None:
        self.topic = topic
        self.index = index
        self.log = log
        self.config = config
        self.min_insync_replicas = min_insync_replicas
        # message.timestamp.before.max.ms / after.max.ms (CreateTime topics only)
        self.timestamp_bounds: tuple[int, int] = (2**63 - 1, 3_600_000)
        self.leader_epoch = -1
        self.partition_epoch = -1
        self.leader_id = -1
        self.replicas: tuple[int, ...] = ()
        self.isr: tuple[int, ...] = ()
        self.is_leader = False
        self.leader_state = None  # replication.leader_state.LeaderState while leading
        self.follower_high_watermark = 0
        self.epochs = LeaderEpochCache(Path(log.directory))
        if not self.epochs.entries and log.log_end_offset > log.log_start_offset:
            self._rebuild_epochs()
        self._waiters: set[asyncio.Future] = set()
        self.producers = self._load_producer_state()

    def _rebuild_epochs(self) -> None:
        for header in self.log.iter_batch_headers(self.log.log_start_offset):
            self.epochs.assign(header.partition_leader_epoch, header.base_offset)

    # -- roles ----------------------------------------------------------------------------
    def update_assignment(self, state, node_id: int) -> None:
        """Take the partition's replicas, ISR, leader and epochs from the metadata."""
        self.replicas, self.isr = tuple(state.replicas), tuple(state.isr)
        self.leader_id, self.leader_epoch = state.leader, state.leader_epoch
        self.partition_epoch = state.partition_epoch
        self.is_leader = state.leader == node_id

    # -- offsets ------------------------------------------------------------------------
    @property
    def high_watermark(self) -> int:
        if self.leader_state is not None:
            return self.leader_state.high_watermark
        return min(self.follower_high_watermark, self.log.log_end_offset)

    @property
    def last_stable_offset(self) -> int:
        return self.high_watermark  # no transactions yet, so nothing is pending

    def advance_high_watermark(self) -> None:
        if self.leader_state is not None and \
                self.leader_state.advance_high_watermark(self.log.log_end_offset):
            self.wake_waiters()

    def set_follower_high_watermark(self, leader_hw: int) -> None:
        new = min(leader_hw, self.log.log_end_offset)
        if new > self.follower_high_watermark:
            self.follower_high_watermark = new
            self.wake_waiters()

    async def wait_for_high_watermark(self, offset: int, timeout_s: float) -> bool:
        """True once the high watermark passes `offset` while still leader at this epoch."""
        epoch = self.leader_epoch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.high_watermark <= offset:
            if not self.is_leader or self.leader_epoch != epoch:
                return False
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            waiter = self.new_waiter()
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                return self.high_watermark > offset
        return True

    # -- follower appends -------------------------------------------------------------------
    def append_as_follower(self, data: bytes, headers) -> None:
        self.log.append_as_follower(bytearray(data), headers)
        for header in headers:
            self.epochs.assign(header.partition_leader_epoch, header.base_offset)
            if header.producer_id >= 0:
                self.producers.record(header.producer_id, header.producer_epoch, BatchMetadata(
                    header.base_sequence, _last_seq(header), header.base_offset,
                    header.last_offset, header.max_timestamp))
        self.wake_waiters()

    def truncate_to(self, offset: int) -> None:
        if offset < self.log.log_start_offset:
            # nothing of the log is kept: restart it empty there, epochs included, as
            # Kafka does; kept epochs would make the follower ask the same question again
            self.truncate_fully_and_start_at(offset)
            return
        self.log.truncate_to(offset)
        self.epochs.truncate_from_end(self.log.log_end_offset)
        self.producers.truncate_after(self.log.log_end_offset)
        self.follower_high_watermark = min(self.follower_high_watermark, self.log.log_end_offset)

    def truncate_fully_and_start_at(self, offset: int) -> None:
        self.log.truncate_fully_and_start_at(offset)
        self.epochs.clear_and_flush()
        self.producers = ProducerStateTable()
        self.follower_high_watermark = offset

    # -- produce ------------------------------------------------------------------------
    def append(self, data: bytes, now_ms: int | None = None) -> AppendOutcome:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        try:
            headers = records.parse_batches(data)
        except records.InvalidRecordError as exc:
            return AppendOutcome(ErrorCode(exc.error_code), message=str(exc))
        problem = self._check_batches(headers, data, now_ms)
        if problem is not None:
            return problem
        first = headers[0]
        if first.producer_id >= 0:
            if len(headers) != 1:
                return AppendOutcome(ErrorCode.invalid_record,
                                     message="An idempotent produce must carry one batch")
            verdict = self.producers.check(first.producer_id, first.producer_epoch,
                                           first.base_sequence,
                                           last_seq_of(first.base_sequence, first.records_count))
            if verdict.duplicate is not None:
                return AppendOutcome(base_offset=verdict.duplicate.base_offset,
                                     log_start_offset=self.log.log_start_offset)
            if verdict.error != ErrorCode.none:
                return AppendOutcome(verdict.error, message=verdict.message)
        log_append_time = now_ms if self.config.message_timestamp_type == "LogAppendTime" else None
        result = self.log.append(bytearray(data), headers, partition_leader_epoch=self.leader_epoch,
                                 now_ms=now_ms if log_append_time is None else log_append_time)
        if first.producer_id >= 0:
            self.producers.record(first.producer_id, first.producer_epoch, BatchMetadata(
                first.base_sequence, last_seq_of(first.base_sequence, first.records_count),
                result.base_offset, result.last_offset, now_ms))
        self.advance_high_watermark()
        self.wake_waiters()
        return AppendOutcome(
            base_offset=result.base_offset,
            last_offset=result.last_offset,
            log_append_time_ms=result.log_append_time_ms,
            log_start_offset=result.log_start_offset,
            records_appended=sum(h.records_count for h in headers),
            bytes_appended=len(data),
        )

    def _check_batches(self, headers, data: bytes, now_ms: int) -> AppendOutcome | None:
        max_bytes = self.config.max_message_bytes
        for header in headers:
            if header.is_control:
                return AppendOutcome(ErrorCode.invalid_record,
                                     message="Clients may not write control batches")
            if header.is_transactional:
                # No transaction coordinator yet, so no transaction can be in progress.
                return AppendOutcome(ErrorCode.invalid_txn_state,
                                     message="Transactional batches are not supported yet")
            if header.size > max_bytes:
                return AppendOutcome(
                    ErrorCode.message_too_large,
                    message=f"The record batch size {header.size} bytes exceeds the maximum "
                    f"allowed batch size configured ({max_bytes}) for {self.topic}-{self.index}",
                )
        if self.config.message_timestamp_type == "CreateTime":
            before, after = self.timestamp_bounds
            for header in headers:
                if header.max_timestamp > now_ms + after or (
                        header.base_timestamp >= 0 and header.base_timestamp < now_ms - before):
                    return AppendOutcome(
                        ErrorCode.invalid_timestamp,
                        message=f"Timestamp {header.max_timestamp} of a batch for "
                        f"{self.topic}-{self.index} is out of range: it must be within "
                        f"[{now_ms - before if before < now_ms else 0}, {now_ms + after}] "
                        "(message.timestamp.before.max.ms / message.timestamp.after.max.ms)")
        if len(data) > self.config.segment_bytes:
            return AppendOutcome(
                ErrorCode.record_list_too_large,
                message=f"Records of {len(data)} bytes exceed segment.bytes="
                f"{self.config.segment_bytes} for {self.topic}-{self.index}",
            )
        if "compact" in self.config.cleanup_policy:
            for position, header in _batch_positions(headers):
                batch = data[position:position + header.size]
                for i, record in enumerate(records.decode_records(batch)):
                    if record.key is None:
                        return AppendOutcome(
                            ErrorCode.invalid_record,
                            message="Compacted topic cannot accept message without key in "
                            f"topic partition {self.topic}-{self.index}.",
                            record_errors=((i, "Compacted topic cannot accept message "
                                               "without key"),),
                        )
        return None

    # -- fetch wake-ups -----------------------------------------------------------------
    def new_waiter(self) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self._waiters.add(future)
        future.add_done_callback(self._waiters.discard)
        return future

    def wake_waiters(self) -> None:
        for future in list(self._waiters):
            if not future.done():
                future.set_result(None)

    def close_waiters(self) -> None:
        """The partition is going away here: wake everything parked on it."""
        self.is_leader = False
        self.leader_state = None
        self.wake_waiters()

    # -- producer state persistence -------------------------------------------------------
    def _snapshot_path(self) -> Path:
        return Path(self.log.directory) / PRODUCER_SNAPSHOT

    def _load_producer_state(self) -> ProducerStateTable:
        """From the clean-shutdown snapshot plus the batches after it, else from the log."""
        snapshot = read_json(self._snapshot_path())
        start = 0
        table = ProducerStateTable()
        if isinstance(snapshot, dict) and snapshot.get("offset", -1) <= self.log.log_end_offset:
            table = ProducerStateTable.from_snapshot(snapshot["producers"])
            start = int(snapshot["offset"])
        for header in self.log.iter_batch_headers(start):
            if header.producer_id >= 0 and not header.is_control:
                table.record(header.producer_id, header.producer_epoch, BatchMetadata(
                    header.base_sequence, _last_seq(header),
                    header.base_offset, header.last_offset, header.max_timestamp))
        return table

    def save_producer_state(self) -> None:
        write_json(self._snapshot_path(), {"offset": self.log.log_end_offset,
                                           "producers": self.producers.to_snapshot()})


def _last_seq(header) -> int:
    """The batch's last sequence from its offset span, which compaction never shrinks
    (records_count does)."""
    return last_seq_of(header.base_sequence, header.last_offset_delta + 1)


def _batch_positions(headers):
    position = 0
    for header in headers:
        yield position, header
        position += header.size
