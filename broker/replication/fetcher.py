"""A follower's fetch loop against one leader broker, over the Kafka protocol.

For each partition it follows from that leader it first asks OffsetForLeaderEpoch
where its last epoch ends on the leader and cuts anything beyond (the tail an old
leader wrote that never committed; the rule is in truncation.py), then fetches with replica_id set, appending the
leader's batches unchanged and taking the leader's high watermark.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from kio.schema.errors import ErrorCode
from kio.schema.fetch.v12.request import FetchPartition, FetchRequest, FetchTopic
from kio.schema.offset_for_leader_epoch.v4.request import (
    OffsetForLeaderEpochRequest,
    OffsetForLeaderPartition,
    OffsetForLeaderTopic,
)

from .. import records
from ..protocol.client import BrokerConnectionError, KafkaConnection
from ..storage.log import UnexpectedAppendOffsetError
from .truncation import decide_truncation

log = logging.getLogger("brook.replication.fetcher")

FETCH_MAX_WAIT_MS = 500
PARTITION_MAX_BYTES = 1 << 20
RESPONSE_MAX_BYTES = 10 << 20


@dataclass
class FollowedPartition:
    partition: object  # broker.partition.Partition
    leader_epoch: int
    truncated: bool = False


class ReplicaFetcher:
    def __init__(self, broker, leader_id: int) -> None:
        self.broker = broker
        self.leader_id = leader_id
        self.partitions: dict[tuple[str, int], FollowedPartition] = {}
        self._conn: KafkaConnection | None = None
        self._task: asyncio.Task | None = None
        self._changed = asyncio.Event()

    def has(self, topic: str, index: int) -> bool:
        return (topic, index) in self.partitions

    def add(self, partition, leader_epoch: int) -> None:
        self.partitions[(partition.topic, partition.index)] = FollowedPartition(
            partition, leader_epoch)
        self._changed.set()

    def remove(self, topic: str, index: int) -> None:
        if self.partitions.pop((topic, index), None) is not None:
            self._changed.set()

    def leader_address_changed(self) -> None:
        if self._conn is not None:
            info = self.broker.metadata.image.brokers.get(self.leader_id)
            if info is None or (info.host, info.port) != (self._conn.host, self._conn.port):
                self._conn.close()
                self._conn = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"fetcher-{self.leader_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._conn is not None:
            self._conn.close()

    # -- the loop ------------------------------------------------------------------------------
    async def _run(self) -> None:
        backoff = 0.05
        while True:
            if not self.partitions:
                self._changed.clear()
                await self._changed.wait()
                continue
            try:
                conn = await self._connection()
                pending = [f for f in self.partitions.values() if not f.truncated]
                if pending:
                    await self._truncate(conn, pending)
                await self._fetch_once(conn)
                backoff = 0.05
            except (BrokerConnectionError, TimeoutError, OSError) as exc:
                log.debug("fetching from broker %d: %s", self.leader_id, exc)
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("replica fetcher for broker %d failed; retrying", self.leader_id)
                await asyncio.sleep(1)

    async def _connection(self) -> KafkaConnection:
        if self._conn is None or not self._conn.connected:
            info = self.broker.metadata.image.brokers.get(self.leader_id)
            if info is None:
                raise BrokerConnectionError(f"broker {self.leader_id} is not registered")
            self._conn = KafkaConnection(info.host, info.port,
                                         f"brook-replica-{self.broker.node_id}",
                                         max_response_bytes=RESPONSE_MAX_BYTES * 4)
            await self._conn.connect()
        return self._conn

    async def _truncate(self, conn: KafkaConnection, pending: list[FollowedPartition]) -> None:
        by_topic: dict[str, list[FollowedPartition]] = {}
        for followed in pending:
            by_topic.setdefault(followed.partition.topic, []).append(followed)
        request = OffsetForLeaderEpochRequest(replica_id=self.broker.node_id, topics=tuple(
            OffsetForLeaderTopic(topic=topic, partitions=tuple(
                OffsetForLeaderPartition(partition=f.partition.index,
                                         current_leader_epoch=f.leader_epoch,
                                         leader_epoch=f.partition.epochs.latest_epoch)
                for f in items))
            for topic, items in by_topic.items()))
        response = await conn.request(request, timeout=10)
        for topic in response.topics:
            for item in topic.partitions:
                followed = self.partitions.get((topic.topic, item.partition))
                if followed is None:
                    continue
                if item.error_code != ErrorCode.none:
                    log.debug("%s-%d: OffsetForLeaderEpoch: %s", topic.topic, item.partition,
                              item.error_code.name)
                    continue
                partition = followed.partition
                log_end = partition.log.log_end_offset
                if partition.epochs.latest_epoch < 0:
                    followed.truncated = True  # nothing written under any epoch yet
                    continue
                decision = decide_truncation(item.leader_epoch, item.end_offset,
                                             partition.epochs, log_end,
                                             partition.follower_high_watermark)
                if decision.offset < log_end:
                    log.warning("%s-%d: truncating divergent tail %d -> %d (leader epoch %d "
                                "ends at %d)", topic.topic, item.partition, log_end,
                                decision.offset, item.leader_epoch, item.end_offset)
                    partition.truncate_to(decision.offset)
                # not completed: the next round asks again with the epoch now latest
                followed.truncated = decision.completed

    async def _fetch_once(self, conn: KafkaConnection) -> None:
        replicas = self.broker.replicas
        ready = {key: f for key, f in self.partitions.items()
                 if f.truncated and not replicas.follower_throttled(*key)}
        if not ready:
            # nothing to fetch, or only throttled replicas over their quota: the quota
            # refills within a second
            await asyncio.sleep(0.05 if not self.partitions else 0.1)
            return
        by_topic: dict[str, list[FollowedPartition]] = {}
        for followed in ready.values():
            by_topic.setdefault(followed.partition.topic, []).append(followed)
        request = FetchRequest(
            replica_id=self.broker.node_id, max_wait=timedelta(milliseconds=FETCH_MAX_WAIT_MS),
            min_bytes=1, max_bytes=RESPONSE_MAX_BYTES, isolation_level=0, session_id=0,
            session_epoch=-1, topics=tuple(
                FetchTopic(topic=topic, partitions=tuple(
                    FetchPartition(partition=f.partition.index,
                                   current_leader_epoch=f.leader_epoch,
                                   fetch_offset=f.partition.log.log_end_offset,
                                   last_fetched_epoch=-1,
                                   log_start_offset=f.partition.log.log_start_offset,
                                   partition_max_bytes=PARTITION_MAX_BYTES)
                    for f in items))
                for topic, items in by_topic.items()),
            forgotten_topics_data=(), rack_id="")
        response = await conn.request(request, timeout=FETCH_MAX_WAIT_MS / 1000 + 10)
        for topic in response.responses:
            for item in topic.partitions:
                followed = self.partitions.get((topic.topic, item.partition_index))
                if followed is None or followed is not ready.get((topic.topic,
                                                                  item.partition_index)):
                    continue
                self._handle_partition(followed, item)
                if item.records and replicas.counts_against_follower_quota(
                        topic.topic, item.partition_index):
                    replicas.follower_quota.record(len(item.records))

    def _handle_partition(self, followed: FollowedPartition, item) -> None:
        partition = followed.partition
        error = item.error_code
        if error == ErrorCode.offset_out_of_range:
            if partition.log.log_end_offset < item.log_start_offset:
                # the leader deleted what we lack: start over at its log start
                partition.truncate_fully_and_start_at(item.log_start_offset)
            else:
                followed.truncated = False  # ask OffsetForLeaderEpoch again
            return
        if error != ErrorCode.none:
            return  # not leader / fenced epoch: new metadata is on its way
        data = bytes(item.records or b"")
        if data:
            headers = [h for _, h in records.scan_valid_batches(data)]
            whole = sum(h.size for h in headers)
            if headers:
                try:
                    partition.append_as_follower(data[:whole], headers)
                except UnexpectedAppendOffsetError:
                    followed.truncated = False
                    return
        partition.set_follower_high_watermark(item.high_watermark)
        if item.log_start_offset > partition.log.log_start_offset:
            partition.log.delete_records_before(min(item.log_start_offset,
                                                    partition.follower_high_watermark))
