"""Faults in a three-broker cluster (DESIGN.md testing ladder, level 3; issue 5's proofs).

A leader cut off by SIGSTOP, the active controller killed while topics are created, a
group coordinator's broker killed, and the Java client's idempotent producer across a
leader kill. Checks run on recorded histories: what the clients were told, and what
the consumers and the replicas' own logs hold afterwards.
"""

from __future__ import annotations

import contextlib
import threading
import time

import confluent_kafka
import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from brook.broker.records import decode_records
from tests.component.test_cluster import create, leader_of
from tests.support.cluster import BrokerCluster, high_watermark, replicas_identical
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(180)

SIGSTOP, SIGCONT = 19, 18


@pytest.fixture
def cluster(tmp_path):
    brokers = BrokerCluster(tmp_path, 3, offsets_topic_num_partitions="3",
                            offsets_topic_replication_factor="3").start()
    yield brokers
    for broker in brokers.brokers:
        if broker.alive():
            broker.proc.send_signal(SIGCONT)
    brokers.stop()


def replicas_converge(cluster, topic: str, partition: int, min_hw: int,
                      timeout: float = 40) -> list:
    """Wait until every replica stores byte-identical batches up to the high watermark
    (at least min_hw: a resumed old leader answers with its stale one until it learns);
    returns their (offset, value) records."""
    hw, batches = replicas_identical(cluster, topic, partition, min_hw=min_hw,
                                     timeout=timeout)
    return [(r.offset, r.value) for batch in batches for r in decode_records(batch)
            if r.offset < hw]


def produce_all(producer, topic: str, values, timeout: float = 30) -> list:
    """Produce values, wait for each delivery; returns the (error, offset) of each."""
    results: list = []
    for value in values:
        producer.produce(topic, value=value, partition=0,
                         on_delivery=lambda e, m: results.append((e, m.offset())))
    producer.flush(timeout)
    return results


def test_partitioned_leader_loses_its_unacknowledged_tail(cluster):
    admin = create(cluster)
    safe = confluent_kafka.Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all",
                                     "enable.idempotence": True, "linger.ms": 1,
                                     "message.timeout.ms": 60_000,
                                     # a frozen leader keeps its connections open: give up
                                     # on requests to it soon (librdkafka's default is 60 s)
                                     "socket.timeout.ms": 3000})
    results = produce_all(safe, "replicated", [b"safe-%03d" % i for i in range(50)])
    assert all(e is None for e, _ in results)
    leader = leader_of(admin, "replicated")
    followers = [b for i, b in enumerate(cluster.brokers) if i != leader]
    old = cluster.brokers[leader]
    unsafe = confluent_kafka.Producer({"bootstrap.servers": old.bootstrap, "acks": 1,
                                       "retries": 0, "message.timeout.ms": 5000})
    # Freeze the followers; their pending long-poll fetches (500 ms) answer empty
    # before the acks=1 writes, so the tail exists on the leader only.
    for f in followers:
        f.proc.send_signal(SIGSTOP)
    try:
        time.sleep(0.8)
        tail = produce_all(unsafe, "replicated", [b"tail-%d" % i for i in range(5)], 5)
        old.proc.send_signal(SIGSTOP)
    finally:
        for f in followers:
            f.proc.send_signal(SIGCONT)
    stopped_at = time.monotonic()
    assert [e for e, _ in tail] == [None] * 5, tail
    assert [o for _, o in tail] == list(range(50, 55))
    try:
        # Writes continue on a new leader elected from the ISR. One record at a time,
        # each waited for until its delivery report: a failed one is of unknown outcome
        # (it may still be written), so every attempt carries its own value.
        first_ack = None
        acked, failed = [], []
        deadline = time.monotonic() + 45
        for attempt in range(1000):
            if len(acked) == 20:
                break
            value = b"after-%03d-%d" % (len(acked), attempt)
            reports: list = []
            safe.produce("replicated", value=value, partition=0,
                         on_delivery=lambda e, m, reports=reports: reports.append(e))
            while not reports:
                assert time.monotonic() < deadline, \
                    f"no acks=all write after the partition {failed}"
                safe.poll(0.2)
            if reports[0] is None:
                first_ack = first_ack or time.monotonic()
                acked.append(value)
            else:
                failed.append((value, reports[0]))
        failover = first_ack - stopped_at
        new_leader = leader_of(AdminClient({"bootstrap.servers": followers[0].bootstrap}),
                               "replicated")
        assert new_leader not in (leader, -1)
    finally:
        old.proc.send_signal(SIGCONT)
    print(f"\nfailover (leader SIGSTOP -> first acks=all ack): {failover:.2f}s")
    records = replicas_converge(cluster, "replicated", 0, 70)
    values = [v for _, v in records]
    assert not any(v.startswith(b"tail-") for v in values), "the old leader's tail survived"
    assert values[:50] == [b"safe-%03d" % i for i in range(50)]
    after = values[50:]
    assert len(after) == len(set(after)), "a write was appended twice"
    assert [v for v in after if v in acked] == acked, "acknowledged writes lost or reordered"
    assert set(after) - set(acked) <= {v for v, _ in failed}, "records nobody produced"


