"""Spreading replicas and preferred leaders over the brokers after a scale-up. Pure.

Per topic (so every topic's load is spread, not only the sum): while one broker holds
two or more replicas more than another, one replica moves from the most loaded broker
to the least loaded one that is not yet in that partition's list, in place (a follower
replica first, so leadership moves rarely). Then, while one broker is the preferred
leader (first replica) of two or more partitions more than another, a partition led by
the former whose list holds the latter gets the latter in front: a reorder, which
moves no data. Each step lowers the spread, so the plan ends.

Internal topics (constants.INTERNAL_TOPICS) are left out: moving the group coordinator's
partitions interrupts consumer groups for little gain. Their replication factor is
raised, though, when the cluster has grown past it (`plan_internal_replication`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from brook.operator.cluster_scaling import Assignments
from brook.operator.constants import INTERNAL_TOPICS
from brook.operator.replica_plan import plan_replicas


def _balance_topic(partitions: Mapping[int, Sequence[int]], brokers: Sequence[int]) -> dict[int, list[int]]:
    lists = {p: list(r) for p, r in partitions.items()}
    load = Counter({b: 0 for b in brokers})
    for replicas in lists.values():
        load.update(r for r in replicas if r in load)
    for _ in range(10 * sum(len(r) for r in lists.values()) + 10):
        hi = max(brokers, key=lambda b: (load[b], b))
        lo = min(brokers, key=lambda b: (load[b], b))
        if load[hi] - load[lo] <= 1:
            break
        options = sorted((replicas.index(hi) == 0, p) for p, replicas in lists.items()
                         if hi in replicas and lo not in replicas)
        if not options:
            break
        p = options[0][1]
        lists[p][lists[p].index(hi)] = lo
        load[hi] -= 1
        load[lo] += 1
    lead = Counter({b: 0 for b in brokers})
    lead.update(r[0] for r in lists.values() if r and r[0] in lead)
    for _ in range(10 * len(lists) + 10):
        hi = max(brokers, key=lambda b: (lead[b], b))
        lo = min(brokers, key=lambda b: (lead[b], b))
        if lead[hi] - lead[lo] <= 1:
            break
        options = sorted(p for p, replicas in lists.items() if replicas and replicas[0] == hi and lo in replicas)
        if not options:
            break
        replicas = lists[options[0]]
        replicas.remove(lo)
        replicas.insert(0, lo)
        lead[hi] -= 1
        lead[lo] += 1
    return lists


def plan_balance(assignments: Assignments, brokers: Sequence[int]) -> dict[str, dict[int, tuple[int, ...]]]:
    """The partitions whose replica lists change, with their new lists."""
    brokers = sorted(set(brokers))
    plan: dict[str, dict[int, tuple[int, ...]]] = {}
    if not brokers:
        return plan
    for topic in sorted(assignments):
        if topic in INTERNAL_TOPICS:
            continue
        partitions = assignments[topic]
        balanced = _balance_topic(partitions, brokers)
        changed = {p: tuple(r) for p, r in balanced.items() if tuple(r) != tuple(partitions[p])}
        if changed:
            plan[topic] = changed
    return plan


# Internal topics and the spec.config key that declares their replication factor.
INTERNAL_RF_KEYS = {"__consumer_offsets": "offsets.topic.replication.factor",
                    "__transaction_state": "transaction.state.log.replication.factor"}
INTERNAL_RF_DEFAULT = 3  # Kafka's default for both


def plan_internal_replication(assignments: Assignments, brokers: Sequence[int],
                              config: Mapping[str, str]) -> dict[str, dict[int, tuple[int, ...]]]:
    """Raise the internal topics' replication factor to what the spec declares (Kafka's
    default 3), at most the number of brokers: a cluster created with one broker made
    them with one replica, and growing it must not leave every consumer group's
    committed offsets on a single broker. Never lowered. New replicas go to the brokers
    holding the fewest (the preferred leaders stay: no group coordinator moves)."""
    plan: dict[str, dict[int, tuple[int, ...]]] = {}
    brokers = sorted(set(brokers))
    for topic, key in sorted(INTERNAL_RF_KEYS.items()):
        partitions = assignments.get(topic)
        if not partitions:
            continue
        try:
            wanted = int(str(config.get(key, INTERNAL_RF_DEFAULT)).strip())
        except ValueError:
            wanted = INTERNAL_RF_DEFAULT
        target = max(1, min(wanted, len(brokers)))
        grow = {p: r for p, r in partitions.items() if len(r) < target}
        if grow:
            plan[topic] = plan_replicas(grow, brokers, target)
    return plan


def first_batch(plan: Mapping[str, Mapping[int, tuple[int, ...]]], size: int) -> dict[str, dict[int, tuple[int, ...]]]:
    """At most `size` partitions of a plan (topic, then partition order): reassignments
    are applied in small batches, so the copying never saturates the brokers."""
    out: dict[str, dict[int, tuple[int, ...]]] = {}
    taken = 0
    for topic in sorted(plan):
        for partition in sorted(plan[topic]):
            if taken >= size:
                return out
            out.setdefault(topic, {})[partition] = plan[topic][partition]
            taken += 1
    return out


def spread(assignments: Assignments, brokers: Sequence[int]) -> tuple[int, int]:
    """(replica spread, leader spread): the largest difference, over the topics, between
    the brokers holding the most and the fewest replicas (and preferred leaders)."""
    worst_replicas = worst_leaders = 0
    for topic, partitions in assignments.items():
        if topic in INTERNAL_TOPICS:
            continue
        load = Counter({b: 0 for b in brokers})
        lead = Counter({b: 0 for b in brokers})
        for replicas in partitions.values():
            load.update(r for r in replicas if r in load)
            if replicas and replicas[0] in lead:
                lead[replicas[0]] += 1
        worst_replicas = max(worst_replicas, max(load.values()) - min(load.values()))
        worst_leaders = max(worst_leaders, max(lead.values()) - min(lead.values()))
    return worst_replicas, worst_leaders
