"""Operations on a running cluster (testing ladder, level 3; issue 5's proofs):
reassigning a partition to another set of brokers under load, and the replication
metrics on /metrics across a broker failure."""

from __future__ import annotations

import time
import urllib.request

import confluent_kafka
import pytest
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import TopicPartition as KTopicPartition
from kafka.admin import KafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families

from tests.component.test_cluster import TOPIC, Writer
from tests.support.cluster import (
    BrokerCluster,
    read_to_high_watermark,
    replicas_identical,
    wire_topics,
)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(180)

SIGSTOP, SIGCONT = 19, 18


def test_reassignment_to_other_brokers_under_load(tmp_path):
    cluster = BrokerCluster(tmp_path, 4).start()  # brokers 0-2 vote, 3 observes
    try:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(TOPIC, 1, replica_assignment=[[0, 1, 2]], config={
            "min.insync.replicas": "2"})])[TOPIC].result(20)
        cluster.wait_topics_known(TOPIC)
        writer = Writer(cluster.bootstrap)
        writer.start()
        kadmin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap.split(","),
                                  request_timeout_ms=10_000)
        part = KTopicPartition(TOPIC, 0)
        try:
            wait_until(lambda: len(writer.acked) > 500, 30, "the writer to get going")
            assert kadmin.list_partition_reassignments() == {}  # finds the controller
            # Hold the new replica back a moment so the move is seen in progress.
            cluster.brokers[3].proc.send_signal(SIGSTOP)
            try:
                answer = kadmin.alter_partition_reassignments({part: [1, 2, 3]})
                assert answer.get(part) is None, answer
                ongoing = kadmin.list_partition_reassignments([part])
            finally:
                cluster.brokers[3].proc.send_signal(SIGCONT)
            assert part in ongoing, ongoing
            assert ongoing[part]["adding_replicas"] == [3]
            assert ongoing[part]["removing_replicas"] == [0]
            moved_at = time.monotonic()
            wait_until(lambda: not kadmin.list_partition_reassignments([part]), 40,
                       "the reassignment to finish", 0.5)
            done_in = time.monotonic() - moved_at
            md = admin.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions[0]
            assert sorted(md.replicas) == [1, 2, 3] and md.leader in (1, 2, 3)
            acked_at_switch = len(writer.acked)
            wait_until(lambda: len(writer.acked) > acked_at_switch + 300, 30,
                       "writes after the switch")
        finally:
            writer.stopping.set()
            writer.join(90)
            kadmin.close()
        print(f"\nreassignment {{0,1,2}} -> {{1,2,3}} finished {done_in:.1f}s after broker 3 "
              f"resumed; {len(writer.acked)} records acknowledged under load")
        assert not writer.failed, writer.failed[:3]
        acked = writer.acked
        seen = read_to_high_watermark(cluster.bootstrap, TOPIC, 1)
        values = [v for _, _, v in sorted(seen)]
        assert len(values) == len(set(values)), "a record was stored twice"
        assert set(values) >= {v for _, _, v in acked}, "an acknowledged record was lost"
        # Broker 0's copy is gone; the new replica set stores byte-identical batches up
        # to the high watermark.
        wait_until(lambda: not (cluster.brokers[0].data_dir / f"{TOPIC}-0").exists(), 20,
                   "broker 0 to delete its replica")
        hw, _ = replicas_identical(cluster, TOPIC, 0, brokers=[1, 2, 3], timeout=30)
        assert [o for _, o, _ in sorted(seen)] == list(range(hw))
    finally:
        cluster.stop()


def scrape(broker) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{broker.metrics_port}/metrics",
                                  timeout=5).read().decode()
    return {s.name: s.value for family in text_string_to_metric_families(text)
            for s in family.samples if not s.labels}


REPLICATION_METRICS = ("brook_under_replicated_partitions", "brook_under_min_isr_partitions",
                       "brook_offline_partitions", "brook_active_controller",
                       "brook_leader_count", "brook_isr_shrinks_total",
                       "brook_isr_expands_total")


