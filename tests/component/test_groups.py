"""Consumer groups against a broker subprocess, with real clients.

Scenarios of the consumer-groups issue: partitions split across members and move
when members come, go idle or die; cooperative-sticky moves only what it must;
at-least-once across a consumer crash; committed offsets and group state survive a
broker restart; lag as AdminClients and /metrics report it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.timeout(120)

GROUP_BROKER = {"group_initial_rebalance_delay_ms": 0, "group_min_session_timeout_ms": 1000}
FAST_MEMBER = {"session.timeout.ms": 3000, "heartbeat.interval.ms": 250,
               "max.poll.interval.ms": 10000}


@pytest.fixture(scope="module")
def group_broker(tmp_path_factory):
    from tests.support.broker_process import BrokerProcess

    process = BrokerProcess(tmp_path_factory.mktemp("groups") / "data",
                            {k.replace("_", "."): str(v) for k, v in GROUP_BROKER.items()})
    process.start()
    yield process
    process.stop()


def create_topic(bootstrap: str, name: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})  # must outlive the future
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(10)


def produce(bootstrap: str, topic: str, count: int, partitions: int) -> dict[int, int]:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(count):
        producer.produce(topic, key=b"k%d" % i, value=b"v%d" % i, partition=i % partitions)
    assert producer.flush(20) == 0
    return {p: len(range(p, count, partitions)) for p in range(partitions)}


def member(bootstrap: str, group: str, topic: str, **conf) -> Consumer:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "partition.assignment.strategy": "range", **FAST_MEMBER, **conf})
    consumer.subscribe([topic])
    return consumer


def close_all(consumers, timeout: float = 15.0) -> None:
    """Unsubscribe the consumers, poll until none holds a partition, then close them.
    Closing a cooperative-sticky member that still holds partitions can hang forever in
    librdkafka (issues 4527 and 4884: the revoke raised inside close() waits for an
    unassign that is never served, while holding the GIL, so no Python thread or test
    timeout can break it; seen in CI). Giving the partitions back first, through the
    ordinary poll path, leaves close() nothing to revoke, as librdkafka advises."""
    for consumer in consumers:
        consumer.unsubscribe()
    deadline = time.monotonic() + timeout
    while any(consumer.assignment() for consumer in consumers):
        assert time.monotonic() < deadline, f"partitions still assigned: {assignments(consumers)}"
        for consumer in consumers:
            consumer.poll(0.05)
    for consumer in consumers:
        consumer.close()


def assignments(consumers) -> list[set[int]]:
    return [{tp.partition for tp in c.assignment()} for c in consumers]


def settle(consumers, predicate, timeout: float = 25.0, poll: float = 0.05) -> list[set[int]]:
    """Poll every consumer round-robin until predicate(assignments) holds."""
    deadline = time.monotonic() + timeout
    while True:
        for consumer in consumers:
            consumer.poll(poll)
        current = assignments(consumers)
        if predicate(current):
            return current
        if time.monotonic() > deadline:
            raise AssertionError(f"assignments never settled: {current}")


def split_evenly(sizes: list[int], partitions: int):
    def check(current: list[set[int]]) -> bool:
        union = set().union(*current)
        disjoint = sum(len(a) for a in current) == len(union)
        return disjoint and union == set(range(partitions)) and sorted(
            len(a) for a in current) == sorted(sizes)
    return check


VICTIM = r"""
import json, sys
from confluent_kafka import Consumer
consumer = Consumer(json.loads(sys.argv[1]))
consumer.subscribe([sys.argv[2]])
last = None
while True:
    consumer.poll(0.1)
    now = sorted(tp.partition for tp in consumer.assignment())
    if now != last:
        print(json.dumps(now), flush=True)
        last = now
