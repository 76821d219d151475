"""Replication throttles, as Kafka has them for reassignments. Pure.

Kafka's tools (kafka-reassign-partitions --throttle, Cruise Control, operators) set two
dynamic broker configs, `leader.replication.throttled.rate` and
`follower.replication.throttled.rate` (bytes/s, per broker or as the cluster default),
and two topic configs naming the throttled replicas, `leader.replication.throttled.replicas`
and `follower.replication.throttled.replicas` ("partition:broker,..." or "*"). Only
replicas outside the ISR are held back, so a reassignment copies data at the set rate
while the replicas clients depend on run at full speed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

LEADER_RATE = "leader.replication.throttled.rate"
FOLLOWER_RATE = "follower.replication.throttled.rate"
LEADER_REPLICAS = "leader.replication.throttled.replicas"
FOLLOWER_REPLICAS = "follower.replication.throttled.replicas"
# The broker configs Brook changes at runtime (AlterConfigs on a BROKER resource).
DYNAMIC_BROKER_CONFIGS = (LEADER_RATE, FOLLOWER_RATE)
UNLIMITED = 2**63 - 1  # Kafka's default for both rates


class InvalidThrottle(ValueError):
    """The message names the config and what it accepts."""


def validate_dynamic_broker_config(name: str, value: str | None) -> str | None:
    if name not in DYNAMIC_BROKER_CONFIGS:
        raise InvalidThrottle(
            f"Broker config {name} cannot be changed at runtime in Brook (only "
            f"{', '.join(DYNAMIC_BROKER_CONFIGS)}): set it in server.properties or with "
            "--override and restart the broker")
    if value is None:
        return None
    try:
        rate = int(value)
    except ValueError:
        raise InvalidThrottle(f"Invalid value {value} for configuration {name}: "
                              "a number of bytes per second is expected") from None
    if not 0 <= rate <= UNLIMITED:
        raise InvalidThrottle(f"Invalid value {value} for configuration {name}: "
                              f"must be between 0 and {UNLIMITED}")
    return str(rate)


def throttled(replicas_spec: str | None, partition: int, broker_id: int) -> bool:
    """Whether `replicas_spec` (a *.replication.throttled.replicas value) names this
    partition's replica on `broker_id`."""
    spec = (replicas_spec or "").strip()
    if not spec:
        return False
    if spec == "*":
        return True
    for entry in spec.split(","):
        p, _, b = entry.strip().partition(":")
        if p.isdigit() and b.isdigit() and int(p) == partition and int(b) == broker_id:
            return True
    return False


class ReplicationQuota:
    """A byte rate over one-second buckets: exceeded while more than `rate` bytes were
    recorded in the last second (Kafka measures over a window of such samples)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.rate = UNLIMITED
        self._tokens = 0.0
        self._last = clock()

    def set_rate(self, rate: int | None) -> None:
        rate = UNLIMITED if rate is None else rate
        if rate != self.rate:
            self.rate = rate
            self._tokens = float(min(rate, UNLIMITED))
            self._last = self._clock()

    @property
    def limited(self) -> bool:
        return self.rate < UNLIMITED

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.rate), self._tokens + (now - self._last) * self.rate)
        self._last = now

    def exceeded(self) -> bool:
        if not self.limited:
            return False
        self._refill()
        return self._tokens <= 0

    def record(self, nbytes: int) -> None:
        if self.limited:
            self._refill()
            self._tokens -= nbytes
