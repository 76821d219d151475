"""Group coordination in a three-broker cluster: a broker serves exactly the groups of
the `__consumer_offsets` partitions it leads, and reports their lag for every partition
they committed, wherever that partition is led.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from brook.broker.groups.placement import OFFSETS_TOPIC, partition_for
from brook.broker.protocol.codec import request_class
from brook.broker.protocol.entities import build
from tests.component.test_groups_wire import join, join_member, sync
from tests.support.cluster import BrokerCluster
from tests.support.kafka_wire import WireClient
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(180)

OFFSETS_PARTITIONS = 3
TOPIC = "lagged"


@pytest.fixture
def cluster(tmp_path):
    brokers = BrokerCluster(tmp_path, 3, offsets_topic_num_partitions=str(OFFSETS_PARTITIONS),
                            offsets_topic_replication_factor="3",
                            group_initial_rebalance_delay_ms="0",
                            leader_imbalance_check_interval_seconds="2").start()
    yield brokers
    brokers.stop()


def group_on(index: int, prefix: str) -> str:
    return next(f"{prefix}-{i}" for i in range(1000)
                if partition_for(f"{prefix}-{i}", OFFSETS_PARTITIONS) == index)


def lag_metrics(broker, group: str) -> dict[str, dict[int, float]]:
    """{metric: {partition: value}} of one group from one broker's /metrics."""
    url = f"http://127.0.0.1:{broker.metrics_port}/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    out: dict[str, dict[int, float]] = {}
    pattern = (r'^brook_consumer_group_(committed_offset|log_end_offset|lag)\{group="'
               + re.escape(group) + r'",partition="(\d+)",topic="' + TOPIC + r'"\} (\S+)$')
    for name, partition, value in re.findall(pattern, text, re.MULTILINE):
        out.setdefault(name, {})[int(partition)] = float(value)
    return out


def listed_by(broker) -> set[str]:
    with WireClient(broker.bootstrap) as client:
        response = client.request(build(request_class(16, 4), {"states_filter": []}))
    return {g.group_id for g in response.groups}


def offsets_leaders(admin) -> dict[int, tuple[int, list[int]]]:
    topic = admin.list_topics(OFFSETS_TOPIC, timeout=10).topics[OFFSETS_TOPIC]
    return {i: (p.leader, list(p.replicas)) for i, p in topic.partitions.items()}


def test_lag_of_remote_partitions_and_groups_follow_offsets_leadership(cluster):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic(TOPIC, 3, 1)])[TOPIC].result(20)  # one replica each
    producer = Producer({"bootstrap.servers": cluster.bootstrap})
    for i in range(90):
        producer.produce(TOPIC, value=b"x", partition=i % 3)
    assert producer.flush(30) == 0

    def commit(group: str, offsets: dict[int, int]) -> None:
        consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group})
        try:
            consumer.commit(offsets=[TopicPartition(TOPIC, p, o) for p, o in offsets.items()],
                            asynchronous=False)
        finally:
            consumer.close()

    commit(group_on(0, "warmup"), {0: 1})  # creates __consumer_offsets
    def all_led():
        leaders = offsets_leaders(admin)
        return leaders if all(leader >= 0 for leader, _ in leaders.values()) else None

    leaders = wait_until(all_led, 30, lambda: offsets_leaders(admin))
    index = next(i for i, (leader, replicas) in leaders.items() if replicas[0] == leader)
    coordinator_id, replicas = leaders[index]
    heir_id = next(r for r in replicas if r != coordinator_id)
    group = group_on(index, "lagging")
    commits = {0: 10, 1: 20, 2: 5}
    commit(group, commits)

    # The coordinator reports lag for all three partitions, though it leads one of them.
    coordinator = cluster.brokers[coordinator_id]
    expected = {"committed_offset": {p: float(o) for p, o in commits.items()},
                "log_end_offset": dict.fromkeys(range(3), 30.0),
                "lag": {p: float(30 - o) for p, o in commits.items()}}
    wait_until(lambda: lag_metrics(coordinator, group) == expected, 20,
               lambda: lag_metrics(coordinator, group))
    others = [b for i, b in enumerate(cluster.brokers) if i != coordinator_id]
    assert all(lag_metrics(b, group) == {} for b in others)
    assert group in listed_by(coordinator) and all(group not in listed_by(b) for b in others)

    # A group the heir coordinates, with a JoinGroup parked in a rebalance: the heir
    # gaining another offsets partition must leave it alone.
    heir = cluster.brokers[heir_id]
    heir_index = next(i for i, (leader, _) in leaders.items() if leader == heir_id)
    busy = group_on(heir_index, "busy")
    with WireClient(heir.bootstrap, timeout=60) as first, \
            WireClient(heir.bootstrap, timeout=60) as second:
        joined = join_member(first, 5, busy, topic=TOPIC, session=60000)
        assert int(joined.error_code) == 0
        sync(first, 5, busy, joined.generation_id, joined.member_id,
             [(joined.member_id, b"A")])
        parked: list = []
        joiner = threading.Thread(target=lambda: parked.append(
            join_member(second, 5, busy, topic=TOPIC, session=60000)), daemon=True)
        joiner.start()
        time.sleep(0.5)
        assert joiner.is_alive(), "the second JoinGroup did not wait for the rebalance"

        # The coordinator dies: the heir takes its offsets partition and its groups.
        coordinator.kill()
        wait_until(lambda: offsets_leaders(admin)[index][0] == heir_id, 30,
                   lambda: offsets_leaders(admin))
        wait_until(lambda: group in listed_by(heir), 20, lambda: listed_by(heir))
        wait_until(lambda: lag_metrics(heir, group).get("committed_offset")
                   == expected["committed_offset"], 20, lambda: lag_metrics(heir, group))

        # The parked JoinGroup still completes once the first member rejoins.
        rejoined = join(first, 5, busy, member_id=joined.member_id, topic=TOPIC, session=60000)
        joiner.join(30)
        assert int(rejoined.error_code) == 0 and parked and int(parked[0].error_code) == 0
        assert parked[0].generation_id == rejoined.generation_id == joined.generation_id + 1

    # The coordinator comes back and, as preferred leader, takes its partition back: the
    # heir drops that partition's group from ListGroups and from its lag metrics.
    coordinator.start()
    wait_until(lambda: offsets_leaders(admin)[index][0] == coordinator_id, 60,
               lambda: offsets_leaders(admin))
    wait_until(lambda: group not in listed_by(heir) and lag_metrics(heir, group) == {}, 20,
               lambda: (listed_by(heir), lag_metrics(heir, group)))
    assert busy in listed_by(heir)
    wait_until(lambda: group in listed_by(coordinator), 20, lambda: listed_by(coordinator))
    wait_until(lambda: lag_metrics(coordinator, group) == expected, 20,
               lambda: lag_metrics(coordinator, group))
