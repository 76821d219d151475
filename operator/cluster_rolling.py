"""Which broker to restart next when the StatefulSet's pods are out of date. Pure.

The StatefulSet uses the OnDelete strategy: the operator, not the StatefulSet
controller, decides when a broker restarts (DESIGN.md): one at a time; out-of-date
brokers that are not ready first (they serve nothing, and may need the new
configuration to start at all); the others only while every broker is ready, never when it would take a partition below its
min.insync.replicas, and the active controller last (one controller election per
roll instead of one per restarted voter), and only once no partition is under-replicated
(the broker restarted before is back in every ISR).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class BrokerPod:
    name: str
    ordinal: int
    revision: str
    ready: bool
    terminating: bool = False
    age: float = 0.0  # seconds since the pod was created
    ready_for: float = 1e9  # seconds since it last became ready


@dataclass(frozen=True)
class PartitionState:
    name: str  # "topic-partition"
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    min_isr: int


@dataclass(frozen=True)
class RollDecision:
    restart: str | None = None  # the pod to delete now
    waiting: str | None = None  # why nothing is restarted although pods are out of date
    outdated: int = 0
    halted: str | None = None  # a restarted broker that did not come back: the roll stops


def blocking_partition(node: int, partitions: Sequence[PartitionState]) -> PartitionState | None:
    """A partition that restarting `node` would take below its min.insync.replicas.

    Partitions whose replica count does not exceed min.insync.replicas cannot stay
    writable through any restart, so they do not block (they would block forever).
    """
    for p in partitions:
        if node in p.isr and len(p.replicas) > p.min_isr and len(p.isr) - 1 < p.min_isr:
            return p
    return None


def next_restart(
    pods: Sequence[BrokerPod],
    update_revision: str,
    controller: int | None,
    partitions: Sequence[PartitionState] | None,
    halt_after: float | None = None,
    settle: float = 0.0,
) -> RollDecision:
    """partitions: None when the brokers could not be asked (then nothing restarts);
    halt_after: seconds a broker already on the new revision may take to become ready
    before the roll is declared halted (None: never); settle: seconds every broker must
    have been ready before the next one restarts."""
    outdated = [p for p in pods if p.revision != update_revision]
    if not outdated:
        return RollDecision()
    # A broker restarted with the new configuration that does not come back stops the
    # roll: the next broker would likely fail the same way. Nothing else restarts until
    # it is ready or the spec changes again (then it is out of date and goes first).
    stuck = sorted(p.name for p in pods if p.revision == update_revision and not p.ready
                   and not p.terminating and halt_after is not None and p.age >= halt_after)
    if stuck:
        return RollDecision(
            waiting=f"roll halted: {', '.join(stuck)} did not become ready within {halt_after:.0f}s "
                    "of its restart with the new configuration; fix the spec (the broker's log says why)",
            outdated=len(outdated), halted=", ".join(stuck))
    if any(p.terminating for p in pods):
        going = sorted(p.name for p in pods if p.terminating)
        return RollDecision(waiting=f"waiting for {', '.join(going)} to stop", outdated=len(outdated))
    # An out-of-date broker that is not ready serves nothing: restart it first. A fix
    # of the configuration must reach brokers that crash with the old one.
    broken = sorted((p for p in outdated if not p.ready), key=lambda p: -p.ordinal)
    if broken:
        return RollDecision(restart=broken[0].name, outdated=len(outdated))
    busy = [p.name for p in pods if not p.ready]
    if busy:
        return RollDecision(waiting=f"waiting for {', '.join(sorted(busy))} to be ready",
                            outdated=len(outdated))
    settling = sorted(p.name for p in pods if p.ready_for < settle)
    if settling:
        return RollDecision(waiting=f"waiting {settle:.0f}s after {', '.join(settling)} became ready",
                            outdated=len(outdated))
    if partitions is None:
        return RollDecision(waiting="waiting for the brokers to report partition state",
                            outdated=len(outdated))
    # The broker restarted last must be back in every ISR before the next one goes:
    # ready (its Kafka port answers) is not the same as caught up.
    lagging = sorted(p.name for p in partitions if len(p.isr) < len(p.replicas))
    if lagging:
        shown = ", ".join(lagging[:5]) + (f" and {len(lagging) - 5} more" if len(lagging) > 5 else "")
        return RollDecision(waiting=f"waiting for under-replicated partitions to catch up: {shown}",
                            outdated=len(outdated))
    # Highest ordinal first, the active controller last.
    order = sorted(outdated, key=lambda p: (p.ordinal == controller, -p.ordinal))
    reasons = []
    for pod in order:
        if pod.ordinal == controller and len(order) > 1:
            continue  # others first
        blocker = blocking_partition(pod.ordinal, partitions)
        if blocker is None:
            return RollDecision(restart=pod.name, outdated=len(outdated))
        reasons.append(
            f"{pod.name} holds one of the {len(blocker.isr)} in-sync replicas of {blocker.name} "
            f"(min.insync.replicas={blocker.min_isr})"
        )
    return RollDecision(waiting="waiting: " + "; ".join(reasons), outdated=len(outdated))
