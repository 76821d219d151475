"""The broker's state and the operations the Kafka handlers call.

Composition root: owns the configuration, the topic registry, the partition logs,
producer ids and metrics. Handlers validate requests with the pure modules and call
the methods here to change state, so every state change goes through one place.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import uuid
from pathlib import Path

from .compaction.cleaner import LogCleaner
from .config import BrokerConfig
from .durable_file import write_atomically
from .groups import lag_metrics
from .groups.coordinator import GroupCoordinator
from .metrics import BrokerMetrics
from .partition import Partition
from .producer_ids import ProducerIdAllocator
from .storage import segment_swap
from .storage.log_manager import LogManager
from .topic_config import log_config_for
from .topics import TopicInfo, TopicRegistry

log = logging.getLogger("brook.broker")

META_PROPERTIES = "meta.properties"


class StartupError(RuntimeError):
    """The broker cannot start with this configuration and data; the message says why."""


def _read_meta(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.startswith("#")}


def _new_cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class Broker:
    def __init__(self, config: BrokerConfig) -> None:
        self.config = config
        self.node_id = config.node_id
        self.log_dirs = [d.resolve() for d in config.log_dirs]
        for directory in self.log_dirs:
            directory.mkdir(parents=True, exist_ok=True)
        self.cluster_id = self._load_identity()
        self.metadata_dir = self.log_dirs[0]
        self.registry = TopicRegistry(self.metadata_dir)
        self.producer_ids = ProducerIdAllocator(self.metadata_dir)
        self.metrics = BrokerMetrics()
        self.logs = LogManager(self.log_dirs)
        self.partitions: dict[tuple[str, int], Partition] = {}
        self._background: list[asyncio.Task] = []
        segment_swap.recover_log_dirs(self.log_dirs)  # finish or drop interrupted cleanings
        self._open_partitions()
        self.group_coordinator = GroupCoordinator(self)  # replays __consumer_offsets
        lag_metrics.register(self, self.group_coordinator)
        self.log_cleaner = LogCleaner(self)

    # -- identity -------------------------------------------------------------------------
    def _load_identity(self) -> str:
        """meta.properties pins a log dir to one node and cluster, as in Kafka."""
        configured = self.config.get("cluster.id")
        cluster_id = None
        for directory in self.log_dirs:
            meta = _read_meta(directory / META_PROPERTIES)
            if not meta:
                continue
            if "node.id" in meta and int(meta["node.id"]) != self.node_id:
                raise StartupError(
                    f"{directory}/{META_PROPERTIES} belongs to node.id={meta['node.id']}, but this "
                    f"broker has node.id={self.node_id}: use that node.id or another log.dirs")
            if cluster_id and meta.get("cluster.id") != cluster_id:
                raise StartupError(f"log dirs disagree on cluster.id ({directory})")
            cluster_id = meta.get("cluster.id")
        if configured and cluster_id and configured != cluster_id:
            raise StartupError(f"cluster.id={configured} but {self.log_dirs[0]} holds cluster "
                               f"{cluster_id}: point log.dirs elsewhere or drop the override")
        cluster_id = cluster_id or str(configured or _new_cluster_id())
        text = f"version=1\ncluster.id={cluster_id}\nnode.id={self.node_id}\n"
        for directory in self.log_dirs:
            write_atomically(directory / META_PROPERTIES, text.encode())
        return cluster_id

    # -- partitions -------------------------------------------------------------------------
    def _open_partitions(self) -> None:
        found = self.logs.load_existing(self._log_config_of)
        for (topic, index), partition_log in found.items():
            info = self.registry.get(topic)
            if info is None or index >= info.partitions:
                log.warning("log directory %s-%d belongs to no registered topic; ignoring it",
                            topic, index)
                continue
            self.partitions[(topic, index)] = self._wrap(info, index, partition_log)
        for info in self.registry.topics.values():
            for index in range(info.partitions):
                if (info.name, index) not in self.partitions:
                    self._create_partition(info, index)

    def _log_config_of(self, topic: str):
        info = self.registry.get(topic)
        return log_config_for(info.configs if info else {}, self.config)

    def _wrap(self, info: TopicInfo, index: int, partition_log) -> Partition:
        min_isr = int(info.configs.get("min.insync.replicas", self.config.get("min.insync.replicas")))
        return Partition(info.name, index, partition_log, log_config_for(info.configs, self.config),
                         min_isr)

    def _create_partition(self, info: TopicInfo, index: int) -> Partition:
        partition_log = self.logs.create_log(info.name, index,
                                             log_config_for(info.configs, self.config))
        partition = self._wrap(info, index, partition_log)
        self.partitions[(info.name, index)] = partition
        return partition

    def partition(self, topic: str, index: int) -> Partition | None:
        return self.partitions.get((topic, index))

    # -- topic operations (callers have validated) ----------------------------------------
    def create_topic(self, name: str, partitions: int, configs: dict[str, str],
                     internal: bool = False) -> TopicInfo:
        info = self.registry.create(name, partitions, configs, internal)
        for index in range(partitions):
            self._create_partition(info, index)
        self.metrics.topic_created(name)
        log.info("created topic %s with %d partitions %s", name, partitions, configs or "")
        return info

    def delete_topic(self, name: str) -> TopicInfo:
        info = self.registry.delete(name)
        for index in range(info.partitions):
            partition = self.partitions.pop((name, index), None)
            if partition is not None:
                partition._wake_waiters()
        self.logs.delete_topic_logs(name)
        self.group_coordinator.on_topic_deleted(name)
        self.metrics.topic_deleted(name, info.partitions)
        log.info("deleted topic %s", name)
        return info

    def add_partitions(self, name: str, total: int) -> TopicInfo:
        info = self.registry.set_partitions(name, total)
        for index in range(total):
            if (name, index) not in self.partitions:
                self._create_partition(info, index)
        return info

    def set_topic_configs(self, name: str, overrides: dict[str, str]) -> TopicInfo:
        info = self.registry.set_configs(name, overrides)
        config = log_config_for(overrides, self.config)
        self.logs.update_config(name, config)
        min_isr = int(overrides.get("min.insync.replicas", self.config.get("min.insync.replicas")))
        for index in range(info.partitions):
            partition = self.partitions.get((name, index))
            if partition is not None:
                partition.config = config
                partition.min_insync_replicas = min_isr
        return info

    # -- lifecycle ------------------------------------------------------------------------------
    def start_background(self) -> None:
        retention_ms = self.config.get_int("log.retention.check.interval.ms")
        flush_ms = self.config.get_int("log.flush.scheduler.interval.ms")
        self._background = [
            asyncio.create_task(self.logs.run_retention(retention_ms), name="retention"),
            asyncio.create_task(self.logs.run_flusher(flush_ms), name="flusher"),
            asyncio.create_task(self._update_gauges(), name="gauges"),
        ]
        self.group_coordinator.start()
        self.log_cleaner.start()

    async def _update_gauges(self) -> None:
        while True:
            self.metrics.observe_partitions(self.partitions.values())
            await asyncio.sleep(5)

    async def stop_background(self) -> None:
        await self.group_coordinator.stop()
        await self.log_cleaner.stop()
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)

    def close(self) -> None:
        """Flush and close every log; the next start needs no recovery scan."""
        for partition in self.partitions.values():
            partition.save_producer_state()
        self.logs.close_all()

    @staticmethod
    def now_ms() -> int:
        return int(time.time() * 1000)
