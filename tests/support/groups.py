"""Consumer-group helpers shared by the group component tests."""

from __future__ import annotations

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from .waiting import wait_until


def committed_offsets(bootstrap: str, group: str, topic: str,
                      partitions: int) -> dict[int, int]:
    """The group's committed offset of each partition, as Admin's ListConsumerGroupOffsets
    reads it (-1001 where none is committed)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})  # must outlive the future
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p)
                                                   for p in range(partitions)])
    result = admin.list_consumer_group_offsets([request])[group].result(20)
    return {tp.partition: tp.offset for tp in result.topic_partitions}


def wait_assigned(consumer, partitions: int, timeout: float = 30) -> None:
    """Poll a subscribed confluent-kafka consumer until it owns `partitions` partitions
    (the rebalance runs inside poll)."""
    def assigned() -> bool:
        consumer.poll(0.1)
        return len(consumer.assignment()) >= partitions

    wait_until(assigned, timeout, f"the member to get {partitions} partitions", interval=0)
