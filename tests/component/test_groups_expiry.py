"""Committed offsets expire (offsets.retention.minutes, as Kafka does it) and the
coordinator settings are known broker properties.

Kafka's retention is counted in minutes, so the full proof (a consumer group empties,
its offsets go a minute later, the group with them) is marked slow. The fast proof uses
OffsetCommit v2's own retention time, which the same expiry pass honours.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from brook.broker.protocol.codec import request_class
from brook.broker.protocol.entities import build
from tests.support.groups import committed_offsets, wait_assigned
from tests.support.kafka_wire import WireClient
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(150)

COORDINATOR_SETTINGS = {
    "offsets.retention.check.interval.ms": "500",
    "offset.metadata.max.bytes": "4096",
    "group.max.size": "2147483647",
    "offsets.topic.segment.bytes": "104857600",
    "log.cleaner.enable": "true",
    "log.cleaner.dedupe.buffer.size": "134217728",
    "log.cleaner.io.buffer.load.factor": "0.9",
}


def listed(admin: AdminClient) -> set[str]:
    return {g.group_id for g in admin.list_consumer_groups().result(20).valid}


def wait_gone(bootstrap, group, topic, partitions, timeout):
    """Until the group's offsets read as none (-1001) and ListGroups drops it."""
    admin = AdminClient({"bootstrap.servers": bootstrap})

    def gone():
        return (set(committed_offsets(bootstrap, group, topic, partitions).values()) == {-1001}
                and group not in listed(admin))

    wait_until(gone, timeout, lambda: (
        f"offsets of {group} to expire: {committed_offsets(bootstrap, group, topic, partitions)}"
        f", listed: {group in listed(admin)}"), interval=0.5)


def test_coordinator_settings_are_known_and_described(fresh_broker):
    broker = fresh_broker(offsets_retention_check_interval_ms=500)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    resource = ConfigResource(ConfigResource.Type.BROKER, "0")
    entries = admin.describe_configs([resource])[resource].result(20)
    assert {k: entries[k].value for k in COORDINATOR_SETTINGS} == COORDINATOR_SETTINGS
    assert not entries["offsets.retention.check.interval.ms"].is_default
    assert entries["group.max.size"].is_default
    assert "unknown broker property" not in broker.log_path.read_text()


def test_offsets_committed_with_a_retention_time_expire(fresh_broker, topic_name):
    """OffsetCommit v2 carries its own retention (Kafka honours it for v2-v4): a simple
    group's offset goes after its ten seconds, and the group with its last offset."""
    broker = fresh_broker(offsets_retention_check_interval_ms=500)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 2, 1)])[topic_name].result(10)
    short, kept = f"short-{uuid.uuid4().hex[:8]}", f"kept-{uuid.uuid4().hex[:8]}"
    with WireClient(broker.bootstrap) as client:
        # ten seconds: long enough to still be there when read back on a loaded machine
        for group, retention in ((short, 10_000), (kept, -1)):
            deadline = time.monotonic() + 30
            while True:  # COORDINATOR_NOT_AVAILABLE while __consumer_offsets is created
                response = client.request(build(request_class(8, 2), {
                    "group_id": group, "generation_id_or_member_epoch": -1, "member_id": "",
                    "retention_time": retention, "topics": [{"name": topic_name, "partitions": [
                        {"partition_index": p, "committed_offset": 5 + p,
                         "committed_metadata": ""} for p in range(2)]}]}))
                errors = {int(p.error_code) for p in response.topics[0].partitions}
                if errors != {15} or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert errors == {0}
    assert committed_offsets(broker.bootstrap, short, topic_name, 2) == {0: 5, 1: 6}
    assert {short, kept} <= listed(admin)
    wait_gone(broker.bootstrap, short, topic_name, 2, timeout=60)
    assert committed_offsets(broker.bootstrap, kept, topic_name, 2) == {0: 5, 1: 6}
    assert kept in listed(admin)


@pytest.mark.slow
def test_offsets_of_an_empty_group_expire_after_retention_minutes(fresh_broker, topic_name):
    broker = fresh_broker(offsets_retention_minutes=1, offsets_retention_check_interval_ms=1000,
                          group_initial_rebalance_delay_ms=0)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic_name, 2, 1)])[topic_name].result(10)
    group = f"expiring-{uuid.uuid4().hex[:8]}"
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                         "enable.auto.commit": False, "session.timeout.ms": 6000})
    consumer.subscribe([topic_name])
    try:
        wait_assigned(consumer, 2)
        consumer.commit(offsets=[TopicPartition(topic_name, 0, 3),
                                 TopicPartition(topic_name, 1, 4)], asynchronous=False)
    finally:
        consumer.close()  # the group is Empty from now: its offsets' minute starts
    emptied = time.monotonic()
    assert committed_offsets(broker.bootstrap, group, topic_name, 2) == {0: 3, 1: 4}
    assert group in listed(admin)
    wait_gone(broker.bootstrap, group, topic_name, 2, timeout=90)
    assert time.monotonic() - emptied >= 55  # not before its minute was (nearly) up
