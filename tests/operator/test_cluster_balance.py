from __future__ import annotations

import random
from collections import Counter

from brook.operator.cluster_balance import (
    first_batch,
    plan_balance,
    plan_internal_replication,
    spread,
)


def three_broker_topic(partitions: int, rf: int) -> dict[int, list[int]]:
    return {p: [(p + i) % 3 for i in range(rf)] for p in range(partitions)}


def apply(assignments, plan):
    return {t: {p: list(plan.get(t, {}).get(p, r)) for p, r in parts.items()} for t, parts in assignments.items()}


def test_new_brokers_get_replicas_and_leaders():
    before = {"orders": three_broker_topic(10, 2)}
    plan = plan_balance(before, range(5))
    after = apply(before, plan)
    load = Counter(b for r in after["orders"].values() for b in r)
    assert set(load) == set(range(5)) and max(load.values()) - min(load.values()) <= 1
    leaders = Counter(r[0] for r in after["orders"].values())
    assert leaders[3] >= 1 and leaders[4] >= 1 and max(leaders.values()) - min(leaders.values()) <= 1
    assert spread(after, range(5)) == (max(load.values()) - min(load.values()),
                                        max(leaders.values()) - min(leaders.values()))
    for replicas in after["orders"].values():
        assert len(set(replicas)) == 2  # the replication factor is kept, no duplicates


def test_balanced_topics_and_internal_topics_are_left_alone():
    balanced = {"orders": three_broker_topic(6, 3), "__consumer_offsets": {0: [0, 1, 2]}}
    assert plan_balance(balanced, range(3)) == {}
    assert "__consumer_offsets" not in plan_balance({"__consumer_offsets": three_broker_topic(50, 3)}, range(5))


def test_random_layouts_always_end_balanced():
    rng = random.Random(7)
    for _ in range(200):
        brokers = list(range(rng.randint(2, 7)))
        rf = rng.randint(1, len(brokers))
        old = brokers[: rng.randint(rf, len(brokers))]
        parts = {p: rng.sample(old, rf) for p in range(rng.randint(1, 30))}
        after = apply({"t": parts}, plan_balance({"t": parts}, brokers))
        load = Counter({b: 0 for b in brokers}) + Counter(b for r in after["t"].values() for b in r)
        counts = [load[b] for b in brokers]
        assert max(counts) - min(counts) <= 1, (parts, after)
        assert all(len(set(r)) == rf for r in after["t"].values())
        assert plan_balance(after, brokers) == {}  # a second pass has nothing to do


def test_batches():
    plan = {"a": {0: (1,), 1: (2,)}, "b": {0: (3,)}}
    assert first_batch(plan, 2) == {"a": {0: (1,), 1: (2,)}}
    assert first_batch(plan, 10) == plan


def test_internal_topics_grow_to_three_replicas_with_the_cluster():
    offsets = {p: [0] for p in range(6)}
    plan = plan_internal_replication({"__consumer_offsets": offsets, "orders": {0: [0]}}, [0, 1, 2], {})
    assert set(plan) == {"__consumer_offsets"}  # user topics keep their declared factor
    assert all(len(r) == 3 and r[0] == 0 for r in plan["__consumer_offsets"].values())  # leaders stay


def test_internal_replication_follows_the_spec_and_the_brokers():
    offsets = {p: [0] for p in range(4)}
    two = plan_internal_replication({"__consumer_offsets": offsets}, [0, 1], {})
    assert all(len(r) == 2 for r in two["__consumer_offsets"].values())  # no more than the brokers
    assert plan_internal_replication({"__consumer_offsets": offsets}, [0, 1, 2],
                                     {"offsets.topic.replication.factor": "1"}) == {}
    txn = plan_internal_replication({"__transaction_state": {0: [1, 0]}}, [0, 1, 2, 3, 4],
                                    {"transaction.state.log.replication.factor": "3"})
    assert txn == {"__transaction_state": {0: (1, 0, 2)}}
    # Never lowered: a factor above the target is left alone.
    assert plan_internal_replication({"__consumer_offsets": {0: [0, 1, 2]}}, [0, 1, 2],
                                     {"offsets.topic.replication.factor": "2"}) == {}
