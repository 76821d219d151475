from __future__ import annotations

from collections import Counter

from brook.operator.cluster_scaling import decide_scale, next_voter, plan_drain, too_large_topics


def spread(partitions: int, rf: int, brokers: int) -> dict[int, list[int]]:
    return {p: [(p + i) % brokers for i in range(rf)] for p in range(partitions)}


def test_growing_or_creating_is_always_applied():
    assert decide_scale(None, 3, None).replicas == 3
    assert decide_scale(1, 3, None).replicas == 3
    assert decide_scale(3, 3, None).refusal is None


def test_shrinking_when_departing_brokers_hold_nothing():
    decision = decide_scale(3, 2, {"orders": {0: [0, 1], 1: [1, 0]}})
    assert decision.replicas == 2 and decision.refusal is None and not decision.drain


def test_departing_brokers_are_drained_first():
    topics = {"orders": spread(6, 2, 5), "audit": spread(2, 1, 5)}
    decision = decide_scale(5, 3, topics)
    assert decision.replicas == 5 and decision.refusal is None  # not yet
    assert "draining brokers 3, 4" in decision.progress
    moved = {**{("orders", p): r for p, r in decision.drain["orders"].items()},
             **{("audit", p): r for p, r in decision.drain.get("audit", {}).items()}}
    for (topic, p), replicas in moved.items():
        assert set(replicas) <= {0, 1, 2} and len(set(replicas)) == len(topics[topic][p])
    # Every partition touching 3 or 4 is in the plan; the others are not.
    expected = {("orders", p) for p, r in topics["orders"].items() if {3, 4} & set(r)}
    assert {k for k in moved if k[0] == "orders"} == expected


def test_drain_keeps_positions_and_spreads_load():
    plan = plan_drain({"t": {0: [3, 0], 1: [1, 4], 2: [4, 3]}}, [0, 1, 2])
    assert plan["t"][0][1] == 0 and plan["t"][1][0] == 1  # untouched replicas keep their place
    load = Counter(r for replicas in plan["t"].values() for r in replicas) + Counter({0: 0})
    assert max(load.values()) - min(load[b] for b in (0, 1, 2)) <= 1
    assert plan_drain({"t": {0: [0, 1]}}, [0, 1, 2]) == {}


def test_waits_for_reassignments_then_removes_voters_then_shrinks():
    draining = decide_scale(3, 1, {"orders": {0: [1]}}, voters=[0, 1, 2], reassigning=1)
    assert draining.replicas == 3 and not draining.drain and "waiting for 1 partition" in draining.progress
    empty = {"orders": {0: [0]}}
    first = decide_scale(3, 1, empty, voters=[0, 1, 2])
    assert first.replicas == 3 and first.remove_voter == 2
    second = decide_scale(3, 1, empty, voters=[0, 1])
    assert second.remove_voter == 1
    assert decide_scale(3, 1, empty, voters=[0]).replicas == 1


def test_refused_when_topics_would_not_fit():
    topics = {"orders": spread(3, 3, 3), "events": spread(2, 2, 3), "big": spread(1, 3, 3)}
    decision = decide_scale(3, 1, topics, voters=[0, 1, 2])
    assert decision.replicas == 3 and not decision.drain and decision.remove_voter is None
    assert "3 topic(s) have more replicas than the 1 remaining broker(s)" in decision.refusal
    assert "big, events, orders" in decision.refusal
    assert too_large_topics(topics, 2) == ["big", "orders"]


def test_brokers_that_cannot_be_asked_keep_the_cluster_as_it_is():
    # They may hold the only replicas, or be voters promoted since creation.
    for voters in ([0, 1, 2], [0]):
        decision = decide_scale(5, 3, None, voters=voters)
        assert decision.replicas == 5 and decision.refusal is None
        assert "could not be asked" in decision.progress


def test_long_lists_are_cut():
    decision = decide_scale(2, 1, {f"t{i}": {0: [0, 1]} for i in range(20)})
    assert "and 15 more" in decision.refusal


def test_new_brokers_become_voters_until_three_lowest_first():
    assert next_voter([0], [0, 1, 2], replicas=3) == 1
    assert next_voter([0, 1], [0, 1, 2], replicas=3) == 2
    assert next_voter([0, 1, 2], [0, 1, 2, 3, 4], replicas=5) is None  # three is enough
    assert next_voter([0], [0, 1], replicas=2) == 1
    assert next_voter([0], [0], replicas=1) is None


def test_no_voter_from_an_unregistered_or_departing_broker():
    assert next_voter([0], [0], replicas=3) is None  # 1 and 2 have not registered yet
    assert next_voter([0], [0, 2], replicas=3) is None  # 1 first, once it has registered
    assert next_voter([0, 1], [0, 1, 2, 3], replicas=2) is None  # 2, 3 are leaving
    assert next_voter([1], [0, 1, 2], replicas=3) == 0


def test_internal_topics_shrink_with_the_cluster_instead_of_refusing():
    topics = {"__consumer_offsets": spread(4, 3, 3), "events": spread(2, 1, 3)}
    decision = decide_scale(3, 2, topics, voters=[0, 1, 2])
    assert decision.refusal is None and decision.replicas == 3  # draining first
    offsets = decision.drain["__consumer_offsets"]
    assert offsets and all(len(r) == 2 and 2 not in r for r in offsets.values())


def test_moving_partitions_are_not_mistaken_for_too_many_replicas():
    # orders (RF 3) mid-reassignment lists old and new replicas together: 5 of them.
    topics = {"orders": {0: [0, 1, 2, 3, 4]}}
    decision = decide_scale(5, 3, topics, voters=[0, 1, 2], reassigning=1)
    assert decision.refusal is None and decision.replicas == 5 and "waiting for 1" in decision.progress
