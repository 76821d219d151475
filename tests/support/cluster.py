"""Several `brook broker` processes on loopback forming one cluster (testing ladder 3)."""

from __future__ import annotations

import time
from pathlib import Path

from .broker_process import BrokerProcess
from .waiting import wait_until


class BrokerCluster:
    def __init__(self, base_dir: Path, size: int = 3, voters: int | None = None,
                 **overrides: str) -> None:
        self.brokers = [BrokerProcess(base_dir / f"broker{i}" / "data") for i in range(size)]
        voter_count = min(3, size) if voters is None else voters
        quorum = ",".join(f"{i}@127.0.0.1:{b.controller_port}"
                          for i, b in enumerate(self.brokers[:voter_count]))
        for i, broker in enumerate(self.brokers):
            broker.overrides.update({
                "node.id": str(i), "controller.quorum.voters": quorum,
                "broker.heartbeat.interval.ms": "500", "broker.session.timeout.ms": "3000",
                "replica.lag.time.max.ms": "3000",
                **{k.replace("_", "."): str(v) for k, v in overrides.items()}})

    @property
    def bootstrap(self) -> str:
        return ",".join(b.bootstrap for b in self.brokers if b.alive())

    def start(self, timeout: float = 60.0) -> BrokerCluster:
        for broker in self.brokers:
            broker.launch()
        for broker in self.brokers:
            broker.wait_ready(timeout)
        return self

    def stop(self) -> None:
        for broker in self.brokers:
            broker.kill()

    def wait_topics_known(self, *topics: str, timeout: float = 30.0) -> None:
        """Wait until every live broker's metadata has the topics. As in Kafka, a
        broker applies a new topic a moment after CreateTopics returns, and until then
        answers UNKNOWN_TOPIC_OR_PARTITION: tests that read metadata right after
        creating a topic wait here first (Kafka's own tests do the same)."""
        def known_everywhere() -> bool:
            return all(_known_by(broker, topics) for broker in self.brokers if broker.alive())
        wait_until(known_everywhere, timeout, f"every live broker to know {', '.join(topics)}")


def wire_topics(broker, *topics: str) -> tuple:
    """The topics as one broker's Metadata (v12) answer has them, errors included."""
    from kio.schema.metadata.v12 import MetadataRequest
    from kio.schema.metadata.v12.request import MetadataRequestTopic

    from .kafka_wire import WireClient
    with WireClient(broker.bootstrap) as client:
        return client.request(MetadataRequest(
            topics=tuple(MetadataRequestTopic(topic_id=None, name=t) for t in topics),
            allow_auto_topic_creation=False, include_topic_authorized_operations=False)).topics


def _known_by(broker, topics: tuple[str, ...]) -> bool:
    return all(t.error_code == 0 and t.partitions for t in wire_topics(broker, *topics))


# -- checks on recorded histories ---------------------------------------------------------

def high_watermark(bootstrap: str, topic: str, partition: int = 0) -> int:
    """The partition's high watermark as its leader reports it (ListOffsets latest)."""
    import confluent_kafka
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "hw"})
    try:
        return consumer.get_watermark_offsets(
            confluent_kafka.TopicPartition(topic, partition), timeout=10, cached=False)[1]
    finally:
        consumer.close()


def read_to_high_watermark(bootstrap: str, topic: str, partitions: int,
                           timeout: float = 60) -> list[tuple[int, int, bytes]]:
    """(partition, offset, value) of every record below each partition's high watermark.

    Reads until the consumer's position reaches the high watermark taken at the start,
    not until some expected count: a record stored twice at the end is read too."""
    import confluent_kafka
    from confluent_kafka import TopicPartition
    ends = {p: high_watermark(bootstrap, topic, p) for p in range(partitions)}
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "check",
                                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING)
                     for p in range(partitions) if ends[p] > 0])
    seen: list[tuple[int, int, bytes]] = []
    next_offset = dict.fromkeys(ends, 0)
    deadline = time.monotonic() + timeout
    try:
        while any(next_offset[p] < ends[p] for p in ends):
            assert time.monotonic() < deadline, (
                f"read only up to {next_offset} of the high watermarks {ends}")
            for msg in consumer.consume(1000, 0.5):
                if not msg.error() and msg.offset() < ends[msg.partition()]:
                    seen.append((msg.partition(), msg.offset(), msg.value()))
                    next_offset[msg.partition()] = msg.offset() + 1
    finally:
        consumer.close()
    return seen


def replica_batches(data_dir: Path, topic: str, partition: int, upto: int) -> list[bytes]:
    """The stored bytes of every record batch starting below `upto` in a replica's own
    segment files, in offset order (segment boundaries may differ between replicas)."""
    from brook.broker.records import scan_valid_batches
    batches = []
    for segment in sorted((data_dir / f"{topic}-{partition}").glob("*.log")):
        data = segment.read_bytes()
        for position, header in scan_valid_batches(data):
            if header.base_offset < upto:
                batches.append(bytes(data[position:position + header.size]))
    return batches


def replicas_identical(cluster: BrokerCluster, topic: str, partition: int = 0,
                       brokers: list[int] | None = None, min_hw: int = 0,
                       timeout: float = 60) -> tuple[int, list[bytes]]:
    """Wait (bounded) until every replica stores byte-identical batches up to the high
    watermark read from the leader, and that the batches end exactly there.
    Returns (high watermark, the batches)."""
    from brook.broker.records import scan_valid_batches
    ids = range(len(cluster.brokers)) if brokers is None else brokers

    def same():
        hw = high_watermark(cluster.bootstrap, topic, partition)
        if hw < max(min_hw, 1):
            return None
        copies = [replica_batches(cluster.brokers[b].data_dir, topic, partition, hw)
                  for b in ids]
        if not copies[0] or any(c != copies[0] for c in copies):
            return None
        _, last = list(scan_valid_batches(copies[0][-1]))[-1]
        return (hw, copies[0]) if last.next_offset == hw else None

    return wait_until(same, timeout, f"replicas {list(ids)} of {topic}-{partition} to be "
                      "identical below the high watermark", interval=0.5)