def test_replication_metrics_across_a_broker_kill(tmp_path):
    cluster = BrokerCluster(tmp_path, 3).start()
    try:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        controller = admin.describe_cluster(request_timeout=10).result(15).controller.id
        victim = (controller + 1) % 3
        futures = admin.create_topics([
            NewTopic("spread", 3, 3, config={"min.insync.replicas": "2"}),
            NewTopic("strict", 1, replica_assignment=[[controller, victim, (victim + 1) % 3]],
                     config={"min.insync.replicas": "3"}),
            NewTopic("solo", 1, replica_assignment=[[victim]])])
        for future in futures.values():
            future.result(20)
        cluster.wait_topics_known(*futures)

        def totals(brokers):
            samples = [scrape(b) for b in brokers]
            return {name: sum(s.get(name, 0) for s in samples) for name in REPLICATION_METRICS}

        healthy = wait_until(lambda: (t := totals(cluster.brokers))["brook_leader_count"] == 5
                             and t, 20, "5 led partitions")
        assert healthy["brook_under_replicated_partitions"] == 0
        assert healthy["brook_under_min_isr_partitions"] == 0
        assert healthy["brook_offline_partitions"] == 0
        assert healthy["brook_active_controller"] == 1
        assert scrape(cluster.brokers[controller])["brook_active_controller"] == 1

        cluster.brokers[victim].kill()
        survivors = [b for i, b in enumerate(cluster.brokers) if i != victim]
        # spread (3) and strict (1) run on two replicas; solo has no leader left.
        degraded = wait_until(
            lambda: (t := totals(survivors))["brook_under_replicated_partitions"] == 4
            and t["brook_offline_partitions"] == 1 and t, 30, "the metrics to show the loss")
        print(f"\nafter killing broker {victim}: {degraded}")
        assert degraded["brook_under_min_isr_partitions"] == 1  # strict needs all three
        assert degraded["brook_leader_count"] == 4
        assert degraded["brook_active_controller"] == 1
        assert degraded["brook_isr_shrinks_total"] >= 1

        cluster.brokers[victim].start(timeout=60)
        recovered = wait_until(
            lambda: (t := totals(cluster.brokers))["brook_under_replicated_partitions"] == 0
            and t["brook_offline_partitions"] == 0 and t["brook_leader_count"] == 5 and t, 40,
            "the metrics to recover")
        print(f"after restarting it: {recovered}")
        assert recovered["brook_under_min_isr_partitions"] == 0
        assert recovered["brook_isr_expands_total"] >= 1
        assert recovered["brook_active_controller"] == 1
    finally:
        cluster.stop()


def test_metrics_families_present(tmp_path):
    """A single broker exposes the replication gauges too (all partitions led here)."""
    cluster = BrokerCluster(tmp_path, 1).start()
    try:
        producer = confluent_kafka.Producer({"bootstrap.servers": cluster.bootstrap})
        producer.produce("one", b"x")
        producer.flush(20)
        samples = wait_until(lambda: (s := scrape(cluster.brokers[0])).get(
            "brook_leader_count", 0) >= 1 and s, 20, "a led partition")
        assert all(name in samples for name in REPLICATION_METRICS)
        assert samples["brook_active_controller"] == 1
        assert samples["brook_under_replicated_partitions"] == 0
    finally:
        cluster.stop()


def _log_bytes(broker, topic: str, partition: int = 0) -> int:
    directory = broker.data_dir / f"{topic}-{partition}"
    return sum(f.stat().st_size for f in directory.glob("*.log")) if directory.exists() else 0


