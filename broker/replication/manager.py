"""This broker's replicas: leading, following, and the ISR upkeep of led partitions.

Driven by metadata: when a partition's state names this broker as leader it becomes
leader at that epoch (recording the epoch's start offset); as a follower it truncates
any divergent tail (OffsetForLeaderEpoch) and fetches from the leader with the Kafka
Fetch API; when it is no longer a replica its local log goes. As leader it advances
the high watermark as followers fetch, and asks the controller to shrink or expand
the ISR (AlterPartition) when followers fall behind or catch up.
"""

from __future__ import annotations

import asyncio
import logging
import time

from kio.schema.errors import ErrorCode

from ..metadata.image import PartitionState
from .fetcher import ReplicaFetcher
from .leader_state import LeaderState
from .throttle import (
    FOLLOWER_RATE,
    FOLLOWER_REPLICAS,
    LEADER_RATE,
    LEADER_REPLICAS,
    ReplicationQuota,
    throttled,
)

log = logging.getLogger("brook.replication")


def now_ms() -> int:
    return int(time.time() * 1000)


class ReplicaManager:
    def __init__(self, broker) -> None:
        self.broker = broker
        self.node_id = broker.node_id
        self.fetchers: dict[int, ReplicaFetcher] = {}
        self.lag_max_ms = broker.config.get_int("replica.lag.time.max.ms")
        self._tasks: list[asyncio.Task] = []
        self._isr_requests: set[asyncio.Task] = set()
        self.leader_quota = ReplicationQuota()
        self.follower_quota = ReplicationQuota()

    # -- replication throttles (reassignments) ---------------------------------------------
    def _rate(self, name: str) -> int | None:
        value = self.broker.metadata.image.dynamic_broker_config(self.node_id, name)
        if value is None:
            value = self.broker.config.get(name)
        return int(value)

    def leader_throttled(self, topic: str, index: int, replica_id: int) -> bool:
        """A replica fetch this leader should hold back now: the quota is used up and the
        fetching replica is outside the ISR and named in the topic's throttled list."""
        self.leader_quota.set_rate(self._rate(LEADER_RATE))
        return self._out_of_sync_and_listed(topic, index, replica_id, LEADER_REPLICAS,
                                            self.node_id) and self.leader_quota.exceeded()

    def follower_throttled(self, topic: str, index: int) -> bool:
        self.follower_quota.set_rate(self._rate(FOLLOWER_RATE))
        return self._out_of_sync_and_listed(topic, index, self.node_id, FOLLOWER_REPLICAS,
                                            self.node_id) and self.follower_quota.exceeded()

    def counts_against_follower_quota(self, topic: str, index: int) -> bool:
        return self._out_of_sync_and_listed(topic, index, self.node_id, FOLLOWER_REPLICAS,
                                            self.node_id)

    def counts_against_leader_quota(self, topic: str, index: int, replica_id: int) -> bool:
        return self._out_of_sync_and_listed(topic, index, replica_id, LEADER_REPLICAS,
                                            self.node_id)

    def _out_of_sync_and_listed(self, topic: str, index: int, replica_id: int, list_name: str,
                                listed_broker: int) -> bool:
        image = self.broker.metadata.image
        state = image.partition(topic, index)
        if state is None or replica_id in state.isr:
            return False  # Kafka throttles only replicas catching up
        return throttled(image.topic_configs(topic).get(list_name), index, listed_broker)

    # -- metadata-driven role changes -----------------------------------------------------
    def apply_partition_state(self, topic: str, index: int, state: PartitionState) -> None:
        if self.node_id not in state.replicas:
            if (topic, index) in self.broker.partitions:
                was_leader = self.broker.partitions[(topic, index)].is_leader
                self.stop_following(topic, index)
                self.broker.drop_partition(topic, index)
                if was_leader:
                    self.broker.group_coordinator_leadership(topic, index, False)
                log.info("%s-%d: no longer a replica here; log removed", topic, index)
            return
        partition = self.broker.local_partition(topic, index)
        was_leader, old_epoch = partition.is_leader, partition.leader_epoch
        partition.update_assignment(state, self.node_id)
        if state.leader == self.node_id:
            if not was_leader or old_epoch != state.leader_epoch or partition.leader_state is None:
                self.stop_following(topic, index)
                self._become_leader(partition, state)
            else:
                self._count_isr_change(partition.leader_state.isr, state.isr)
                partition.leader_state.isr = state.isr
                partition.leader_state.replicas = state.replicas
                partition.leader_state.partition_epoch = state.partition_epoch
                partition.leader_state.pending_isr = None
                partition.leader_state.__post_init__()
                partition.advance_high_watermark()
        else:
            partition.leader_state = None
            if state.leader >= 0 and (was_leader or old_epoch != state.leader_epoch
                                      or not self._is_following(topic, index, state.leader)):
                self._become_follower(partition, state)
            elif state.leader < 0:
                self.stop_following(topic, index)
                if was_leader:
                    self.broker.group_coordinator_leadership(topic, index, False)

    def _count_isr_change(self, old: tuple[int, ...], new: tuple[int, ...]) -> None:
        """ISR shrinks/expands of a led partition, whoever asked (this leader, or the
        controller fencing a broker)."""
        if set(old) - set(new):
            self.broker.metrics.isr_shrinks.inc()
        if set(new) - set(old):
            self.broker.metrics.isr_expands.inc()

    def _become_leader(self, partition, state: PartitionState) -> None:
        log_end = partition.log.log_end_offset
        partition.epochs.assign(state.leader_epoch, log_end)
        # A new leader starts its high watermark where it knows it was safe: the ISR's
        # data up to it was acknowledged, and it only moves forward from there.
        start_hw = min(partition.follower_high_watermark, log_end) \
            if len(state.replicas) > 1 else log_end
        partition.leader_state = LeaderState(
            my_id=self.node_id, replicas=state.replicas, isr=state.isr,
            leader_epoch=state.leader_epoch, partition_epoch=state.partition_epoch,
            epoch_start_offset=log_end, high_watermark=max(start_hw,
                                                           partition.log.log_start_offset),
            now_ms=now_ms())
        partition.advance_high_watermark()
        partition.wake_waiters()
        self.broker.group_coordinator_leadership(partition.topic, partition.index, True)
        log.info("%s-%d: leader at epoch %d (ISR %s)", partition.topic, partition.index,
                 state.leader_epoch, list(state.isr))

    def _become_follower(self, partition, state: PartitionState) -> None:
        self.stop_following(partition.topic, partition.index)
        partition.wake_waiters()  # parked produces/fetches see they are no longer leader
        self.broker.group_coordinator_leadership(partition.topic, partition.index, False)
        fetcher = self.fetchers.get(state.leader)
        if fetcher is None:
            fetcher = self.fetchers[state.leader] = ReplicaFetcher(self.broker, state.leader)
            if self._tasks:
                fetcher.start()
        fetcher.add(partition, state.leader_epoch)
        log.info("%s-%d: following %d at epoch %d", partition.topic, partition.index,
                 state.leader, state.leader_epoch)

    def _is_following(self, topic: str, index: int, leader: int) -> bool:
        fetcher = self.fetchers.get(leader)
        return fetcher is not None and fetcher.has(topic, index)

    def stop_following(self, topic: str, index: int) -> None:
        for fetcher in self.fetchers.values():
            fetcher.remove(topic, index)

    def after_metadata_change(self, delta) -> None:
        if delta.changed_brokers:
            for fetcher in self.fetchers.values():
                fetcher.leader_address_changed()

    # -- the leader side of follower fetches -----------------------------------------------
    def on_follower_fetch(self, partition, replica_id: int, fetch_offset: int) -> None:
        state = partition.leader_state
        if state is None:
            return
        state.on_follower_fetch(replica_id, fetch_offset, partition.log.log_end_offset, now_ms())
        partition.advance_high_watermark()
        if replica_id not in state.maximal_isr:
            self._maybe_change_isr(partition)

    def _maybe_change_isr(self, partition) -> None:
        state = partition.leader_state
        if state is None:
            return
        wanted = state.proposed_isr(now_ms(), self.lag_max_ms,
                                    eligible=self.broker.metadata.image.is_live)
        if wanted is None or set(wanted) == set(state.isr):
            return
        state.pending_isr = wanted
        task = asyncio.create_task(self._alter_isr(partition, state, wanted))
        self._isr_requests.add(task)
        task.add_done_callback(self._isr_requests.discard)

    async def _alter_isr(self, partition, state: LeaderState, wanted: tuple[int, ...]) -> None:
        topic = self.broker.metadata.image.topics.get(partition.topic)
        if topic is None:
            return
        try:
            answer = await self.broker.controller_call("alter_partition", {
                "broker_id": self.node_id, "topic_id": topic.topic_id,
                "partition": partition.index, "leader_epoch": state.leader_epoch,
                "partition_epoch": state.partition_epoch, "new_isr": list(wanted)})
            error = ErrorCode(answer["error_code"])
        except Exception as exc:  # the controller is unreachable: retry on the next tick
            log.warning("%s-%d: ISR change to %s failed: %s", partition.topic, partition.index,
                        list(wanted), exc)
            error = ErrorCode.request_timed_out
        if error != ErrorCode.none and partition.leader_state is state:
            state.pending_isr = None
            log.info("%s-%d: controller refused ISR %s: %s", partition.topic, partition.index,
                     list(wanted), error.name)
        elif error == ErrorCode.none:
            log.info("%s-%d: ISR -> %s", partition.topic, partition.index, list(wanted))

    async def _isr_upkeep(self) -> None:
        interval = max(0.1, min(self.lag_max_ms / 2000, 2.0))
        while True:
            await asyncio.sleep(interval)
            for partition in list(self.broker.partitions.values()):
                if partition.leader_state is not None and \
                        len(partition.leader_state.replicas) > 1:
                    self._maybe_change_isr(partition)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._isr_upkeep(), name="isr-upkeep"))
        for fetcher in self.fetchers.values():
            fetcher.start()

    async def stop(self) -> None:
        for fetcher in self.fetchers.values():
            await fetcher.stop()
        for task in [*self._tasks, *self._isr_requests]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._isr_requests, return_exceptions=True)
        self._tasks = []
