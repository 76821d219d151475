"""Every partition log on this broker, spread over one or more log directories."""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from brook.broker.storage.checkpoint import fsync_directory
from brook.broker.storage.log import PartitionLog, wall_clock_ms
from brook.broker.storage.log_config import LogConfig

log = logging.getLogger(__name__)

TopicPartition = tuple[str, int]
# Where retention must stop for a partition (its high watermark); None: the log end.
HighWatermarkOf = Callable[[str, int], int | None]

_PARTITION_DIR = re.compile(r"^(?P<topic>.+)-(?P<partition>\d+)$")
_DELETE_DIR = re.compile(r"^.+-\d+\.[0-9a-f]{32}-delete$")
DELETE_DIR_SUFFIX = "-delete"


def partition_dir_name(topic: str, partition: int) -> str:
    return f"{topic}-{partition}"


def parse_partition_dir_name(name: str) -> TopicPartition | None:
    """`orders-3` -> ("orders", 3); None for anything that is not a partition directory."""
    match = _PARTITION_DIR.match(name)
    if match is None:
        return None
    return match.group("topic"), int(match.group("partition"))


def is_pending_delete_dir(name: str) -> bool:
    return _DELETE_DIR.match(name) is not None


class LogManager:
    """Opens, creates, deletes and maintains the partition logs under `log_dirs`."""

    def __init__(
        self, log_dirs: Sequence[Path], *, clock: Callable[[], int] = wall_clock_ms
    ) -> None:
        if not log_dirs:
            raise ValueError("at least one log directory is needed")
        self.log_dirs = [Path(directory) for directory in log_dirs]
        self._clock = clock
        self._logs: dict[TopicPartition, PartitionLog] = {}
        self._homes: dict[TopicPartition, Path] = {}

    def load_existing(
        self, config_for: Callable[[str], LogConfig] = lambda topic: LogConfig()
    ) -> dict[TopicPartition, PartitionLog]:
        """Open (and recover) every partition directory present; returns them all.

        Finishes deletions a crash interrupted. The caller matches the result
        against its topic registry and deletes logs of topics that no longer exist.
        """
        for log_dir in self.log_dirs:
            log_dir.mkdir(parents=True, exist_ok=True)
            for entry in sorted(log_dir.iterdir()):
                if not entry.is_dir():
                    continue
                if is_pending_delete_dir(entry.name):
                    shutil.rmtree(entry, ignore_errors=True)
                    continue
                parsed = parse_partition_dir_name(entry.name)
                if parsed is None:
                    continue
                if self._homes.get(parsed) == log_dir:
                    continue  # opened by an earlier call
                if parsed in self._logs:
                    raise RuntimeError(
                        f"partition {parsed} found in both {self._homes[parsed]} and {log_dir}"
                    )
                self._logs[parsed] = PartitionLog(entry, config_for(parsed[0]), clock=self._clock)
                self._homes[parsed] = log_dir
        return dict(self._logs)

    # ------------------------------------------------------------ lookup

    def get(self, topic: str, partition: int) -> PartitionLog | None:
        return self._logs.get((topic, partition))

    def all_logs(self) -> dict[TopicPartition, PartitionLog]:
        return dict(self._logs)

    def partitions_of(self, topic: str) -> list[int]:
        return sorted(partition for name, partition in self._logs if name == topic)

    def log_dir_of(self, topic: str, partition: int) -> Path | None:
        return self._homes.get((topic, partition))

    # ------------------------------------------------------------ changes

    def create_log(self, topic: str, partition: int, config: LogConfig) -> PartitionLog:
        """The partition's log, created in the least-loaded log directory if it is new."""
        key = (topic, partition)
        existing = self._logs.get(key)
        if existing is not None:
            return existing
        log_dir = min(
            self.log_dirs,
            key=lambda directory: sum(1 for home in self._homes.values() if home == directory),
        )
        log_dir.mkdir(parents=True, exist_ok=True)
        partition_log = PartitionLog(
            log_dir / partition_dir_name(topic, partition), config, clock=self._clock
        )
        fsync_directory(log_dir)
        self._logs[key] = partition_log
        self._homes[key] = log_dir
        return partition_log

    def update_config(self, topic: str, config: LogConfig) -> None:
        for (name, _), partition_log in self._logs.items():
            if name == topic:
                partition_log.update_config(config)

    def delete_log(self, topic: str, partition: int) -> bool:
        """Delete one partition's log; False if there was none."""
        renamed = self._rename_for_delete((topic, partition))
        if renamed is None:
            return False
        shutil.rmtree(renamed, ignore_errors=True)
        return True

    def delete_topic_logs(self, topic: str) -> list[int]:
        """Delete every partition log of `topic`; returns the partitions deleted.

        All directories are renamed to `*-delete` before any is removed, so a crash
        part way never brings a partition of the deleted topic back.
        """
        partitions = self.partitions_of(topic)
        renamed = [self._rename_for_delete((topic, partition)) for partition in partitions]
        for directory in renamed:
            if directory is not None:
                shutil.rmtree(directory, ignore_errors=True)
        return partitions

    def _rename_for_delete(self, key: TopicPartition) -> Path | None:
        partition_log = self._logs.pop(key, None)
        if partition_log is None:
            return None
        log_dir = self._homes.pop(key)
        partition_log.close_without_flush()
        target = log_dir / (f"{partition_log.directory.name}.{uuid.uuid4().hex}{DELETE_DIR_SUFFIX}")
        partition_log.directory.rename(target)
        fsync_directory(log_dir)
        return target

    def close_all(self) -> None:
        """Close every log cleanly (flushed, no recovery needed on the next start)."""
        for key, partition_log in list(self._logs.items()):
            try:
                partition_log.close()
            except OSError:
                log.exception("closing log %s-%d failed", *key)
        self._logs.clear()
        self._homes.clear()

    # ------------------------------------------------------------ background work

    async def retention_pass(
        self, now_ms: int | None = None, high_watermark_of: HighWatermarkOf | None = None
    ) -> int:
        """Apply retention to every log once, yielding to the loop between logs."""
        deleted = 0
        for key, partition_log in list(self._logs.items()):
            if self._logs.get(key) is not partition_log:
                continue  # deleted meanwhile
            try:
                high_watermark = high_watermark_of(*key) if high_watermark_of else None
                deleted += partition_log.apply_retention(now_ms, high_watermark)
            except Exception:
                log.exception("retention for %s-%d failed", *key)
            await asyncio.sleep(0)
        return deleted

    async def flush_pass(self, now_ms: int | None = None) -> int:
        """Run the flushes that are due, fsyncing in a worker thread; returns how many ran."""
        flushed = 0
        for key, partition_log in list(self._logs.items()):
            if self._logs.get(key) is not partition_log:
                continue
            job = partition_log.begin_flush(now_ms)
            if job is None:
                continue
            try:
                await asyncio.to_thread(job.run)
            except OSError:
                if self._logs.get(key) is partition_log:
                    log.exception("flushing %s-%d failed", *key)
                continue
            if self._logs.get(key) is partition_log:
                partition_log.finish_flush(job)
                flushed += 1
        return flushed

    async def run_retention(
        self, interval_ms: int, high_watermark_of: HighWatermarkOf | None = None
    ) -> None:
        """Background task: a retention pass every `interval_ms` until cancelled."""
        while True:
            await asyncio.sleep(interval_ms / 1000)
            await self.retention_pass(high_watermark_of=high_watermark_of)

    async def run_flusher(self, interval_ms: int) -> None:
        """Background task: a flush pass every `interval_ms` until cancelled."""
        while True:
            await asyncio.sleep(interval_ms / 1000)
            await self.flush_pass()