def controller_of(admin) -> int:
    return admin.describe_cluster(request_timeout=10).result(15).controller.id


def test_controller_failover_while_creating_topics(cluster):
    # librdkafka learns the controller only from metadata, which it refreshes rarely
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap,
                         "topic.metadata.refresh.interval.ms": 500})
    victim = controller_of(admin)
    created, failed = [], []
    started = time.monotonic()
    killer = threading.Timer(0.02, cluster.brokers[victim].kill)
    for i in range(24):
        name = f"ct-{i:02d}"
        if i == 8:
            killer.start()  # strikes while this create is in flight
            killed_at = time.monotonic() - started
        try:
            admin.create_topics([NewTopic(name, 2, 2)],
                                request_timeout=5, operation_timeout=5)[name].result(10)
            created.append((name, time.monotonic() - started))
        except KafkaException as exc:
            failed.append((name, exc.args[0].code(), time.monotonic() - started))
    killer.join()
    print(f"\ncontroller {victim} killed {killed_at:.1f}s in; created {len(created)}, failed {failed}; "
          f"last create ended {time.monotonic() - started:.1f}s in")
    created = [n for n, _ in created]
    assert len(created) >= 16, failed
    new_controller = wait_until(lambda: (c := controller_of(admin)) not in (victim, -1) and [c],
                                20, "a new controller")[0]  # (a list: broker 0 is falsy)
    assert new_controller != victim
    # Every create retried: the ones that succeeded (or committed unheard) already exist.
    for i in range(24):
        name = f"ct-{i:02d}"
        try:
            admin.create_topics([NewTopic(name, 2, 2)], request_timeout=8)[name].result(15)
            assert name not in created, f"{name} was created twice"
        except KafkaException as exc:
            assert exc.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS, (name, exc)
    cluster.brokers[victim].start(timeout=60)
    # Every broker sees each topic once, with the same id and all its partitions.
    ids = {}
    for broker in cluster.brokers:
        view = AdminClient({"bootstrap.servers": broker.bootstrap})

        def complete(view=view):
            md = view.list_topics(timeout=10).topics
            names = [n for n in md if n.startswith("ct-")]
            return md if len(names) == 24 and all(
                len(md[n].partitions) == 2 and all(p.leader >= 0 for p in
                                                   md[n].partitions.values())
                for n in names) else None
        wait_until(complete, 30, f"broker {broker.bootstrap} to see all topics")
        from confluent_kafka import TopicCollection
        described = view.describe_topics(TopicCollection([f"ct-{i:02d}" for i in range(24)]),
                                         request_timeout=10)
        for name, future in described.items():
            desc = future.result(15)
            ids.setdefault(name, set()).add(str(desc.topic_id))
    assert all(len(v) == 1 for v in ids.values()), ids
    assert len({next(iter(v)) for v in ids.values()}) == 24


