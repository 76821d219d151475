from __future__ import annotations

from collections import Counter

import pytest

from brook.operator.replica_plan import ReplicaPlanError, plan_replicas


def test_grow_spreads_new_replicas_and_keeps_leaders():
    assignments = {0: (0,), 1: (1,), 2: (2,), 3: (0,)}
    plan = plan_replicas(assignments, [0, 1, 2], 2)
    assert set(plan) == {0, 1, 2, 3}
    for p, replicas in plan.items():
        assert replicas[0] == assignments[p][0] and len(set(replicas)) == 2
    load = Counter(b for r in plan.values() for b in r)
    assert max(load.values()) - min(load.values()) <= 1


def test_shrink_keeps_the_preferred_leader():
    plan = plan_replicas({0: (2, 0, 1), 1: (0, 1, 2)}, [0, 1, 2], 1)
    assert plan == {0: (2,), 1: (0,)}


def test_partitions_already_right_are_left_out():
    assert plan_replicas({0: (0, 1), 1: (1,)}, [0, 1, 2], 2) == {1: (1, 2)}  # the least loaded
    assert plan_replicas({0: (0, 1)}, [0, 1], 2) == {}


def test_not_enough_brokers():
    with pytest.raises(ReplicaPlanError, match="needs 4 brokers; the cluster has 3"):
        plan_replicas({0: (0,)}, [0, 1, 2], 4)
