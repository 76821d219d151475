"""The log cleaner: a background task that compacts `cleanup.policy=compact` partitions.

One pass looks at every compacted partition, plans (brook.broker.compaction.plan)
and cleans the ones that need it:

1. build the offset map (latest offset per key) over the dirty part, in a worker
   thread, reading segment files through descriptors of its own;
2. for each group of closed segments below the end of the map, write the cleaned
   segment into a staging directory (thread), then swap it into the live log on
   the event loop (brook.broker.storage.segment_swap: atomic, crash-safe);
3. save the cleaner state (first dirty offset, tombstone clock).

The active segment is never touched and offsets never change. If the log changes
under a clean (retention, DeleteRecords, deletion), that part is abandoned and
cleaned again on a later pass.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import records as rec
from ..storage import segment_swap
from ..storage.checkpoint import write_atomically
from ..storage.segment import LogSegment
from ..topic_config import effective_configs
from .plan import CleanPlan, SegmentInfo, group_segments, plan_cleaning, usable_state
from .rewrite import OffsetMap, add_batch_to_map, filter_batch
from .settings import CompactionSettings
from .state import STATE_FILE, CleanerState

log = logging.getLogger("brook.cleaner")

_READ_CHUNK = 1 << 20
_WRITE_CHUNK = 1 << 20


@dataclass
class Source:
    """A closed segment as the cleaner reads it: its own descriptor, and its identity."""

    segment: LogSegment
    info: SegmentInfo
    fd: int


@dataclass
class CleanResult:
    cleaned: bool
    bytes_before: int = 0
    bytes_after: int = 0
    records_before: int = 0
    records_after: int = 0


def iter_file_batches(fd: int, size: int) -> Iterator[tuple[rec.BatchHeader, bytes]]:
    """Whole batches of a segment file, read in chunks."""
    position = 0
    while position < size:
        chunk = os.pread(fd, min(_READ_CHUNK, size - position), position)
        if len(chunk) < rec.BATCH_HEADER_SIZE:
            return
        first = rec.read_header(chunk)
        if first.size > len(chunk):
            chunk = os.pread(fd, first.size, position)
            if len(chunk) < first.size:
                return
        offset = 0
        while offset + rec.BATCH_HEADER_SIZE <= len(chunk):
            header = rec.read_header(chunk, offset)
            if header.size < rec.BATCH_HEADER_SIZE or offset + header.size > len(chunk):
                break
            yield header, chunk[offset:offset + header.size]
            offset += header.size
        if offset == 0:
            return
        position += offset


def segment_info(segment: LogSegment) -> SegmentInfo:
    return SegmentInfo(segment.base_offset, segment.next_offset, segment.size,
                       segment.max_timestamp, segment.first_batch_timestamp)


def build_offset_map(sources: list[Source], first_dirty: int, limit: int,
                     budget_bytes: int) -> tuple[OffsetMap, int]:
    """The map over the dirty part, and where it ends (a segment boundary)."""
    offset_map = OffsetMap(budget_bytes)
    for index, source in enumerate(sources):
        if index > 0 and offset_map.full:
            return offset_map, source.info.base_offset
        for header, batch in iter_file_batches(source.fd, source.info.size):
            add_batch_to_map(offset_map, batch, header, first_dirty)
    return offset_map, limit


@dataclass
class GroupOutcome:
    staging: Path
    base_offset: int
    bytes_before: int
    bytes_after: int
    records_before: int
    records_after: int
    oldest_tombstone_cleaned_ms: int | None


def write_cleaned_group(directory: Path, group: list[Source], offset_map: OffsetMap,
                        state: CleanerState, settings: CompactionSettings, now_ms: int,
                        producer_last_batches: set[int], config) -> GroupOutcome:
    """Write the cleaned form of `group` into a staging directory (any thread)."""
    base = group[0].info.base_offset
    staging = segment_swap.staging_dir(directory, base)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    total = sum(s.info.size for s in group)
    entries = total // max(config.index_interval_bytes, 1) + 2
    config = dataclasses.replace(config, segment_index_bytes=max(config.segment_index_bytes,
                                                                 entries * 12))
    segment = LogSegment.create(staging, base, config, now_ms)
    pending = bytearray()
    headers: list[rec.BatchHeader] = []
    records_in = records_out = 0
    oldest_tombstone: int | None = None

    def expired(offset: int) -> bool:
        return (offset < state.clean_offset
                and state.tombstone_expired(offset, now_ms, settings.delete_retention_ms))

    try:
        for source in group:
            for header, batch in iter_file_batches(source.fd, source.info.size):
                result = filter_batch(batch, header, offset_map, expired,
                                      keep_when_empty=header.base_offset in producer_last_batches)
                records_in += result.records_in
                records_out += result.records_out
                for offset in result.tombstones_out:
                    first = state.first_cleaned_ms(offset) if offset < state.clean_offset else None
                    first = now_ms if first is None else first
                    oldest_tombstone = first if oldest_tombstone is None else min(
                        oldest_tombstone, first)
                if result.data is None:
                    continue
                headers.append(rec.read_header(result.data))
                pending += result.data
                if len(pending) >= _WRITE_CHUNK:
                    segment.append(pending, headers)
                    pending, headers = bytearray(), []
        if pending:
            segment.append(pending, headers)
        segment.seal()
        segment.flush()
        size = segment.size
    finally:
        segment.close()
    segment_swap.write_manifest(staging, base, [s.info.base_offset for s in group])
    return GroupOutcome(staging, base, total, size, records_in, records_out, oldest_tombstone)


class LogCleaner:
    def __init__(self, broker) -> None:
        self.broker = broker
        config = broker.config
        self.enabled = str(config.get("log.cleaner.enable")).lower() != "false"
        self.backoff_ms = int(config.get("log.cleaner.backoff.ms"))
        self.budget_bytes = int(int(config.get("log.cleaner.dedupe.buffer.size"))
                                * float(config.get("log.cleaner.io.buffer.load.factor")))
        self._task: asyncio.Task | None = None
        self.passes = 0

    def start(self) -> None:
        if self.enabled:
            self._task = asyncio.create_task(self._run(), name="log-cleaner")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.backoff_ms / 1000)
            try:
                await self.clean_pass()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("log cleaner pass failed")

    def settings_of(self, topic: str) -> CompactionSettings | None:
        info = self.broker.registry.get(topic)
        if info is None:
            return None
        return CompactionSettings.from_topic_configs(
            effective_configs(info.configs, self.broker.config))

    async def clean_pass(self, now_ms: int | None = None) -> int:
        """Clean every compacted partition that needs it; returns how many were cleaned."""
        cleaned = 0
        self.passes += 1
        for key, partition in list(self.broker.partitions.items()):
            settings = self.settings_of(key[0])
            if settings is None or not settings.compact:
                continue
            if self.broker.partitions.get(key) is not partition:
                continue
            try:
                result = await self.clean_partition(partition, settings, now_ms)
            except segment_swap.SwapAborted as exc:
                log.info("%s", exc)
                continue
            except Exception:
                log.exception("cleaning %s-%d failed", *key)
                continue
            cleaned += result.cleaned
        return cleaned

    @staticmethod
    def load_state(directory: Path) -> CleanerState:
        try:
            return CleanerState.from_json((directory / STATE_FILE).read_bytes())
        except FileNotFoundError:
            return CleanerState()

    async def clean_partition(self, partition, settings: CompactionSettings,
                              now_ms: int | None = None) -> CleanResult:
        partition_log = partition.log
        directory = Path(partition_log.directory)
        state = self.load_state(directory)
        now = int(time.time() * 1000) if now_ms is None else now_ms
        segments = segment_swap.segments_of(partition_log)
        infos = [segment_info(s) for s in segments]
        state = usable_state(infos, state)
        plan = plan_cleaning(infos, state, settings, now)
        if plan is None:
            return CleanResult(False)
        log.info("cleaning %s (%s, dirty ratio %.2f, offsets %d..%d)", directory.name,
                 plan.reason, plan.dirty_ratio, plan.first_dirty, plan.first_uncleanable)
        cleanable = [s for s in segments[:-1] if s.base_offset < plan.first_uncleanable]
        sources = [Source(s, segment_info(s), os.open(s.log_path, os.O_RDONLY))
                   for s in cleanable]
        try:
            return await self._clean(partition, directory, sources, plan, state, settings, now)
        finally:
            for source in sources:
                os.close(source.fd)

    async def _clean(self, partition, directory: Path, sources: list[Source], plan: CleanPlan,
                     state: CleanerState, settings: CompactionSettings, now: int) -> CleanResult:
        partition_log = partition.log
        dirty = [s for s in sources if s.info.next_offset > plan.first_dirty]
        offset_map, map_end = await asyncio.to_thread(
            build_offset_map, dirty, plan.first_dirty, plan.first_uncleanable, self.budget_bytes)
        to_clean = [s for s in sources if s.info.base_offset < map_end]
        by_base = {s.info.base_offset: s for s in to_clean}
        groups = [[by_base[i.base_offset] for i in g]
                  for g in group_segments([s.info for s in to_clean], settings.segment_bytes)]
        producer_last = {entry.batches[-1].base_offset
                         for entry in partition.producers.entries.values() if entry.batches}
        result = CleanResult(True)
        oldest: int | None = None
        for group in groups:
            outcome = await asyncio.to_thread(
                write_cleaned_group, directory, group, offset_map, state, settings, now,
                producer_last, partition_log.config)
            if self.broker.partitions.get((partition.topic, partition.index)) is not partition:
                shutil.rmtree(outcome.staging, ignore_errors=True)
                raise segment_swap.SwapAborted(f"{directory.name} was deleted while cleaning")
            segment_swap.swap_into_log(partition_log, [s.segment for s in group],
                                       outcome.staging, outcome.base_offset)
            result.bytes_before += outcome.bytes_before
            result.bytes_after += outcome.bytes_after
            result.records_before += outcome.records_before
            result.records_after += outcome.records_after
            if outcome.oldest_tombstone_cleaned_ms is not None:
                oldest = outcome.oldest_tombstone_cleaned_ms if oldest is None else min(
                    oldest, outcome.oldest_tombstone_cleaned_ms)
        new_state = state.after_round(map_end, now, settings.delete_retention_ms, oldest)
        write_atomically(directory / STATE_FILE, new_state.to_json())
        log.info("cleaned %s up to offset %d: %d -> %d bytes, %d -> %d records, %d keys",
                 directory.name, map_end, result.bytes_before, result.bytes_after,
                 result.records_before, result.records_after, len(offset_map))
        return result
