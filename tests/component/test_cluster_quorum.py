"""Growing the metadata quorum of a running cluster, with `brook quorum`."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from tests.support.cluster import BrokerCluster

pytestmark = pytest.mark.timeout(240)


def quorum(address: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "brook.broker", "quorum", *args,
                           "--controller", address], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_one_voter_grows_to_three_and_survives_losing_the_first(tmp_path):
    """add-voter twice (1 -> 3 voters), kill the first voter, then remove-voter it."""
    cluster = BrokerCluster(tmp_path, 3, voters=1).start()
    try:
        first = f"127.0.0.1:{cluster.brokers[0].controller_port}"
        assert quorum(first, "describe")["voters"] == [0]
        assert quorum(first, "describe")["learners"] == [1, 2]  # the others are observers
        for node in (1, 2):
            state = quorum(f"127.0.0.1:{cluster.brokers[2].controller_port}", "add-voter",
                           "--node-id", str(node))
        assert state["voters"] == [0, 1, 2] and state["learners"] == []
        failed = subprocess.run([sys.executable, "-m", "brook.broker", "quorum", "add-voter",
                                 "--node-id", "7", "--controller", first],
                                capture_output=True, text=True, timeout=60)
        assert failed.returncode == 1 and "not a live, registered broker" in failed.stderr

        cluster.brokers[0].kill()  # the original (and only first) voter
        survivor = f"127.0.0.1:{cluster.brokers[1].controller_port}"
        deadline = time.monotonic() + 30
        while True:
            state = quorum(survivor, "describe")
            if state["leader"] in (1, 2):
                break
            assert time.monotonic() < deadline, f"no new controller: {state}"
            time.sleep(0.5)
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic("after-growth", 2, 2)])["after-growth"].result(30)
        cluster.wait_topics_known("after-growth")

        # and shrink again: the dead first voter is removed by the two live ones
        state = quorum(survivor, "remove-voter", "--node-id", "0")
        assert state["voters"] == [1, 2], state
        assert quorum(f"127.0.0.1:{cluster.brokers[2].controller_port}",
                      "describe")["voters"] == [1, 2]
        admin.create_topics([NewTopic("after-shrink", 1, 2)])["after-shrink"].result(30)
        cluster.wait_topics_known("after-shrink")
    finally:
        cluster.stop()


def test_two_of_three_replicas_down_refuses_acks_all_then_resumes(tmp_path):
    """Kill two of a partition's three replicas: acks=all is refused with
    NOT_ENOUGH_REPLICAS, and writes resume once one is back.

    Four brokers, because with three brokers that are all voters, killing two also
    loses the metadata quorum: nobody can shrink the ISR and produces just time out
    (Kafka in combined mode behaves the same). Here the replicas are {1,2,3} and the
    voters {0,1,2}, which keep their majority when 2 and 3 die."""
    import confluent_kafka
    from confluent_kafka import KafkaError

    cluster = BrokerCluster(tmp_path, 4).start()
    try:
        from kafka.admin import KafkaAdminClient
        from kafka.admin import NewTopic as KpTopic

        admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
        admin.create_topics([KpTopic("three-replicas", -1, -1,
                                     replica_assignments={0: [1, 2, 3]},
                                     topic_configs={"min.insync.replicas": "2"})])
        admin.close()
        producer = confluent_kafka.Producer({"bootstrap.servers": cluster.bootstrap,
                                             "acks": "all", "message.timeout.ms": 10_000,
                                             "retries": 0})  # show the broker's own answer
        outcomes: list = []

        def send(value: bytes):
            outcomes.clear()
            producer.produce("three-replicas", value, partition=0,
                             on_delivery=lambda err, msg: outcomes.append(err))
            producer.flush(30)
            return outcomes[0]

        assert send(b"all-up") is None
        cluster.brokers[2].kill()
        cluster.brokers[3].kill()
        deadline = time.monotonic() + 30
        while True:  # once the controller fences them, the ISR is {1}: below min.insync
            error = send(b"refused")
            if error is not None and error.code() == KafkaError.NOT_ENOUGH_REPLICAS:
                break  # refused before the append
            assert error is None or error.code() in (
                KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND, KafkaError.REQUEST_TIMED_OUT,
                KafkaError._MSG_TIMED_OUT), error
            assert time.monotonic() < deadline, f"never refused: {error}"
            time.sleep(0.5)
        cluster.brokers[3].start(timeout=60)
        deadline = time.monotonic() + 60
        while send(b"resumed") is not None:
            assert time.monotonic() < deadline, "writes did not resume"
            time.sleep(0.5)
        consumer = confluent_kafka.Consumer({"bootstrap.servers": cluster.bootstrap,
                                             "group.id": "check", "enable.auto.commit": False})
        consumer.assign([confluent_kafka.TopicPartition("three-replicas", 0, 0)])
        values, deadline = [], time.monotonic() + 30
        while b"resumed" not in values and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                values.append(msg.value())
        consumer.close()
        assert values[0] == b"all-up" and b"resumed" in values
    finally:
        cluster.stop()


def _snapshot_index(broker) -> int:
    """Index of the newest metadata snapshot in a broker's own metadata directory."""
    files = sorted((broker.data_dir / "__cluster_metadata").glob("snapshot-*.checkpoint"))
    return int(files[-1].name.split("-")[1]) if files else 0


