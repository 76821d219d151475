"""The consumer-group scenarios with kafka-python, aiokafka, kafkajs and the Java
consumer, each member its own process (tests/clients/group_process.py).
confluent-kafka runs the same scenarios in test_groups.py.

One broker per client: 2 members split 4 partitions 2/2, 4 members 1/1/1/1, a 5th idles,
a SIGKILLed owner's partition moves after the session timeout; then process-then-commit
across a SIGKILL (only the uncommitted records come again) and a broker restart (the
committed offsets and the group survive, the member resumes from its commits).
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from tests.clients.group_process import GROUP_CLIENTS, GroupMember, tools_problem
from tests.support.groups import committed_offsets
from tests.support.waiting import wait_until

pytestmark = pytest.mark.timeout(240)

PARTITIONS = 4
SESSION_MS = 6000


def produce(bootstrap: str, topic: str, per_partition: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(PARTITIONS * per_partition):
        producer.produce(topic, value=b"v%d" % i, partition=i % PARTITIONS)
    assert producer.flush(20) == 0


def split(members: list[GroupMember], sizes: list[int]) -> bool:
    """Every member has joined, their assignments are disjoint, cover the topic and have
    these sizes."""
    if not all(m.joined for m in members):
        return False
    owned = [m.assignment for m in members]
    union = set().union(*owned)
    return (sum(map(len, owned)) == len(union) == PARTITIONS
            and sorted(map(len, owned)) == sorted(sizes))


def describe(members):
    return lambda: "\n".join(m.describe() for m in members)


def broker_with_topic(client: str, fresh_broker, topic: str):
    """A broker without the initial rebalance delay and a PARTITIONS-partition topic;
    a client whose tools are missing fails (as in test_clients), never skips."""
    if tools_problem(client):
        pytest.fail(f"{client} cannot run (run `make tools`): {tools_problem(client)}")
    broker = fresh_broker(group_initial_rebalance_delay_ms=0)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])[topic].result(10)
    return broker


def batches(member: GroupMember) -> tuple[set, set]:
    """(records of batches the member committed, records of batches it did not)."""
    done, pending, current = set(), set(), []
    for e in member.snapshot():
        if e["event"] == "records":
            pending.update(current)
            current = [tuple(r) for r in e["records"]]
        elif e["event"] == "committed":
            done.update(current)
            current = []
    pending.update(current)
    return done, pending


@pytest.mark.parametrize("client", GROUP_CLIENTS)
def test_group_scenarios(client, fresh_broker, topic_name):
    broker = broker_with_topic(client, fresh_broker, topic_name)
    bootstrap = broker.bootstrap
    produce(bootstrap, topic_name, 100)
    strategy = "roundrobin" if client == "kafkajs" else "range"

    def start(group: str, **options) -> GroupMember:
        return GroupMember(client, bootstrap=bootstrap, group=group, topic=topic_name,
                           session_timeout_ms=SESSION_MS, strategy=strategy, **options)

    group = f"g-{uuid.uuid4().hex[:8]}"
    members = [start(group), start(group)]  # together, into a brand-new group
    try:
        wait_until(lambda: split(members, [2, 2]), 60, describe(members))
        members += [start(group), start(group)]
        wait_until(lambda: split(members, [1, 1, 1, 1]), 60, describe(members))
        members.append(start(group))
        wait_until(lambda: split(members, [1, 1, 1, 1, 0]) and members[-1].joined,
                   60, describe(members))
        victim = next(m for m in members if m.assignment)
        moved = victim.assignment
        victim.kill()  # no LeaveGroup: the broker notices when its session times out
        survivors = [m for m in members if m is not victim]
        wait_until(lambda: split(survivors, [1, 1, 1, 1]), 60, describe(survivors))
        assert any(m.assignment == moved for m in survivors)
        for m in survivors:
            assert m.terminate() == 0, m.describe()  # SIGTERM: leave the group, exit cleanly
            assert m.has("closed")
        seen = {r for m in members for r in m.records()}
        assert seen == {(p, o) for p in range(PARTITIONS) for o in range(100)}
    finally:
        for m in members:
            m.kill()

    # Process-then-commit: killed after processing a batch, before committing it.
    group = f"g-{uuid.uuid4().hex[:8]}"
    first = start(group, hold_after=120, max_poll_records=40)
    second = None
    try:
        wait_until(lambda: first.has("holding"), 60, first.describe)
        first.kill()
        done, pending = batches(first)
        assert done and pending, first.describe()
        resume = {p: max([o + 1 for q, o in done if q == p], default=0)
                  for p in range(PARTITIONS)}
        committed = committed_offsets(bootstrap, group, topic_name, PARTITIONS)
        for p, o in resume.items():  # a client may commit position 0 of an unread partition
            assert committed[p] == o or (o == 0 and committed[p] == -1001), committed
        second = start(group)  # joins once the dead member's session has expired
        wait_until(lambda: len(set(second.records())) >= sum(100 - o for o in resume.values())
                   and second.snapshot()[-1]["event"] == "committed", 60, second.describe)
        again = second.records()
        assert sorted(again) == sorted((p, o) for p in range(PARTITIONS)
                                       for o in range(resume[p], 100))
        assert pending <= set(again) and not (done & set(again))

        # A broker restart: committed offsets and the group survive, and the member
        # carries on from its commits (no committed record comes again).
        wait_until(lambda: committed_offsets(bootstrap, group, topic_name, PARTITIONS)
                   == dict.fromkeys(range(PARTITIONS), 100), 20, second.describe)
        before = len(second.snapshot())
        broker.kill()
        broker.start()
        produce(bootstrap, topic_name, 10)
        wait_until(lambda: len(second.records()) >= len(again) + 40
                   and second.snapshot()[-1]["event"] == "committed", 60, second.describe)
        after = [tuple(r) for e in second.snapshot()[before:] if e["event"] == "records"
                 for r in e["records"]]
        assert sorted(after) == sorted((p, o) for p in range(PARTITIONS)
                                       for o in range(100, 110))
        assert committed_offsets(bootstrap, group, topic_name, PARTITIONS) == dict.fromkeys(
            range(PARTITIONS), 110)
        admin = AdminClient({"bootstrap.servers": bootstrap})  # must outlive the future
        described = admin.describe_consumer_groups([group])[group].result(20)
        assert str(described.state).endswith("STABLE") and len(described.members) == 1
        assert len(described.members[0].assignment.topic_partitions) == PARTITIONS
        assert second.terminate() == 0, second.describe()
    finally:
        first.kill()
        if second is not None:
            second.kill()


@pytest.mark.parametrize("client", ["java", "kafka-python"])
def test_cooperative_sticky_revokes_only_moved_partitions(client, fresh_broker, topic_name):
    """A third member joins a 2/2 group: the cooperative protocol revokes just the one
    partition that moves to it; the others keep theirs throughout."""
    broker = broker_with_topic(client, fresh_broker, topic_name)
    group = f"g-{uuid.uuid4().hex[:8]}"

    def start() -> GroupMember:
        return GroupMember(client, bootstrap=broker.bootstrap, group=group, topic=topic_name,
                           session_timeout_ms=SESSION_MS, strategy="cooperative-sticky")

    members = [start(), start()]
    try:
        wait_until(lambda: split(members, [2, 2]), 60, describe(members))
        before = [m.assignment for m in members]
        marks = [len(m.snapshot()) for m in members]
        members.append(start())
        wait_until(lambda: split(members, [2, 1, 1]), 60, describe(members))
        revoked = [p for m, mark in zip(members, marks, strict=False)
                   for e in m.snapshot()[mark:] if e["event"] == "revoked"
                   for p in e["partitions"]]
        assert len(revoked) == 1, describe(members)()
        for old, m in zip(before, members, strict=False):
            assert m.assignment <= old  # nobody gained, only the moved one was lost
        assert members[2].assignment == set(revoked)
    finally:
        for m in members:
            m.kill()


@pytest.mark.parametrize("client", ["kafka-python", "aiokafka", "java"])
def test_static_member_comes_back_to_its_partitions(client, fresh_broker, topic_name):
    """group.instance.id: a static member killed and restarted within its session gets
    its partitions back, and the other member is not rebalanced (kafkajs has no static
    membership)."""
    broker = broker_with_topic(client, fresh_broker, topic_name)
    group = f"g-{uuid.uuid4().hex[:8]}"

    def start(instance: str) -> GroupMember:
        return GroupMember(client, bootstrap=broker.bootstrap, group=group, topic=topic_name,
                           session_timeout_ms=30000, instance_id=instance)

    members = [start("a"), start("b")]
    try:
        wait_until(lambda: split(members, [2, 2]), 60, describe(members))
        owned_b = members[1].assignment
        mark = len(members[0].snapshot())
        members[1].kill()
        members[1] = start("b")
        wait_until(lambda: members[1].assignment == owned_b, 60, describe(members))
        time.sleep(1)  # a rebalance of the other member would show by now
        assert [e for e in members[0].snapshot()[mark:]
                if e["event"] in ("assigned", "revoked")] == [], describe(members)()
    finally:
        for m in members:
            m.kill()
