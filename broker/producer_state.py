"""Idempotent-producer bookkeeping for one partition. Pure.

Kafka's rules: per producer id the broker keeps the epoch and the last five
batches' sequence ranges with their offsets. A retry of one of those batches is
answered with its original offsets and not appended again; a batch that does not
continue the sequence gets OUT_OF_ORDER_SEQUENCE_NUMBER; an older epoch is fenced.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from kio.schema.errors import ErrorCode

MAX_CACHED_BATCHES = 5  # matches max.in.flight.requests.per.connection for idempotence
INT32_MAX = 2_147_483_647


@dataclass(frozen=True, slots=True)
class BatchMetadata:
    first_seq: int
    last_seq: int
    base_offset: int
    last_offset: int
    timestamp_ms: int


@dataclass(slots=True)
class ProducerEntry:
    epoch: int
    batches: deque = field(default_factory=lambda: deque(maxlen=MAX_CACHED_BATCHES))
    last_timestamp_ms: int = -1

    @property
    def last_seq(self) -> int:
        return self.batches[-1].last_seq if self.batches else -1


@dataclass(frozen=True, slots=True)
class SequenceVerdict:
    """Either append (error none, duplicate None), a duplicate, or an error."""

    error: ErrorCode = ErrorCode.none
    duplicate: BatchMetadata | None = None
    message: str | None = None


APPEND = SequenceVerdict()


def next_seq(seq: int) -> int:
    return 0 if seq == INT32_MAX else seq + 1


def last_seq_of(first_seq: int, record_count: int) -> int:
    return (first_seq + record_count - 1) % (INT32_MAX + 1)


class ProducerStateTable:
    def __init__(self) -> None:
        self.entries: dict[int, ProducerEntry] = {}

    def check(self, producer_id: int, epoch: int, first_seq: int, last_seq: int) -> SequenceVerdict:
        entry = self.entries.get(producer_id)
        if entry is None:
            if first_seq != 0:
                return SequenceVerdict(
                    ErrorCode.unknown_producer_id,
                    message=f"No state for producer {producer_id}; first sequence {first_seq}",
                )
            return APPEND
        if epoch < entry.epoch:
            return SequenceVerdict(
                ErrorCode.invalid_producer_epoch,
                message=f"Producer epoch {epoch} is older than current {entry.epoch}",
            )
        if epoch > entry.epoch:
            if first_seq != 0:
                return SequenceVerdict(
                    ErrorCode.out_of_order_sequence_number,
                    message=f"New epoch {epoch} must start at sequence 0, got {first_seq}",
                )
            return APPEND
        for batch in entry.batches:
            if batch.first_seq == first_seq and batch.last_seq == last_seq:
                return SequenceVerdict(duplicate=batch)
        if entry.batches and first_seq != next_seq(entry.last_seq):
            return SequenceVerdict(
                ErrorCode.out_of_order_sequence_number,
                message=f"Out of order sequence number for producer {producer_id}: "
                f"{first_seq} (incoming seq. number), {entry.last_seq} (current end seq. number)",
            )
        return APPEND

    def record(self, producer_id: int, epoch: int, batch: BatchMetadata) -> None:
        entry = self.entries.get(producer_id)
        if entry is None or epoch > entry.epoch:
            entry = self.entries[producer_id] = ProducerEntry(epoch)
        entry.batches.append(batch)
        entry.last_timestamp_ms = max(entry.last_timestamp_ms, batch.timestamp_ms)

    def expire(self, now_ms: int, expiration_ms: int) -> int:
        old = [pid for pid, e in self.entries.items() if now_ms - e.last_timestamp_ms > expiration_ms]
        for pid in old:
            del self.entries[pid]
        return len(old)

    def truncate_after(self, offset: int) -> None:
        """Forget batches at or above `offset` (the log was truncated there)."""
        for pid in list(self.entries):
            entry = self.entries[pid]
            kept = [b for b in entry.batches if b.last_offset < offset]
            entry.batches.clear()
            entry.batches.extend(kept)
            if not kept:
                del self.entries[pid]

    # -- snapshots: JSON-friendly so a clean shutdown avoids rescanning the log --------
    def to_snapshot(self) -> dict:
        return {
            str(pid): {
                "epoch": e.epoch,
                "ts": e.last_timestamp_ms,
                "batches": [[b.first_seq, b.last_seq, b.base_offset, b.last_offset, b.timestamp_ms]
                            for b in e.batches],
            }
            for pid, e in self.entries.items()
        }

    @classmethod
    def from_snapshot(cls, data: dict) -> ProducerStateTable:
        table = cls()
        for pid, item in data.items():
            entry = ProducerEntry(int(item["epoch"]), last_timestamp_ms=int(item["ts"]))
            entry.batches.extend(BatchMetadata(*b) for b in item["batches"])
            table.entries[int(pid)] = entry
        return table
