"""When the operator's reassignment throttle comes off again. Pure.

The operator moves partitions (balancing after a scale-up, draining before a
scale-down, a Topic's new replication factor) under Kafka's reassignment throttle, as
`kafka-reassign-partitions.sh --throttle` does: a rate on every broker
(leader/follower.replication.throttled.rate) and every replica of the moved topics
listed as throttled ("*"). Kafka leaves lifting it to whoever set it (`--verify`); here
the cluster's reconcile lifts it once no reassignment is in progress. Only a throttle
the operator set (its own rate) is lifted: one a user set by hand stays. With it go
the topics' "*" lists (what the operator sets; lists naming replicas stay).
"""

from __future__ import annotations

from collections.abc import Mapping

RATE_KEYS = ("leader.replication.throttled.rate", "follower.replication.throttled.rate")
REPLICAS_KEYS = ("leader.replication.throttled.replicas", "follower.replication.throttled.replicas")
ALL_REPLICAS = "*"


def brokers_to_unthrottle(rates: Mapping[int, str | None], operator_rate: int, reassigning: int) -> list[int]:
    """Brokers whose dynamic throttle rate (None: not set) is the operator's own, when no
    reassignment is in progress; else none."""
    if reassigning or not operator_rate:
        return []
    return sorted(b for b, rate in rates.items() if rate is not None and rate.strip() == str(operator_rate))


def topics_to_unthrottle(configs: Mapping[str, Mapping[str, str | None]]) -> list[str]:
    """Topics whose throttled-replica lists are the operator's "every replica"."""
    return sorted(t for t, c in configs.items() if any((c.get(k) or "").strip() == ALL_REPLICAS
                                                       for k in REPLICAS_KEYS))