def test_group_survives_coordinator_death(cluster):
    admin = create(cluster, "grouped", partitions=3)
    producer = confluent_kafka.Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all",
                                         "enable.idempotence": True})
    for i in range(300):
        producer.produce("grouped", value=b"%05d" % i, partition=i % 3)
    assert producer.flush(30) == 0

    def consumer():
        c = confluent_kafka.Consumer({
            "bootstrap.servers": cluster.bootstrap, "group.id": "survivors",
            "enable.auto.commit": False, "auto.offset.reset": "earliest",
            "session.timeout.ms": 10_000, "heartbeat.interval.ms": 500})
        c.subscribe(["grouped"])
        return c

    def consume(c, n, timeout=60):
        got = []
        deadline = time.monotonic() + timeout
        while len(got) < n and time.monotonic() < deadline:
            msg = c.poll(0.5)
            if msg is None or msg.error():
                continue
            got.append(msg.value())
            while True:  # commit each record; retried across a coordinator move
                try:
                    c.commit(msg, asynchronous=False)
                    break
                except KafkaException:
                    assert time.monotonic() < deadline, "commits never resumed"
                    time.sleep(0.2)
        return got

    first = consumer()
    seen = consume(first, 150)
    assert len(seen) == 150
    group = admin.describe_consumer_groups(["survivors"])["survivors"].result(15)
    victim = group.coordinator.id
    killed_at = time.monotonic()
    cluster.brokers[victim].kill()
    seen += consume(first, 150)
    print(f"\ncoordinator {victim} killed; the rest consumed and committed in "
          f"{time.monotonic() - killed_at:.1f}s")
    assert len(seen) == 300 and len(set(seen)) == 300, "records re-read or missing"
    first.close()
    # A new member reads the committed offsets from the new coordinator.
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    group = admin.describe_consumer_groups(["survivors"])["survivors"].result(15)
    assert group.coordinator.id != victim
    second = consumer()
    committed = second.committed([TopicPartition("grouped", p) for p in range(3)], timeout=15)
    assert sorted(tp.offset for tp in committed) == [100, 100, 100]
    for i in range(300, 330):
        producer.produce("grouped", value=b"%05d" % i, partition=i % 3)
    assert producer.flush(30) == 0
    more = consume(second, 30)
    second.close()
    assert sorted(more) == [b"%05d" % i for i in range(300, 330)]


@contextlib.contextmanager
def leader_behind_stall_proxy(tmp_path, topic: str, **topic_config):
    """Three brokers; broker 0's Kafka listener is reached through a StallProxy, so the
    followers' fetches from it can be held back while their heartbeats (controller
    listener) carry on. Yields (cluster, admin, proxy, isr) with `topic` led by 0 on
    [0, 1, 2] and its ISR full."""
    from tests.support.stall_proxy import StallProxy

    cluster = BrokerCluster(tmp_path, 3)
    leader = cluster.brokers[0]
    proxy = StallProxy(("127.0.0.1", leader.port))
    leader.overrides["advertised.listeners"] = f"PLAINTEXT://127.0.0.1:{proxy.port}"
    try:
        cluster.start()
        admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
        admin.create_topics([NewTopic(topic, 1, replica_assignment=[[0, 1, 2]],
                                      config=topic_config)])[topic].result(20)
        cluster.wait_topics_known(topic)

        def isr():
            return sorted(admin.list_topics(topic, timeout=10).topics[topic].partitions[0].isrs)

        wait_until(lambda: isr() == [0, 1, 2], 30, "the full ISR")
        assert leader_of(admin, topic) == 0
        yield cluster, admin, proxy, isr
    finally:
        proxy.close()
        cluster.stop()


def test_isr_shrinks_for_a_lagging_follower_that_keeps_heartbeating(tmp_path):
    """Broker 2 keeps heartbeating (controller listener) but its fetches from leader 0
    are held back (a proxy in front of broker 0's Kafka listener, by client id): after
    replica.lag.time.max.ms (3 s) the leader drops it from the ISR although it stays a
    live broker; released, it catches up and is taken back in."""
    from tests.component.test_cluster_ops import scrape

    stop = threading.Event()
    with leader_behind_stall_proxy(tmp_path, "lagging") as (cluster, admin, proxy, isr):
        leader = cluster.brokers[0]
        producer = confluent_kafka.Producer({"bootstrap.servers": cluster.bootstrap,
                                             "acks": 1, "linger.ms": 5})

        def write():
            while not stop.is_set():
                producer.produce("lagging", b"x" * 200, partition=0)
                producer.poll(0.02)
            producer.flush(30)

        threading.Thread(target=write, daemon=True).start()
        try:
            shrinks = scrape(leader)["brook_isr_shrinks_total"]
            expands = scrape(leader)["brook_isr_expands_total"]

            proxy.stalled_clients.add("brook-replica-2")
            wait_until(lambda: isr() == [0, 1], 40, "broker 2 to leave the ISR")
            live = admin.describe_cluster(request_timeout=10).result(15).nodes
            assert 2 in {n.id for n in live}, "broker 2 was fenced, not dropped for lag"
            # any broker may answer the ISR first; the leader counts once it applies it
            wait_until(lambda: scrape(leader)["brook_isr_shrinks_total"] >= shrinks + 1, 20,
                       "the leader to count the shrink")

            proxy.stalled_clients.clear()
            wait_until(lambda: isr() == [0, 1, 2], 40, "broker 2 back in the ISR")
            wait_until(lambda: scrape(leader)["brook_isr_expands_total"] >= expands + 1, 20,
                       "the leader to count the expand")
        finally:
            stop.set()


