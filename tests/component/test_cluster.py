"""Three broker processes on loopback (DESIGN.md testing ladder, level 3).

Faults are real (SIGKILL, SIGSTOP) and the checks run on recorded histories: what
the producer was told was acknowledged, and what consumers and the replicas' own
logs hold afterwards.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import confluent_kafka
import pytest
from confluent_kafka import KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from brook.broker.records import decode_records, scan_valid_batches
from tests.support.cluster import BrokerCluster

pytestmark = pytest.mark.timeout(300)

TOPIC = "replicated"


@pytest.fixture
def cluster(tmp_path):
    brokers = BrokerCluster(tmp_path, 3).start()
    yield brokers
    brokers.stop()


def create(cluster, name=TOPIC, partitions=1, rf=3, min_isr=2):
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic(name, partitions, rf, config={
        "min.insync.replicas": str(min_isr)})])[name].result(20)
    return admin


def leader_of(admin, topic, partition=0) -> int:
    md = admin.list_topics(topic, timeout=10)
    return md.topics[topic].partitions[partition].leader


def read_all(bootstrap, topic, partitions, expected, timeout=60):
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": "check",
                                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING)
                     for p in range(partitions)])
    seen = []
    deadline = time.monotonic() + timeout
    while len(seen) < expected and time.monotonic() < deadline:
        for msg in consumer.consume(1000, 0.5):
            if not msg.error():
                seen.append((msg.partition(), msg.offset(), msg.value()))
    consumer.close()
    return seen


def replica_records(data_dir: Path, topic: str, partition: int, upto: int) -> list:
    """(offset, value) of every record below `upto` in a replica's own segment files."""
    found = []
    for segment in sorted((data_dir / f"{topic}-{partition}").glob("*.log")):
        data = segment.read_bytes()
        for position, header in scan_valid_batches(data):
            for record in decode_records(data[position:position + header.size]):
                if record.offset < upto:
                    found.append((record.offset, record.value))
    return found


class Writer(threading.Thread):
    """An idempotent acks=all producer writing numbered records until stopped."""

    def __init__(self, bootstrap: str) -> None:
        super().__init__(daemon=True)
        self.producer = confluent_kafka.Producer({
            "bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
            "linger.ms": 2, "message.timeout.ms": 60_000})
        self.acked: list[tuple[int, int, bytes]] = []
        self.ack_times: list[float] = []
        self.failed: list[KafkaError] = []
        self.stopping = threading.Event()

    def _delivered(self, err, msg) -> None:
        if err is None:
            self.acked.append((msg.partition(), msg.offset(), msg.value()))
            self.ack_times.append(time.monotonic())
        else:
            self.failed.append(err)

    def run(self) -> None:
        i = 0
        while not self.stopping.is_set():
            try:
                self.producer.produce(TOPIC, value=b"%08d" % i, on_delivery=self._delivered)
                i += 1
            except BufferError:
                pass
            self.producer.poll(0.001 if i % 50 else 0.01)
        self.producer.flush(60)


def test_leader_kills_lose_no_acknowledged_record(cluster):
    admin = create(cluster)
    writer = Writer(cluster.bootstrap)
    writer.start()
    failovers = []
    try:
        time.sleep(2)
        for _round in range(3):
            victim = leader_of(admin, TOPIC)
            assert victim >= 0
            acked_before = len(writer.acked)
            killed_at = time.monotonic()
            cluster.brokers[victim].kill()
            deadline = time.monotonic() + 30
            while len(writer.acked) == acked_before or writer.ack_times[-1] < killed_at:
                assert time.monotonic() < deadline, "no acks=all write succeeded after failover"
                time.sleep(0.05)
            first_ack = next(t for t in writer.ack_times if t > killed_at)
            failovers.append(first_ack - killed_at)
            cluster.brokers[victim].start(timeout=60)
            time.sleep(3)  # let the restarted broker catch up and rejoin the ISR
    finally:
        writer.stopping.set()
        writer.join(90)
    print(f"\nfailover (leader kill -> first acks=all ack): "
          f"{', '.join(f'{f:.2f}s' for f in failovers)}")
    assert not writer.failed, writer.failed[:3]
    acked = writer.acked
    assert len(acked) > 1000
    seen = read_all(cluster.bootstrap, TOPIC, 1, len(acked))
    values = [v for _, _, v in sorted(seen)]
    assert len(values) == len(set(values)), "a record was stored twice"
    assert set(values) >= {v for _, _, v in acked}, "an acknowledged record was lost"
    assert values == sorted(values), "records out of order"
    # All three replicas hold the same records up to the high watermark.
    hw = max(o for _, o, _ in seen) + 1
    time.sleep(2)
    copies = [replica_records(b.data_dir, TOPIC, 0, hw) for b in cluster.brokers]
    assert copies[0] == copies[1] == copies[2]


def test_acks_all_refused_below_min_isr_and_resumes(cluster):
    admin = create(cluster)
    leader = leader_of(admin, TOPIC)
    followers = [i for i in range(3) if i != leader]
    producer = confluent_kafka.Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all",
                                         "message.timeout.ms": 8000, "retries": 0})
    results = []
    producer.produce(TOPIC, b"before", on_delivery=lambda e, m: results.append(e))
    producer.flush(20)
    assert results == [None]
    cluster.brokers[followers[0]].kill()
    time.sleep(5)  # session timeout: the controller fences it and shrinks the ISR
    results.clear()
    producer.produce(TOPIC, b"with-two", on_delivery=lambda e, m: results.append(e))
    producer.flush(20)
    assert results == [None], "min.insync.replicas=2 is still met by two brokers"
    # Freeze the other follower: it stops fetching, the leader drops it from the ISR.
    cluster.brokers[followers[1]].proc.send_signal(19)  # SIGSTOP
    try:
        time.sleep(6)
        results.clear()
        producer.produce(TOPIC, b"alone", on_delivery=lambda e, m: results.append(e))
        producer.flush(20)
        assert results and results[0] is not None
        assert results[0].code() in (KafkaError.NOT_ENOUGH_REPLICAS,
                                     KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
                                     KafkaError._MSG_TIMED_OUT, KafkaError.REQUEST_TIMED_OUT)
    finally:
        cluster.brokers[followers[1]].proc.send_signal(18)  # SIGCONT
    deadline = time.monotonic() + 40
    while True:
        results.clear()
        producer.produce(TOPIC, b"resumed", on_delivery=lambda e, m: results.append(e))
        producer.flush(20)
        if results == [None]:
            break
        assert time.monotonic() < deadline, f"writes never resumed: {results}"
        time.sleep(1)
    values = [v for _, _, v in read_all(cluster.bootstrap, TOPIC, 1, 3)]
    assert b"before" in values and b"with-two" in values and b"resumed" in values
