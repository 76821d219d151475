"""Whether and how a KafkaCluster may shrink. Pure.

A StatefulSet removes its highest ordinals, so the departing brokers are the highest
node ids. Before they go (DESIGN.md, issue #7):

1. refused, cluster unchanged, when a topic's replication factor exceeds the brokers
   that would remain (the condition names the topics); internal topics' factor is
   lowered to fit instead, as the operator raised it with the cluster;
2. their replicas are moved to the remaining brokers by partition reassignment
   (`plan_drain`), and the operator waits until no reassignment is in progress and
   they hold nothing;
3. departing metadata quorum voters are removed from the voter set, one at a time;
4. only then does the StatefulSet shrink.

Each call looks at the cluster as it is now and says the next step, so a restarted
operator picks up where it was.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from brook.operator.constants import INTERNAL_TOPICS

# topic -> partition -> replica node ids, in preference order
Assignments = Mapping[str, Mapping[int, Sequence[int]]]


@dataclass(frozen=True)
class ScaleDecision:
    replicas: int  # what the StatefulSet should have now
    refusal: str | None = None  # refused: the cluster stays as it is
    drain: Mapping[str, Mapping[int, tuple[int, ...]]] = field(default_factory=dict)  # to submit
    remove_voter: int | None = None  # the next departing voter to take out of the quorum
    progress: str | None = None  # what the scale-down is waiting for (status: Draining)


def _shown(items: Sequence[str], max_listed: int) -> str:
    return ", ".join(items[:max_listed]) + (f" and {len(items) - max_listed} more" if len(items) > max_listed else "")


def plan_drain(assignments: Assignments, remaining: Sequence[int]) -> dict[str, dict[int, tuple[int, ...]]]:
    """New replica lists with every replica on a departing broker (not in `remaining`)
    replaced, in place, by the remaining broker holding the fewest replicas so far (the
    lowest id on ties) that is not already in the list. Partitions with nothing to move
    are left out. A topic whose replication factor exceeds len(remaining) cannot be
    drained (check `too_large_topics` first); its lists keep what fits."""
    keep = set(remaining)
    load = Counter({b: 0 for b in remaining})
    for partitions in assignments.values():
        for replicas in partitions.values():
            load.update(r for r in replicas if r in keep)
    plan: dict[str, dict[int, tuple[int, ...]]] = {}
    for topic in sorted(assignments):
        for partition in sorted(assignments[topic]):
            replicas = list(assignments[topic][partition])
            if all(r in keep for r in replicas):
                continue
            for i, replica in enumerate(replicas):
                if replica in keep:
                    continue
                candidates = sorted((load[b], b) for b in keep if b not in replicas)
                if not candidates:
                    continue
                chosen = candidates[0][1]
                replicas[i] = chosen
                load[chosen] += 1
            plan.setdefault(topic, {})[partition] = tuple(r for r in replicas if r in keep)
    return plan


def too_large_topics(assignments: Assignments, brokers: int) -> list[str]:
    """Topics with a partition of more replicas than `brokers`. Internal topics
    are left out: their factor follows the cluster's size (the operator raises it on a
    scale-up), so draining lowers it to what remains (`plan_drain` keeps what fits)."""
    return sorted(t for t, partitions in assignments.items()
                  if t not in INTERNAL_TOPICS and any(len(r) > brokers for r in partitions.values()))


def decide_scale(
    current: int | None,
    desired: int,
    assignments: Assignments | None,
    voters: Sequence[int] = (),
    reassigning: int = 0,
    max_listed: int = 5,
) -> ScaleDecision:
    """current: the StatefulSet's replicas (None: not created yet); assignments: every
    topic's replicas, or None when the brokers could not be asked; voters: the metadata
    quorum's voters now; reassigning: partition reassignments in progress."""
    if current is None or desired >= current:
        return ScaleDecision(desired)
    departing = set(range(desired, current))
    names = ", ".join(str(n) for n in sorted(departing))
    prefix = f"scale-down from {current} to {desired}"
    if assignments is None:
        # Never shrink blind: the departing brokers may hold the only replicas, or be
        # voters promoted since the cluster was created (the quorum would lose its majority).
        return ScaleDecision(current, progress=f"{prefix} waits: the brokers could not be asked which replicas "
                                               f"and metadata quorum votes brokers {names} hold")
    held = sorted(f"{t}-{p}" for t, partitions in assignments.items() for p, replicas in partitions.items()
                  if departing & set(replicas))
    # While partitions move, their lists hold the old and the new replicas together:
    # judge the replication factors only once the moves are done.
    if reassigning:
        return ScaleDecision(current, progress=f"draining brokers {names}: waiting for {reassigning} partition "
                                               f"reassignment(s) to finish; {len(held)} partition(s) left")
    too_large = too_large_topics(assignments, desired)
    if too_large:
        return ScaleDecision(current, f"{prefix} refused: {len(too_large)} topic(s) have more replicas than "
                                      f"the {desired} remaining broker(s) could hold: "
                                      f"{_shown(too_large, max_listed)}; lower their replicationFactor first")
    if held:
        plan = plan_drain(assignments, [b for b in range(desired)])
        moves = sum(len(p) for p in plan.values())
        return ScaleDecision(current, drain=plan,
                             progress=f"draining brokers {names}: moving {moves} partition(s) "
                                      f"({_shown(held, max_listed)}) to brokers 0-{desired - 1}")
    leaving_voters = sorted(departing & set(voters), reverse=True)
    if leaving_voters:
        return ScaleDecision(current, remove_voter=leaving_voters[0],
                             progress=f"draining brokers {names}: removing broker {leaving_voters[0]} from the "
                                      f"metadata quorum's voters ({', '.join(map(str, sorted(voters)))})")
    return ScaleDecision(desired)


# A metadata quorum of three voters survives the loss of one; more would only slow
# every metadata commit (Kafka's own guidance for KRaft controllers).
TARGET_VOTERS = 3


def next_voter(voters: Sequence[int], registered: Sequence[int], replicas: int,
               target: int = TARGET_VOTERS) -> int | None:
    """The broker to promote to metadata quorum voter next, or None: while the quorum has
    fewer than min(target, replicas) voters, the lowest ordinal (0..replicas-1) that is
    not a voter, once it has registered. Lowest first, so the voters are the brokers a
    scale-down removes last. One at a time: each promotion waits for the new voter to
    catch up."""
    if len(voters) >= min(target, replicas):
        return None
    lowest = next((b for b in range(replicas) if b not in set(voters)), None)
    return lowest if lowest is not None and lowest in set(registered) else None