def test_isr_shrinking_under_a_waiting_write_is_not_enough_replicas_after_append(tmp_path):
    """min.insync.replicas=2 and both followers' fetches held back: an acks=all write is
    appended while the ISR is still full, then the ISR shrinks to the leader alone and
    the write is answered NOT_ENOUGH_REPLICAS_AFTER_APPEND, as Kafka does; the next one
    is refused up front (NOT_ENOUGH_REPLICAS). Released, writes are acknowledged again."""
    with leader_behind_stall_proxy(tmp_path, "shrinking", **{"min.insync.replicas": "2"}) \
            as (cluster, admin, proxy, isr):
        # no retries: the client must be told the first answer
        producer = confluent_kafka.Producer({
            "bootstrap.servers": cluster.bootstrap, "acks": "all",
            "enable.idempotence": False, "retries": 0, "linger.ms": 0,
            "request.timeout.ms": 30000, "message.timeout.ms": 60000})
        assert produce_all(producer, "shrinking", [b"before"]) == [(None, 0)]

        proxy.stalled_clients.update({"brook-replica-1", "brook-replica-2"})
        (error, _), = produce_all(producer, "shrinking", [b"appended"], timeout=45)
        assert error is not None and \
            error.code() == KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND, error
        # the metadata read may come from a broker that has not yet seen the shrink
        wait_until(lambda: isr() == [0], 30, lambda: f"the ISR to be the leader alone: {isr()}")
        (error, _), = produce_all(producer, "shrinking", [b"refused"])
        assert error is not None and error.code() == KafkaError.NOT_ENOUGH_REPLICAS, error

        proxy.stalled_clients.clear()
        wait_until(lambda: len(isr()) >= 2, 40, "a follower back in the ISR")
        (error, offset), = produce_all(producer, "shrinking", [b"after"])
        assert error is None and offset == 2, (error, offset)  # "refused" was not stored


def test_consumers_never_read_above_the_high_watermark(tmp_path):
    """Both followers frozen (SIGSTOP), the leader takes acks=1 writes it cannot
    replicate: a read_uncommitted consumer and ListOffsets see only up to the high
    watermark until the followers resume and the high watermark moves. The lag and
    session timeouts are long (30 s) so the ISR cannot shrink while this is looked at."""
    cluster = BrokerCluster(tmp_path, 3, replica_lag_time_max_ms="30000",
                            broker_session_timeout_ms="30000").start()
    frozen = []
    try:
        admin = create(cluster)
        leader = cluster.brokers[leader_of(admin, "replicated")]
        followers = [b for b in cluster.brokers if b is not leader]
        producer = confluent_kafka.Producer({"bootstrap.servers": leader.bootstrap,
                                             "acks": 1, "linger.ms": 0})
        before = produce_all(producer, "replicated", [b"before-%d" % i for i in range(10)])
        assert [o for e, o in before if e is None] == list(range(10))
        wait_until(lambda: high_watermark(leader.bootstrap, "replicated") == 10, 20,
                   "the first records to commit")
        for f in followers:
            f.proc.send_signal(SIGSTOP)
            frozen.append(f)
        after = produce_all(producer, "replicated", [b"after-%d" % i for i in range(5)])
        assert [o for e, o in after if e is None] == list(range(10, 15)), after

        consumer = confluent_kafka.Consumer({
            "bootstrap.servers": leader.bootstrap, "group.id": "hw-reader",
            "isolation.level": "read_uncommitted", "enable.auto.commit": False})
        consumer.assign([TopicPartition("replicated", 0, confluent_kafka.OFFSET_BEGINNING)])
        seen: list[tuple[int, bytes]] = []

        def poll_for(seconds: float) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                msg = consumer.poll(0.2)
                if msg is not None and not msg.error():
                    seen.append((msg.offset(), msg.value()))

        poll_for(4)
        assert [o for o, _ in seen] == list(range(10)), "read past the high watermark"
        assert high_watermark(leader.bootstrap, "replicated") == 10

        for f in frozen:
            f.proc.send_signal(SIGCONT)
        frozen.clear()
        deadline = time.monotonic() + 40
        while len(seen) < 15:
            assert time.monotonic() < deadline, "the high watermark never moved"
            poll_for(0.5)
        consumer.close()
        assert [v for _, v in seen[10:]] == [b"after-%d" % i for i in range(5)]
    finally:
        for f in frozen:
            f.proc.send_signal(SIGCONT)
        cluster.stop()
