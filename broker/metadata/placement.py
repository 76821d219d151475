"""Where the replicas of new partitions go. Pure.

Kafka's scheme: partition p's first replica (its preferred leader) walks round the
broker list, so leaders spread evenly; followers follow at a shift that grows each
time the list wraps, so replica pairs spread too. With racks, the broker list is
first interleaved by rack and followers prefer racks the partition does not use yet.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass


@dataclass(frozen=True)
class BrokerSlot:
    broker_id: int
    rack: str | None = None


class PlacementError(ValueError):
    """Maps to INVALID_REPLICATION_FACTOR; the message says how many brokers exist."""


def rack_interleaved(brokers: list[BrokerSlot]) -> list[BrokerSlot]:
    """b1(rackA), b2(rackB), b3(rackC), b4(rackA), ...: neighbours are on other racks."""
    by_rack: dict[str | None, list[BrokerSlot]] = defaultdict(list)
    for broker in sorted(brokers, key=lambda b: b.broker_id):
        by_rack[broker.rack].append(broker)
    racks = sorted(by_rack, key=lambda rack: (rack is None, rack or ""))
    ordered = []
    for i in range(max(len(v) for v in by_rack.values())):
        for rack in racks:
            if i < len(by_rack[rack]):
                ordered.append(by_rack[rack][i])
    return ordered


def assign_replicas(brokers: list[BrokerSlot], partitions: int, replication_factor: int,
                    first_partition: int = 0, start_index: int = 0) -> list[list[int]]:
    """Replica lists for partitions first_partition .. first_partition+partitions-1."""
    if replication_factor < 1:
        raise PlacementError("Replication factor must be larger than 0")
    if replication_factor > len(brokers):
        raise PlacementError(
            f"Unable to replicate the partition {replication_factor} time(s): The target "
            f"replication factor of {replication_factor} cannot be reached because only "
            f"{len(brokers)} broker(s) are registered.")
    racked = any(b.rack for b in brokers)
    order = rack_interleaved(brokers) if racked else sorted(brokers, key=lambda b: b.broker_id)
    n = len(order)
    result = []
    for p in range(first_partition, first_partition + partitions):
        shift = p // n
        first = (p + start_index) % n
        chosen = [order[first]]
        if racked:
            chosen += _rack_aware_followers(order, first, replication_factor)
        else:
            for j in range(replication_factor - 1):
                step = 1 + (shift + j) % (n - 1) if n > 1 else 0
                chosen.append(order[(first + step) % n])
        result.append([b.broker_id for b in chosen])
    return result


def _rack_aware_followers(order: list[BrokerSlot], first: int, rf: int) -> list[BrokerSlot]:
    racks_total = len({b.rack for b in order})
    chosen = [order[first]]
    used_racks = {order[first].rack}
    for step in range(1, len(order)):
        if len(chosen) == rf:
            break
        candidate = order[(first + step) % len(order)]
        if candidate.rack in used_racks and len(used_racks) < racks_total:
            continue
        chosen.append(candidate)
        used_racks.add(candidate.rack)
    for step in range(1, len(order)):  # fewer racks than replicas: fill with the rest
        if len(chosen) == rf:
            break
        candidate = order[(first + step) % len(order)]
        if candidate not in chosen:
            chosen.append(candidate)
    return chosen[1:]
