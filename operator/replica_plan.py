"""New replica lists for a change of a topic's replication factor. Pure.

Growing adds, to each partition, the brokers that hold the fewest replicas of the
topic so far; shrinking drops replicas from the end of each list, the most loaded
brokers first, never the first replica (the preferred leader). Partitions that
already have the wanted count are left out of the plan.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence


class ReplicaPlanError(ValueError):
    pass


def plan_replicas(
    assignments: Mapping[int, Sequence[int]], brokers: Sequence[int], rf: int
) -> dict[int, tuple[int, ...]]:
    if rf < 1:
        raise ReplicaPlanError(f"replication factor {rf} must be at least 1")
    if rf > len(set(brokers)):
        raise ReplicaPlanError(
            f"replication factor {rf} needs {rf} brokers; the cluster has {len(set(brokers))}"
        )
    load = Counter({b: 0 for b in brokers})
    for replicas in assignments.values():
        load.update(replicas)
    plan: dict[int, tuple[int, ...]] = {}
    for partition in sorted(assignments):
        replicas = list(assignments[partition])
        if len(replicas) == rf:
            continue
        while len(replicas) < rf:
            candidates = sorted((load[b], b) for b in brokers if b not in replicas)
            chosen = candidates[0][1]
            replicas.append(chosen)
            load[chosen] += 1
        while len(replicas) > rf:
            # The most loaded of the non-leader replicas, the last one on ties.
            index = max(range(1, len(replicas)), key=lambda i: (load[replicas[i]], i))
            load[replicas[index]] -= 1
            del replicas[index]
        plan[partition] = tuple(replicas)
    return plan
