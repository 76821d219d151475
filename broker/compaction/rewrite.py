"""The cleaning itself, on bytes (pure): the offset map and the batch filter.

A batch keeps its base offset and its last offset delta when records are removed,
so offsets never change (gaps appear, as in Kafka). A batch left with no records
is dropped, except the last batch of a producer that is still active: it carries
the producer's sequence state across restarts (Kafka keeps it too).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from crc32c import crc32c

from .. import records as rec

ENTRY_OVERHEAD_BYTES = 100  # a dict slot, an int and a bytes object, roughly


class OffsetMap:
    """key -> offset of its latest record in the dirty part, with a memory budget."""

    def __init__(self, budget_bytes: int) -> None:
        self.latest: dict[bytes, int] = {}
        self.budget_bytes = budget_bytes
        self.used_bytes = 0

    def put(self, key: bytes, offset: int) -> None:
        if key not in self.latest:
            self.used_bytes += len(key) + ENTRY_OVERHEAD_BYTES
        self.latest[key] = offset

    @property
    def full(self) -> bool:
        return self.used_bytes >= self.budget_bytes

    def __len__(self) -> int:
        return len(self.latest)


def add_batch_to_map(offset_map: OffsetMap, batch: bytes, header: rec.BatchHeader,
                     from_offset: int) -> None:
    if header.is_control or header.last_offset < from_offset:
        return
    for record in rec.decode_records(batch):
        if record.key is not None and record.offset >= from_offset:
            offset_map.put(record.key, record.offset)


@dataclass
class FilterResult:
    data: bytes | None  # the batch to write, or None to drop it
    records_in: int
    records_out: int
    tombstones_out: list[int]  # offsets of tombstones kept


def filter_batch(batch: bytes, header: rec.BatchHeader, offset_map: OffsetMap,
                 tombstone_expired: Callable[[int], bool],
                 keep_when_empty: bool) -> FilterResult:
    """Keep each record that is the latest for its key (and not an expired tombstone).

    Records without a key are dropped, as Kafka's cleaner does.
    """
    if header.is_control:
        return FilterResult(batch, 0, 0, [])
    records = rec.decode_records(batch)
    kept = []
    tombstones = []
    for record in records:
        if record.key is None:
            continue  # invalid in a compacted log (written before the topic was compacted)
        latest = offset_map.latest.get(record.key)
        if latest is not None and record.offset < latest:
            continue
        if record.value is None:
            if tombstone_expired(record.offset):
                continue
            tombstones.append(record.offset)
        kept.append(record)
    if len(kept) == len(records):
        return FilterResult(batch, len(records), len(kept), tombstones)
    if not kept and not keep_when_empty:
        return FilterResult(None, len(records), 0, [])
    return FilterResult(rebuild_batch(header, kept), len(records), len(kept), tombstones)


_TIMESTAMPS = struct.Struct(">qq")
_TIMESTAMPS_POS = 27
_CRC = struct.Struct(">I")


def rebuild_batch(header: rec.BatchHeader, kept: list[rec.Record]) -> bytes:
    """The batch with only `kept`, same offsets range, producer fields and codec."""
    data = rec.encode_batch(
        kept,
        base_offset=header.base_offset,
        compression=header.compression,
        producer_id=header.producer_id,
        producer_epoch=header.producer_epoch,
        base_sequence=header.base_sequence,
        timestamp_type=header.timestamp_type,
        is_transactional=header.is_transactional,
        partition_leader_epoch=header.partition_leader_epoch,
        last_offset_delta=header.last_offset_delta,
    )
    if kept:
        return data
    # An empty batch keeps the original timestamps (time index, retention by time).
    out = bytearray(data)
    _TIMESTAMPS.pack_into(out, _TIMESTAMPS_POS, header.base_timestamp, header.max_timestamp)
    _CRC.pack_into(out, rec.CRC_COVERAGE_START - 4,
                   crc32c(memoryview(out)[rec.CRC_COVERAGE_START:]))
    return bytes(out)