"""


class Subprocess:
    """A helper Python process whose stdout lines are collected in a thread."""

    def __init__(self, script: str, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", script, *args],
                                     stdout=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, predicate, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if predicate(line):
                    return line
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"helper never printed the expected line: {self.lines[-5:]}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


def test_partitions_split_grow_idle_and_move_after_session_timeout(group_broker, topic_name):
    """2 members -> 2 each; 4 -> 1 each; a 5th idles; a killed member's partition moves.

    The range assignor orders members by member id, which starts with the client id:
    client ids make the newest member the idle one and the victim an owner.
    """
    bootstrap = group_broker.bootstrap
    create_topic(bootstrap, topic_name, 4)
    group = f"g-{uuid.uuid4().hex[:8]}"
    members = [member(bootstrap, group, topic_name, **{"client.id": f"a{i}"}) for i in range(2)]
    victim = None
    try:
        settle(members, split_evenly([2, 2], 4))
        members.append(member(bootstrap, group, topic_name, **{"client.id": "a2"}))
        conf = {"bootstrap.servers": bootstrap, "group.id": group, "client.id": "m-victim",
                "partition.assignment.strategy": "range", "enable.auto.commit": False,
                **FAST_MEMBER}
        victim = Subprocess(VICTIM, json.dumps(conf), topic_name)

        def with_victim(sizes):
            def check(current):
                line = victim.lines[-1] if victim.lines else "[]"
                return split_evenly(sizes, 4)(current + [set(json.loads(line))])
            return check

        settle(members, with_victim([1, 1, 1, 1]))
        idle = member(bootstrap, group, topic_name, **{"client.id": "z-idle"})
        members.append(idle)
        settle(members, lambda cur: with_victim([1, 1, 1, 1, 0])(cur) and cur[-1] == set())
        victim.kill()  # no LeaveGroup: the broker notices when its session times out
        final = settle(members, split_evenly([1, 1, 1, 1], 4))
        assert final[-1], "the idle member took over the dead member's partition"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        described = admin.describe_consumer_groups([group])[group].result(10)
        assert len(described.members) == 4 and str(described.state).endswith("STABLE")
    finally:
        if victim is not None:
            victim.kill()
        close_all(members)


def test_cooperative_sticky_moves_only_what_it_must(group_broker, topic_name):
    bootstrap = group_broker.bootstrap
    create_topic(bootstrap, topic_name, 4)
    group = f"g-{uuid.uuid4().hex[:8]}"
    revoked: list[int] = []

    def on_revoke(consumer, partitions):
        revoked.extend(tp.partition for tp in partitions)

    def sticky():
        consumer = member(bootstrap, group, topic_name,
                          **{"partition.assignment.strategy": "cooperative-sticky"})
        consumer.subscribe([topic_name], on_revoke=on_revoke)
        return consumer

    members = [sticky(), sticky()]
    try:
        before = settle(members, split_evenly([2, 2], 4))
        revoked.clear()
        members.append(sticky())
        after = settle(members, split_evenly([2, 1, 1], 4))
        assert len(revoked) == 1, f"cooperative rebalance revoked {revoked}"
        for old, new in zip(before, after[:2], strict=True):
            assert new <= old  # nobody lost a partition it kept, nobody gained one
        assert after[2] == set(revoked)
    finally:
        close_all(members)


PROCESS_THEN_COMMIT = r"""
import json, sys
from confluent_kafka import Consumer
conf, topic, commit_after, then_process = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
consumer = Consumer(conf)
consumer.subscribe([topic])
seen = 0
while seen < commit_after + then_process:
    msg = consumer.poll(0.2)
    if msg is None or msg.error():
        continue
    print("PROCESSED", msg.partition(), msg.offset(), flush=True)
    seen += 1
    if seen == commit_after:
        consumer.commit(asynchronous=False)
        print("COMMITTED", flush=True)
