"""Whether a KafkaCluster may shrink. Pure.

Removing a broker removes the replicas it holds, and a metadata quorum voter cannot
simply disappear. Until partitions are moved off
departing brokers automatically (partition reassignment), a scale-down is applied
only when the brokers that would go (the highest node ids: a StatefulSet removes
its last ordinals) hold no replica at all; otherwise it is refused with the list of
what they hold, and the StatefulSet keeps its size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ScaleDecision:
    replicas: int  # what the StatefulSet should have
    refusal: str | None = None


def decide_scale(
    current: int | None,
    desired: int,
    partition_replicas: Mapping[str, Sequence[int]] | None,
    volumes_kept: bool = True,
    voters: Sequence[int] = (),
    max_listed: int = 5,
) -> ScaleDecision:
    """current: the StatefulSet's replicas (None: not created yet); partition_replicas:
    "topic-partition" -> replica node ids, or None when the brokers could not be asked;
    volumes_kept: the departing brokers' volumes survive (deleteClaim false), so a
    scale-down the brokers cannot be asked about is undone by scaling up again."""
    if current is None or desired >= current:
        return ScaleDecision(desired)
    departing = set(range(desired, current))
    names = ", ".join(str(n) for n in sorted(departing))
    leaving_voters = sorted(departing & set(voters))
    if leaving_voters:
        return ScaleDecision(
            current,
            f"scale-down from {current} to {desired} refused: brokers "
            f"{', '.join(map(str, leaving_voters))} are metadata quorum voters "
            f"({', '.join(map(str, sorted(voters)))}); removing voters is not automated yet",
        )
    if partition_replicas is None and volumes_kept:
        return ScaleDecision(desired)
    if partition_replicas is None:
        return ScaleDecision(
            current,
            f"scale-down from {current} to {desired} refused: the brokers could not be asked "
            f"whether brokers {names} hold replicas, and spec.storage.deleteClaim=true would "
            "delete their volumes",
        )
    held = sorted(p for p, replicas in partition_replicas.items() if departing & set(replicas))
    if not held:
        return ScaleDecision(desired)
    shown = ", ".join(held[:max_listed]) + (f" and {len(held) - max_listed} more" if len(held) > max_listed else "")
    return ScaleDecision(
        current,
        f"scale-down from {current} to {desired} refused: brokers {names} hold replicas of "
        f"{len(held)} partition(s) ({shown}); move them to the remaining brokers first "
        "(partition reassignment is not automated yet)",
    )