def test_reassignment_copies_at_the_throttled_rate_until_the_throttle_is_lifted(tmp_path):
    """Kafka's reassignment throttle: dynamic broker rates plus the topic's throttled
    replica lists. The new replica copies at most about the set rate; in-sync replicas
    are never held back; lifting the throttle lets the copy finish."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    cluster = BrokerCluster(tmp_path, 2).start()
    try:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic("moving", 1, replica_assignment=[[0]])])["moving"].result(20)
        cluster.wait_topics_known("moving")
        producer = confluent_kafka.Producer({"bootstrap.servers": cluster.bootstrap,
                                             "linger.ms": 20})
        for i in range(4000):
            producer.produce("moving", value=b"%05d" % i + b"x" * 995)
        assert producer.flush(30) == 0
        total = _log_bytes(cluster.brokers[0], "moving")
        assert total > 4_000_000
        rate = 200_000

        def alter(resource, *entries):
            futures = admin.incremental_alter_configs([ConfigResource(
                resource[0], resource[1], incremental_configs=list(entries))])
            for future in futures.values():
                future.result(20)

        # the leader's sending and the new replica's fetching, each on its own broker
        sender, receiver = (ConfigResource.Type.BROKER, "0"), (ConfigResource.Type.BROKER, "1")
        alter(sender, ConfigEntry("leader.replication.throttled.rate", str(rate),
                                  incremental_operation=AlterConfigOpType.SET))
        alter(receiver, ConfigEntry("follower.replication.throttled.rate", str(rate),
                                    incremental_operation=AlterConfigOpType.SET))
        alter((ConfigResource.Type.TOPIC, "moving"),
              ConfigEntry("leader.replication.throttled.replicas", "0:0",
                          incremental_operation=AlterConfigOpType.SET),
              ConfigEntry("follower.replication.throttled.replicas", "0:1",
                          incremental_operation=AlterConfigOpType.SET))
        described = admin.describe_configs([ConfigResource(ConfigResource.Type.BROKER, "1")])
        entry = next(iter(described.values())).result(20)["follower.replication.throttled.rate"]
        assert entry.value == str(rate) and not entry.is_read_only
        assert entry.source == confluent_kafka.admin.ConfigSource.DYNAMIC_BROKER_CONFIG.value

        kadmin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap.split(","),
                                  request_timeout_ms=10_000)
        part = KTopicPartition("moving", 0)
        started = time.monotonic()
        assert kadmin.alter_partition_reassignments({part: [0, 1]}).get(part) is None
        time.sleep(2)
        copied = _log_bytes(cluster.brokers[1], "moving")
        elapsed = time.monotonic() - started
        # at most the rate over the elapsed time, one second's burst and one response
        # (1 MiB per partition) that went out before the quota noticed it
        assert copied <= rate * (elapsed + 1) + (1 << 20), (copied, elapsed)
        assert kadmin.list_partition_reassignments([part]), "finished despite the throttle"

        # a bad rate is refused with the broker's reason, and changes nothing
        with pytest.raises(confluent_kafka.KafkaException, match="bytes per second"):
            alter(receiver, ConfigEntry("follower.replication.throttled.rate", "fast",
                                        incremental_operation=AlterConfigOpType.SET))
        with pytest.raises(confluent_kafka.KafkaException, match="cannot be changed at runtime"):
            alter(receiver, ConfigEntry("log.retention.ms", "1000",
                                        incremental_operation=AlterConfigOpType.SET))

        alter(sender, ConfigEntry("leader.replication.throttled.rate", None,
                                  incremental_operation=AlterConfigOpType.DELETE))
        alter(receiver, ConfigEntry("follower.replication.throttled.rate", None,
                                    incremental_operation=AlterConfigOpType.DELETE))
        wait_until(lambda: not kadmin.list_partition_reassignments([part]), 40,
                   "the reassignment to finish once the throttle is lifted", 0.5)
        assert _log_bytes(cluster.brokers[1], "moving") == total
        print(f"\nthrottled at {rate:,} B/s: {copied:,} of {total:,} bytes copied in "
              f"{elapsed:.1f}s; the rest in seconds once lifted")
    finally:
        cluster.stop()


def _leader_and_isr(admin, topic: str) -> tuple[int, list[int]]:
    """(leader, ISR) of partition 0, or (-1, []) while the answering broker does not
    know the topic yet: brokers apply a new topic's records a moment after CreateTopics
    returns, as in Kafka, so a broker may still say UNKNOWN_TOPIC_OR_PARTITION."""
    found = admin.list_topics(topic, timeout=10).topics[topic]
    if found.error is not None or 0 not in found.partitions:
        return -1, []
    md = found.partitions[0]
    return md.leader, sorted(md.isrs)


def _move_leadership_off_broker_0(cluster, admin, topic: str) -> None:
    """Kill the preferred leader 0, wait for another leader, restart 0 and wait until it
    is back in the ISR (as a follower)."""
    admin.create_topics([NewTopic(topic, 1, replica_assignment=[[0, 1, 2]])])[topic].result(20)
    cluster.wait_topics_known(topic)
    wait_until(lambda: _leader_and_isr(admin, topic) == (0, [0, 1, 2]), 30, "leader 0")
    cluster.brokers[0].kill()
    wait_until(lambda: _leader_and_isr(admin, topic)[0] in (1, 2), 30, "a new leader")
    cluster.brokers[0].start(timeout=60)
    wait_until(lambda: _leader_and_isr(admin, topic)[1] == [0, 1, 2], 40, "0 in the ISR")


def test_preferred_leader_election_moves_leadership_back(tmp_path):
    """ElectLeaders (PREFERRED) through confluent-kafka's AdminClient; the automatic
    rebalance is off, so only the election can give broker 0 its leadership back."""
    from confluent_kafka import ElectionType, TopicPartition

    cluster = BrokerCluster(tmp_path, 3, auto_leader_rebalance_enable="false").start()
    try:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        _move_leadership_off_broker_0(cluster, admin, "preferred")
        assert _leader_and_isr(admin, "preferred")[0] != 0
        partition = TopicPartition("preferred", 0)
        result = admin.elect_leaders(ElectionType.PREFERRED, [partition]).result(30)
        assert result[partition] is None, result
        wait_until(lambda: _leader_and_isr(admin, "preferred")[0] == 0, 20,
                   "the preferred replica to lead")
        # already led by its preferred replica: Kafka's ELECTION_NOT_NEEDED
        again = admin.elect_leaders(ElectionType.PREFERRED, [partition]).result(30)
        assert again[partition] is not None
        assert again[partition].code() == confluent_kafka.KafkaError.ELECTION_NOT_NEEDED
    finally:
        cluster.stop()


def test_auto_leader_rebalance_moves_leadership_back(tmp_path):
    cluster = BrokerCluster(tmp_path, 3, leader_imbalance_check_interval_seconds="2").start()
    try:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        _move_leadership_off_broker_0(cluster, admin, "rebalanced")
        wait_until(lambda: _leader_and_isr(admin, "rebalanced")[0] == 0, 40,
                   "the automatic rebalance to hand leadership back to broker 0")
    finally:
        cluster.stop()


def _wire_partitions(broker, topic: str) -> list:
    """The topic's partitions from a Metadata (v12) request to one broker."""
    return sorted(wire_topics(broker, topic)[0].partitions, key=lambda p: p.partition_index)


