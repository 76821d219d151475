"""Log-end offsets of partitions other brokers lead, for the lag of groups coordinated here.

A group's coordinator holds its committed offsets, but in a cluster the partitions the
group consumes are led all over. Lag needs each one's log-end offset (the high
watermark, what a consumer can reach): partitions led here are read at scrape time;
for the others this asks their leaders with ListOffsets (latest) every few seconds,
so their lag is at most that old. Partitions whose leader cannot be reached keep no
value, and the lag metrics leave them out rather than guess.
"""

from __future__ import annotations

import asyncio
import logging

from kio.schema.errors import ErrorCode

from ..protocol.client import BrokerConnectionError, KafkaConnection
from ..protocol.codec import request_class
from ..protocol.entities import build

log = logging.getLogger("brook.groups")

REFRESH_S = 2.0
LATEST = -1


def wanted_by_leader(committed: list[tuple[str, int]], leader_of, node_id: int,
                     led_here) -> dict[int, list[tuple[str, int]]]:
    """Committed (topic, partition)s this broker does not lead, grouped by their leader
    (pure). `leader_of(topic, p)` is the leader id or -1; `led_here(topic, p)` a bool."""
    out: dict[int, list[tuple[str, int]]] = {}
    for topic, partition in sorted(set(committed)):
        if led_here(topic, partition):
            continue
        leader = leader_of(topic, partition)
        if leader >= 0 and leader != node_id:
            out.setdefault(leader, []).append((topic, partition))
    return out


class RemoteLogEnds:
    def __init__(self, broker, coordinator) -> None:
        self.broker = broker
        self.coordinator = coordinator
        self.values: dict[tuple[str, int], int] = {}  # replaced whole: read by the scraper
        self._connections: dict[int, KafkaConnection] = {}

    def _leader_of(self, topic: str, partition: int) -> int:
        state = self.broker.metadata.image.partition(topic, partition)
        return -1 if state is None else state.leader

    async def refresh(self) -> None:
        committed = [(t, p) for (_, t, p), _ in self.coordinator.offsets.snapshot()]
        by_leader = wanted_by_leader(
            committed, self._leader_of, self.broker.node_id,
            lambda t, p: self.broker.partition(t, p) is not None)
        fresh: dict[tuple[str, int], int] = {}
        for leader, partitions in by_leader.items():
            try:
                fresh.update(await self._ask(leader, partitions))
            except (BrokerConnectionError, OSError, TimeoutError) as exc:
                log.debug("log-end offsets from broker %d: %s", leader, exc)
                connection = self._connections.pop(leader, None)
                if connection is not None:
                    connection.close()
        self.values = fresh

    async def _ask(self, leader: int, partitions: list[tuple[str, int]]
                   ) -> dict[tuple[str, int], int]:
        connection = self._connections.get(leader)
        if connection is None or not connection.connected:
            info = self.broker.metadata.image.brokers.get(leader)
            if info is None:
                return {}
            connection = KafkaConnection(info.host, info.port,
                                         f"brook-lag-{self.broker.node_id}")
            self._connections[leader] = connection
        by_topic: dict[str, list[int]] = {}
        for topic, partition in partitions:
            by_topic.setdefault(topic, []).append(partition)
        response = await connection.request(build(request_class(2, 7), {
            "replica_id": -1, "isolation_level": 0, "topics": [
                {"name": topic, "partitions": [
                    {"partition_index": p, "current_leader_epoch": -1, "timestamp": LATEST}
                    for p in indexes]} for topic, indexes in by_topic.items()]}), timeout=5)
        return {(topic.name, p.partition_index): p.offset
                for topic in response.topics for p in topic.partitions
                if p.error_code == ErrorCode.none}

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("refreshing log-end offsets for lag failed")
            await asyncio.sleep(REFRESH_S)

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()