def _topics_seen_by(broker) -> dict[str, int]:
    """topic -> leader of partition 0, from a Metadata request to this broker alone."""
    from kio.schema.errors import ErrorCode
    from kio.schema.metadata.v12 import MetadataRequest

    from tests.support.kafka_wire import WireClient
    with WireClient(broker.bootstrap) as client:
        meta = client.request(MetadataRequest(topics=None, allow_auto_topic_creation=False,
                                              include_topic_authorized_operations=False))
    return {t.name: t.partitions[0].leader_id for t in meta.topics
            if t.error_code == ErrorCode.none and t.partitions}


def test_metadata_snapshots_are_loaded_on_restart_and_sent_to_a_new_broker(tmp_path):
    """brook.metadata.snapshot.records=10 counts Raft log entries (controller commits): 60
    topics created 4 per CreateTopics request, i.e. 15 commits, make every voter snapshot
    and drop the log prefix. All three restart from their snapshots (kill -9), then a
    fourth broker, new to the cluster, can only catch up by installing one."""
    cluster = BrokerCluster(tmp_path, 4, voters=3, brook_metadata_snapshot_records="10")
    names = [f"snap-{i:02d}" for i in range(60)]
    try:
        for broker in cluster.brokers[:3]:
            broker.launch()
        for broker in cluster.brokers[:3]:
            broker.wait_ready(60)
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        for i in range(0, len(names), 4):  # one controller commit (one Raft entry) per request
            for future in admin.create_topics([NewTopic(n, 1, 1)
                                               for n in names[i:i + 4]]).values():
                future.result(60)
        deadline = time.monotonic() + 60
        while not all(_snapshot_index(b) > 0 for b in cluster.brokers[:3]):
            assert time.monotonic() < deadline, "no metadata snapshot was taken"
            time.sleep(0.5)
        before = _snapshot_index(cluster.brokers[0])

        for broker in cluster.brokers[:3]:
            broker.kill()
        for broker in cluster.brokers[:3]:
            broker.launch()
        for broker in cluster.brokers[:3]:
            broker.wait_ready(60)
        deadline = time.monotonic() + 60
        while not all(set(names) <= set(_topics_seen_by(b)) for b in cluster.brokers[:3]):
            assert time.monotonic() < deadline, "topics missing after the restart"
            time.sleep(0.5)
        assert _snapshot_index(cluster.brokers[0]) >= before

        newcomer = cluster.brokers[3]
        newcomer.start(timeout=60)
        deadline = time.monotonic() + 60
        while not (set(names) <= set(_topics_seen_by(newcomer))):
            assert time.monotonic() < deadline, "the new broker never learned the topics"
            time.sleep(0.5)
        # it holds a snapshot it did not take itself: nothing before that index was
        # left in any voter's log to send it
        assert _snapshot_index(newcomer) >= before
        leaders = _topics_seen_by(newcomer)
        assert all(leaders[n] in (0, 1, 2) for n in names)
    finally:
        cluster.stop()