print("READY", flush=True)  # processed, not committed: the test kills us here
import time
time.sleep(600)
"""


def test_at_least_once_across_a_consumer_crash_and_broker_restart(fresh_broker, topic_name):
    broker = fresh_broker(**GROUP_BROKER)
    create_topic(broker.bootstrap, topic_name, 2)
    totals = produce(broker.bootstrap, topic_name, 200, 2)
    group = f"g-{uuid.uuid4().hex[:8]}"
    conf = {"bootstrap.servers": broker.bootstrap, "group.id": group,
            "auto.offset.reset": "earliest", "enable.auto.commit": False, **FAST_MEMBER}
    worker = Subprocess(PROCESS_THEN_COMMIT, json.dumps(conf), topic_name, "120", "30")
    try:
        worker.wait_for(lambda line: line == "READY")
    finally:
        worker.kill()  # between processing and commit
    processed = [tuple(map(int, line.split()[1:])) for line in worker.lines
                 if line.startswith("PROCESSED")]
    committed_at = worker.lines.index("COMMITTED")
    committed = processed[:120]
    uncommitted = processed[120:]
    assert len(uncommitted) == 30 and committed_at == 120

    # Committed offsets survive a broker crash and restart.
    broker.kill()
    broker.start()
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    offsets = admin.list_consumer_group_offsets(
        [_group_request(group, topic_name, 2)])[group].result(20)
    committed_next = {tp.partition: tp.offset for tp in offsets.topic_partitions}
    for partition in range(2):
        done = [o for p, o in committed if p == partition]
        assert committed_next[partition] == (max(done) + 1 if done else -1001)

    # A new member of the group (another client library) resumes from the commits:
    # every uncommitted record comes again, no committed one does.
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic_name, bootstrap_servers=broker.bootstrap, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             session_timeout_ms=3000, heartbeat_interval_ms=250,
                             consumer_timeout_ms=3000)
    redelivered = {(m.partition, m.offset) for m in consumer}
    consumer.commit()
    consumer.close()
    expected = {(p, o) for p in range(2) for o in range(committed_next[p], totals[p])}
    assert redelivered == expected
    assert set(uncommitted) <= redelivered and not (set(committed) & redelivered)


def _group_request(group: str, topic: str, partitions: int):
    from confluent_kafka import ConsumerGroupTopicPartitions

    return ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p)
                                                for p in range(partitions)])


def test_stable_group_survives_broker_restart_without_rebalance(fresh_broker, topic_name):
    broker = fresh_broker(**GROUP_BROKER)
    create_topic(broker.bootstrap, topic_name, 2)
    group = f"g-{uuid.uuid4().hex[:8]}"
    assigned = []

    consumer = member(broker.bootstrap, group, topic_name,
                      **{"session.timeout.ms": 10000, "heartbeat.interval.ms": 500})
    consumer.subscribe([topic_name], on_assign=lambda c, parts: assigned.append(len(parts)))
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    try:
        settle([consumer], lambda cur: cur[0] == {0, 1})
        before = admin.describe_consumer_groups([group])[group].result(10)
        broker.kill()
        broker.start()
        for _ in range(40):  # keep heartbeating through the restart for ~2 s
            consumer.poll(0.05)
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})
        after = admin.describe_consumer_groups([group])[group].result(10)
        assert str(after.state).endswith("STABLE")
        assert [m.member_id for m in after.members] == [m.member_id for m in before.members]
        assert after.members[0].assignment.topic_partitions
        assert assigned == [2], "the member was not made to rebalance"
        consumer.commit(offsets=[TopicPartition(topic_name, 0, 0)], asynchronous=False)
    finally:
        consumer.close()


def test_lag_from_admin_clients_and_metrics(group_broker, topic_name):
    bootstrap = group_broker.bootstrap
    create_topic(bootstrap, topic_name, 3)
    totals = produce(bootstrap, topic_name, 90, 3)
    group = f"g-{uuid.uuid4().hex[:8]}"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    commits = {0: 30, 1: 5}  # partition 2: nothing committed
    consumer.commit(offsets=[TopicPartition(topic_name, p, o) for p, o in commits.items()],
                    asynchronous=False)
    consumer.close()
    expected_lag = {p: totals[p] - commits.get(p, 0) for p in range(3)}

    # confluent-kafka AdminClient: committed offsets and log-end offsets -> lag
    from confluent_kafka.admin import OffsetSpec

    admin = AdminClient({"bootstrap.servers": bootstrap})
    listed = admin.list_consumer_group_offsets([_group_request(group, topic_name, 3)])
    committed = {tp.partition: tp.offset for tp in listed[group].result(10).topic_partitions}
    ends = admin.list_offsets({TopicPartition(topic_name, p): OffsetSpec.latest()
                               for p in range(3)})
    log_end = {tp.partition: f.result(10).offset for tp, f in ends.items()}
    lag = {p: log_end[p] - (committed[p] if committed[p] >= 0 else 0) for p in range(3)}
    assert log_end == totals and lag == expected_lag
    assert committed[2] < 0  # nothing committed shows as "no offset"

    # kafka-python's admin client agrees
    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KTP

    kadmin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = kadmin.list_group_offsets(group)[group]
        assert {tp.partition: m.offset for tp, m in offsets.items()} == commits
        ends = kadmin.list_partition_offsets({KTP(topic_name, p): -1 for p in range(3)})
        assert {tp.partition: v.offset for tp, v in ends.items()} == totals
    finally:
        kadmin.close()

    # /metrics exposes the same numbers
    url = f"http://127.0.0.1:{group_broker.metrics_port}/metrics"
    text = urllib.request.urlopen(url, timeout=10).read().decode()
    for p, o in commits.items():
        labels = f'group="{group}",partition="{p}",topic="{topic_name}"'
        assert f"brook_consumer_group_committed_offset{{{labels}}} {float(o)}" in text
        assert f"brook_consumer_group_log_end_offset{{{labels}}} {float(totals[p])}" in text
        assert f"brook_consumer_group_lag{{{labels}}} {float(expected_lag[p])}" in text
    topic_lag = sum(totals[p] - o for p, o in commits.items())
    assert (f'brook_consumer_group_topic_lag{{group="{group}",topic="{topic_name}"}} '
            f"{float(topic_lag)}") in text


def test_kafka_python_and_aiokafka_groups_split_and_commit(group_broker, topic_name):
    bootstrap = group_broker.bootstrap
    create_topic(bootstrap, topic_name, 4)
    totals = produce(bootstrap, topic_name, 400, 4)
    from kafka import KafkaConsumer

    group = f"kp-{uuid.uuid4().hex[:8]}"
    # kafka-python's poll() blocks through a rebalance, so each member polls in its own
    # thread (as applications do); one thread polling both would starve the other.
    seen: set = set()
    stop = threading.Event()
    consumers = []

    def run():
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                 auto_offset_reset="earliest", enable_auto_commit=False,
                                 session_timeout_ms=3000, heartbeat_interval_ms=250)
        consumer.subscribe([topic_name])
        # The topic's metadata before the first poll joins: see
        # tests/clients/group_member.py for the kafka-python hang a join without it risks.
        deadline = time.monotonic() + 20
        while not consumer.partitions_for_topic(topic_name) and time.monotonic() < deadline:
            time.sleep(0.05)
        consumers.append(consumer)
        while not stop.is_set():
            for records in consumer.poll(timeout_ms=100).values():
                seen.update((r.partition, r.offset) for r in records)
        consumer.commit()
        consumer.close()

    # Both members join the brand-new group at once.
    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            sizes = sorted(len(c.assignment()) for c in list(consumers))
            if sizes == [2, 2] and len(seen) == 400:
                break
            time.sleep(0.05)
        assert sorted(len(c.assignment()) for c in consumers) == [2, 2]
        assert len(seen) == 400
    finally:
        stop.set()
        for thread in threads:
            if thread.ident is not None:
                thread.join(20)

    async def aiokafka_group():
        from aiokafka import AIOKafkaConsumer

        group = f"aio-{uuid.uuid4().hex[:8]}"
        consumers = [AIOKafkaConsumer(topic_name, bootstrap_servers=bootstrap, group_id=group,
                                      auto_offset_reset="earliest", enable_auto_commit=False,
                                      session_timeout_ms=3000, heartbeat_interval_ms=250)
                     for _ in range(2)]
        for consumer in consumers:
            await consumer.start()
        got = set()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                for consumer in consumers:
                    batch = await consumer.getmany(timeout_ms=100)
                    got.update((tp.partition, r.offset) for tp, rs in batch.items() for r in rs)
                if sorted(len(c.assignment()) for c in consumers) == [2, 2] and len(got) == 400:
                    break
            assert sorted(len(c.assignment()) for c in consumers) == [2, 2]
            for consumer in consumers:
                await consumer.commit()
            committed = {p: await consumers[0].committed(TopicPartitionAio(topic_name, p))
                         for p in range(4)}
        finally:
            for consumer in consumers:
                await consumer.stop()
        return got, committed

    from aiokafka.structs import TopicPartition as TopicPartitionAio

    got, committed = asyncio.run(aiokafka_group())
    assert len(got) == 400 and committed == totals


def test_static_member_restart_keeps_its_partitions(group_broker, topic_name):
    """A restarted static member (same group.instance.id) gets its partitions back
    without the other member being rebalanced."""
    bootstrap = group_broker.bootstrap
    create_topic(bootstrap, topic_name, 4)
    group = f"g-{uuid.uuid4().hex[:8]}"
    events = {"a": 0}

    def static(instance, **extra):
        return member(bootstrap, group, topic_name, **{"group.instance.id": instance,
                                                       "session.timeout.ms": 6000, **extra})

    a = static("a")
    a.subscribe([topic_name], on_assign=lambda c, p: events.__setitem__("a", events["a"] + 1))
    b = static("b")
    try:
        first = settle([a, b], split_evenly([2, 2], 4))
        assigns_before = events["a"]
        b.close()  # a static member does not leave the group on close
        b = static("b")
        again = settle([a, b], lambda cur: cur == first, timeout=15)
        assert again == first
        for _ in range(10):
            a.poll(0.05)
        assert events["a"] == assigns_before, "the other static member was rebalanced"
    finally:
        a.close()
        b.close()


@pytest.mark.skipif(os.environ.get("BROOK_SKIP_WIRE") == "1", reason="wire checks disabled")
def test_advertised_group_api_versions(group_broker):
    from kio.schema.api_versions.v3.request import ApiVersionsRequest

    from tests.support.kafka_wire import WireClient

    with WireClient(group_broker.bootstrap) as client:
        response = client.request(ApiVersionsRequest(client_software_name="t",
                                                     client_software_version="1"))
    ranges = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    assert ranges[10] == (0, 6) and ranges[11] == (0, 9) and ranges[14] == (0, 5)
    assert ranges[12] == (0, 4) and ranges[13] == (0, 5) and ranges[8] == (2, 10)
    assert ranges[9] == (1, 10) and ranges[15] == (0, 6) and ranges[16] == (0, 5)
    assert ranges[42] == (0, 2) and ranges[47] == (0, 0)
