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


class Partition:
    def __init__(self, topic: str, index: int, log: PartitionLog, config: LogConfig,
                 min_insync_replicas: int = 1) -> None:
        self.topic = topic
        self.index = index
        self.log = log
        self.config = config
        self.min_insync_replicas = min_insync_replicas
        self.leader_epoch = 0
        self._waiters: set[asyncio.Future] = set()
        self.producers = self._load_producer_state()

    # -- offsets ------------------------------------------------------------------------
    @property
    def high_watermark(self) -> int:
        return self.log.log_end_offset  # single node: every append is fully replicated

    @property
    def last_stable_offset(self) -> int:
        return self.high_watermark  # no transactions yet, so nothing is pending

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
        self._wake_waiters()
        return AppendOutcome(
            base_offset=result.base_offset,
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

    def _wake_waiters(self) -> None:
        for future in list(self._waiters):
            if not future.done():
                future.set_result(None)

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
                    header.base_sequence, last_seq_of(header.base_sequence, header.records_count),
                    header.base_offset, header.last_offset, header.max_timestamp))
        return table

    def save_producer_state(self) -> None:
        write_json(self._snapshot_path(), {"offset": self.log.log_end_offset,
                                           "producers": self.producers.to_snapshot()})


def _batch_positions(headers):
    position = 0
    for header in headers:
        yield position, header
        position += header.size
