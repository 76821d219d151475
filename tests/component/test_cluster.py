"""Three broker processes on loopback (DESIGN.md testing ladder, level 3).

Faults are real (SIGKILL, SIGSTOP) and the checks run on recorded histories: what
the producer was told was acknowledged, and what consumers and the replicas' own
logs hold afterwards.
"""

from __future__ import annotations

import threading
import time

import confluent_kafka
import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import AdminClient, NewTopic

from tests.support.cluster import BrokerCluster, read_to_high_watermark, replicas_identical
from tests.support.waiting import wait_until

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
    cluster.wait_topics_known(name)
    return admin


def leader_of(admin, topic, partition=0) -> int:
    md = admin.list_topics(topic, timeout=10)
    return md.topics[topic].partitions[partition].leader


def isr_full(admin, topic, size=3, partition=0) -> bool:
    md = admin.list_topics(topic, timeout=10).topics[topic].partitions[partition]
    return len(md.isrs) == size


def check_history(acked, seen, prefix: bytes = b"") -> None:
    """Every acknowledged (partition, offset, value) is stored exactly there, each value
    once, and one producer's values are in the order it sent them."""
    mine = [(p, o, v) for p, o, v in sorted(seen) if v.startswith(prefix)
            and v[len(prefix):].isdigit()]
    values = [v for _, _, v in mine]
    assert len(values) == len(set(values)), f"a {prefix!r} record was stored twice"
    assert set(acked) <= set(mine), f"an acknowledged {prefix!r} record was lost or moved"
    assert values == sorted(values), f"{prefix!r} records out of order"


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


class JavaWriter(threading.Thread):
    """The Java client (acks=all, enable.idempotence=true set explicitly) writing numbered
    records in paced calls of CHUNK until stopped; each call's acks are kept."""

    CHUNK = 1000

    def __init__(self, driver, bootstrap: str) -> None:
        super().__init__(daemon=True)
        self.driver = driver
        self.bootstrap = bootstrap
        self.acked: list[tuple[int, int, bytes]] = []
        self.failed: list[Exception] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        i = 0
        while not self.stopping.is_set() and not self.failed:
            values = [b"j%08d" % n for n in range(i, i + self.CHUNK)]
            records = [{"key": None, "value": v, "headers": [], "timestamp_ms": None,
                        "partition": 0} for v in values]
            try:
                acks = self.driver.produce(self.bootstrap, TOPIC, records, per_second=500,
                                           durable=True)
            except Exception as exc:  # noqa: BLE001 - the test reports it
                self.failed.append(exc)
                return
            self.acked += [(p, o, v) for (p, o), v in zip(acks, values, strict=True)]
            i += self.CHUNK


def test_leader_kills_lose_no_acknowledged_record(cluster):
    """confluent-kafka and the Java client, both idempotent with acks=all, write to one
    RF=3 min.insync.replicas=2 partition while its leader is kill -9ed and restarted,
    three times. Failover times are measured by bench/failover.py; here only the
    history is checked."""
    from tests.clients import get_driver
    admin = create(cluster)
    writer = Writer(cluster.bootstrap)
    java = get_driver("java")
    if java.unavailable_reason():
        pytest.skip(java.unavailable_reason())
    jwriter = JavaWriter(java, cluster.bootstrap)
    writer.start()
    jwriter.start()
    try:
        wait_until(lambda: len(writer.acked) > 200 and len(jwriter.acked) > 0, 60,
                   "both producers to be acknowledged")
        for _round in range(3):
            victim = leader_of(admin, TOPIC)
            assert victim >= 0
            killed_at = time.monotonic()
            java_before = len(jwriter.acked)
            cluster.brokers[victim].kill()
            wait_until(lambda t=killed_at: writer.ack_times and writer.ack_times[-1] > t, 60,
                       "an acks=all write after the failover", 0.05)
            cluster.brokers[victim].start(timeout=60)
            wait_until(lambda: isr_full(admin, TOPIC), 60, "the restarted broker in the ISR")
            wait_until(lambda n=java_before: len(jwriter.acked) > n or jwriter.failed, 60,
                       "the Java producer to be acknowledged after the kill")
    finally:
        writer.stopping.set()
        jwriter.stopping.set()
        writer.join(90)
        jwriter.join(120)
        java.close()
    assert not writer.failed, writer.failed[:3]
    assert not jwriter.failed, jwriter.failed[:3]
    assert len(writer.acked) > 1000 and len(jwriter.acked) >= 3 * JavaWriter.CHUNK
    # All three replicas store byte-identical batches up to the high watermark.
    hw, _ = replicas_identical(cluster, TOPIC)
    seen = read_to_high_watermark(cluster.bootstrap, TOPIC, 1)
    assert [o for _, o, _ in sorted(seen)] == list(range(hw)), "a gap below the high watermark"
    check_history(writer.acked, seen)
    check_history(jwriter.acked, seen, b"j")


def test_acks_all_refused_below_min_isr_and_resumes(cluster):
    """One follower killed (still two in the ISR: writes go on), the other frozen: the
    ISR falls below min.insync.replicas=2 and acks=all is refused or times out.

    Not "kill two of three": these three brokers are also the three metadata voters,
    so killing two loses the quorum too, nobody can shrink the ISR and produces only
    time out (as in Kafka's combined mode). test_cluster_quorum.py kills two of three
    replicas on four brokers and sees NOT_ENOUGH_REPLICAS."""
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
    values = [v for _, _, v in read_to_high_watermark(cluster.bootstrap, TOPIC, 1)]
    assert b"before" in values and b"with-two" in values and b"resumed" in values