def test_rack_aware_placement_and_offline_replicas(tmp_path):
    """broker.rack a, a, b, c: every partition of an RF=3 topic gets one replica per rack
    (so one on broker 3, the only one in rack c). While broker 3 is down, Metadata lists
    it among each partition's offline replicas; once it is back, none are offline."""
    racks = {0: "a", 1: "a", 2: "b", 3: "c"}
    cluster = BrokerCluster(tmp_path, 4)  # 0-2 vote, 3 observes
    for node, rack in racks.items():
        cluster.brokers[node].overrides["broker.rack"] = rack
    cluster.start()
    try:
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        nodes = admin.describe_cluster(request_timeout=10).result(15).nodes
        assert {n.id: n.rack for n in nodes} == racks
        admin.create_topics([NewTopic("racked", 6, 3)])["racked"].result(20)
        cluster.wait_topics_known("racked")
        partitions = _wire_partitions(cluster.brokers[0], "racked")
        assert len(partitions) == 6, partitions
        for p in partitions:
            assert sorted(racks[b] for b in p.replica_nodes) == ["a", "b", "c"], p
            assert tuple(p.offline_replicas) == ()

        def every_partition(check) -> bool:  # all six, never an empty list
            found = _wire_partitions(cluster.brokers[0], "racked")
            return len(found) == 6 and all(check(p) for p in found)

        cluster.brokers[3].kill()  # rack c's only broker: a replica of every partition
        wait_until(lambda: every_partition(lambda p: tuple(p.offline_replicas) == (3,)
                                           and 3 not in p.isr_nodes),
                   30, "broker 3 listed as an offline replica")
        cluster.brokers[3].start(timeout=60)
        wait_until(lambda: every_partition(lambda p: tuple(p.offline_replicas) == ()
                                           and 3 in p.isr_nodes),
                   40, "no offline replicas once broker 3 is back")
    finally:
        cluster.stop()
